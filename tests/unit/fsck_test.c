/* Hashing blob files as fsck --verify and the scrub do (past the page cache where the file system allows): every size
 * around the direct-I/O block and read sizes, pacing and stopping, a missing file; fsck of a folder with no database. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/fsck.h"
#include "util/status.h"
#include "tap.h"

static char root[256];

typedef struct {
    uint64_t calls, bytes, stop_after;
} pace_t;

static int pace(void *ctx, uint64_t n)
{
    pace_t *p = ctx;
    p->calls++;
    p->bytes += n;
    return p->stop_after != 0 && p->calls >= p->stop_after;
}

static void test_sizes(void)
{
    static const size_t sizes[] = {0, 1, 511, 4095, 4096, 4097, 3 * 4096, 65536 + 7, 1 << 20, (1 << 20) + 1, 3000000};
    static const size_t chunks[] = {4096, 65536, 1 << 20, 5000 /* not a multiple of 4096: rounded down */};
    char path[512];
    unsigned char *data = malloc(3000000);
    for (size_t i = 0; i < 3000000; ++i)
        data[i] = (unsigned char)(i * 7919 + (i >> 13));
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); ++i) {
        snprintf(path, sizeof(path), "%s/f%zu", root, sizes[i]);
        FILE *f = fopen(path, "wb");
        fwrite(data, 1, sizes[i], f);
        fclose(f);
        digest_t want, got;
        digest_compute(&want, DIGEST_SHA256, data, sizes[i]);
        for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); ++c) {
            pace_t p = {0, 0, 0};
            uint64_t n = 99;
            int rc = fsck_hash_file(path, DIGEST_SHA256, chunks[c], pace, &p, &got, &n);
            ok(rc == 0 && n == sizes[i] && digest_equal(&got, &want) && p.bytes == sizes[i],
               "%zu bytes read %zu at a time: its digest, its size, every byte paced (rc %d, %llu bytes)", sizes[i],
               chunks[c], rc, (unsigned long long)n);
        }
    }
    digest_t want512, got512;
    uint64_t n;
    snprintf(path, sizeof(path), "%s/f%d", root, 3000000);
    digest_compute(&want512, DIGEST_SHA512, data, 3000000);
    ok(fsck_hash_file(path, DIGEST_SHA512, 1 << 20, NULL, NULL, &got512, &n) == 0 && digest_equal(&got512, &want512),
       "sha512, without a pace");
    free(data);
}

static void test_stop_and_missing(void)
{
    char path[512];
    digest_t got;
    uint64_t n;
    pace_t p = {0, 0, 2};
    snprintf(path, sizeof(path), "%s/f%d", root, 3000000);
    int rc = fsck_hash_file(path, DIGEST_SHA256, 65536, pace, &p, &got, &n);
    ok(rc == BERTH_EBUSY && p.calls == 2 && n == 2 * 65536,
       "the pace stops it after the second read: BERTH_EBUSY, %llu bytes read", (unsigned long long)n);
    snprintf(path, sizeof(path), "%s/none", root);
    rc = fsck_hash_file(path, DIGEST_SHA256, 65536, NULL, NULL, &got, &n);
    ok(rc == BERTH_ENOTFOUND, "a missing file: ENOTFOUND");
}

static void report(void *ctx, const fsck_finding_t *f)
{
    (void)f;
    ++*(int *)ctx;
}

static void test_no_database(void)
{
    int findings = 0;
    fsck_options_t o = {.report = report, .ctx = &findings};
    fsck_stats_t st;
    ok(fsck_run(root, &o, &st) == BERTH_ERROR && findings == 0, "fsck of a folder without a database cannot run");
}

int main(void)
{
    if (tap_tmpdir(root, sizeof(root), "berth-fsck-test") != 0) {
        printf("Bail out! cannot make a temporary folder\n");
        return 1;
    }
    test_sizes();
    test_stop_and_missing();
    test_no_database();
    tap_rmtree(root);
    return tap_done();
}
