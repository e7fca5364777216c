/*
 * The body copy of uploads without a server: a body in a shared mapping of an unlinked temp file (as h2o spills a
 * large one) or on the heap, copied slice by slice into a session; the bytes and digest that arrive, the pages
 * given back, and a write that fails half-way.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "store/blobstore.h"
#include "store/body.h"
#include "store/upload.h"
#include "util/status.h"
#include "tap.h"

#define MIB (1024 * 1024)

static char root[256];
static size_t page;
static int can_punch; /* the temp folder's file system punches holes (MADV_REMOVE); if not, those checks skip */

/* Deterministic bytes, so that what was punched out of the body can still be compared. */
static void fill(unsigned char *p, size_t len, unsigned seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; ++i) {
        x = x * 1664525u + 1013904223u;
        p[i] = (unsigned char)(x >> 24);
    }
}

/* A `len`-byte body in a MAP_SHARED mapping of an unlinked, fallocated temp file; its fd in *fd. */
static unsigned char *mapped_body(size_t len, int *fd)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/tmp/body.XXXXXX", root);
    if ((*fd = mkstemp(path)) < 0 || unlink(path) != 0 || posix_fallocate(*fd, 0, (off_t)len) != 0)
        return NULL;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Whether MADV_REMOVE works on a shared file mapping in the temp folder. */
static int probe_punch(void)
{
    int fd;
    unsigned char *p = mapped_body(page, &fd);
    if (p == NULL)
        return 0;
    p[0] = 1;
    int works = madvise(p, page, MADV_REMOVE) == 0;
    munmap(p, page);
    close(fd);
    return works;
}

/* A check about punched pages, skipped where the file system cannot punch them. */
#define ok_punched(cond, ...) (can_punch ? ok(cond, __VA_ARGS__) : ok(1, "# SKIP no hole punching in the temp folder"))

static long long blocks_of(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? (long long)st.st_blocks : -1;
}

/* How many of the pages in [p, p + len) are resident. */
static size_t resident(const void *p, size_t len)
{
    size_t n = (len + page - 1) / page, count = 0;
    unsigned char *vec = malloc(n ? n : 1);
    if (mincore((void *)p, len, vec) != 0) {
        free(vec);
        return (size_t)-1;
    }
    for (size_t i = 0; i < n; ++i)
        count += vec[i] & 1;
    free(vec);
    return count;
}

/* 1 if the file at `path` holds exactly `len` bytes equal to `data`. */
static int file_is(const char *path, const unsigned char *data, size_t len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    unsigned char *buf = malloc(len + 1);
    size_t got = 0;
    ssize_t n;
    while ((n = read(fd, buf + got, len + 1 - got)) > 0)
        got += (size_t)n;
    close(fd);
    int same = got == len && memcmp(buf, data, len) == 0;
    free(buf);
    return same;
}

static upload_t *new_session(uploads_t *u, const char *repo)
{
    char uuid[UPLOAD_UUID_LEN + 1];
    upload_t *up = NULL;
    if (upload_create(u, repo, DIGEST_SHA256, uuid) != 0 || upload_acquire(u, uuid, repo, &up) != 0)
        return NULL;
    return up;
}

/* A body of a few MiB in a temp file: three slices, pages punched out as they are copied, digest and bytes kept. */
static void test_mapped(uploads_t *u, blobstore_t *bs)
{
    const size_t len = 2 * BODY_COPY_SLICE + 12345; /* the last page only partly body */
    unsigned char *want = malloc(len);
    int fd;
    fill(want, len, 1);
    unsigned char *body = mapped_body(len, &fd);
    ok(body != NULL, "a %zu-byte body in a shared mapping of an unlinked temp file", len);
    if (body == NULL)
        return;
    memcpy(body, want, len);
    long long blocks0 = blocks_of(fd);
    ok(resident(body, len) == (len + page - 1) / page, "all of its pages are resident before the copy");

    upload_t *up = new_session(u, "lib/big");
    body_copy_t c;
    body_copy_init(&c, up);
    ok(c.start == 0 && c.done == 0, "a copy starts at the session's offset");
    ok(body_copy_step(&c, up, body, len) == BODY_COPY_MORE && c.done == BODY_COPY_SLICE &&
           up->offset == BODY_COPY_SLICE,
       "the first step copies one slice and asks for more");
    ok_punched(c.dropped == BODY_COPY_SLICE && resident(body, BODY_COPY_SLICE) == 0,
               "the copied slice's pages are no longer resident");
    long long blocks1 = blocks_of(fd);
    ok_punched(blocks1 < blocks0, "and their blocks were punched out of the temp file (%lld -> %lld blocks)", blocks0,
               blocks1);
    ok(resident(body + BODY_COPY_SLICE, len - BODY_COPY_SLICE) == (len - BODY_COPY_SLICE + page - 1) / page,
       "the pages not copied yet are untouched");
    ok(body_copy_step(&c, up, body, len) == BODY_COPY_MORE && c.done == 2 * BODY_COPY_SLICE, "the second slice");
    ok_punched(blocks_of(fd) < blocks1, "gives back more blocks");
    ok(body_copy_step(&c, up, body, len) == BODY_COPY_DONE && c.done == len && up->offset == len,
       "the third step copies the rest and is done");
    ok(c.seconds >= 0 && c.seconds < 60, "the copy's time is measured (%.6f s)", c.seconds);
    ok(c.dropped == len / page * page, "every whole page was given back, but not the partial last one");
    ok_punched(resident(body + c.dropped, len - c.dropped) == 1,
               "the last page, which may hold the next request, stays");

    char path[BLOBSTORE_PATH_MAX];
    ok(file_is(up->path, want, len), "the session's file holds the body's bytes");
    digest_t d;
    uint64_t size = 0;
    digest_compute(&d, DIGEST_SHA256, want, len);
    ok(up->hasher != NULL, "the running hash was kept (no re-hash at the end)");
    ok(upload_finish(u, up, &d, bs, &size, NULL) == 0 && size == len, "the upload finishes with the body's digest");
    blobstore_path(bs, &d, path, sizeof(path));
    ok(file_is(path, want, len), "the blob file holds the body's bytes");
    munmap(body, len);
    close(fd);
    free(want);
}

/* A body on the heap (a small one stays there in h2o): copied whole, and left intact. */
static void test_heap(uploads_t *u, blobstore_t *bs)
{
    const size_t len = BODY_COPY_SLICE + 3 * BODY_COPY_PIECE + 7;
    unsigned char *body = malloc(len), *want = malloc(len);
    fill(want, len, 2);
    memcpy(body, want, len);
    upload_t *up = new_session(u, "lib/heap");
    ok(upload_append(up, "head", 4) == 0, "a session that already holds 4 bytes");
    body_copy_t c;
    body_copy_init(&c, up);
    int rc1 = body_copy_step(&c, up, body, len), rc2 = body_copy_step(&c, up, body, len);
    ok(rc1 == BODY_COPY_MORE && rc2 == BODY_COPY_DONE && up->offset == 4 + len, "a heap body is copied in two steps");
    ok(memcmp(body, want, len) == 0, "and the heap memory is left as it was");
    digest_t d;
    uint64_t size = 0;
    unsigned char *all = malloc(len + 4);
    memcpy(all, "head", 4);
    memcpy(all + 4, want, len);
    digest_compute(&d, DIGEST_SHA256, all, len + 4);
    ok(upload_finish(u, up, &d, bs, &size, NULL) == 0 && size == len + 4, "the blob is the old bytes and the body");

    upload_t *empty = new_session(u, "lib/heap");
    body_copy_init(&c, empty);
    ok(body_copy_step(&c, empty, NULL, 0) == BODY_COPY_DONE && empty->offset == 0, "an empty body is done at once");
    upload_cancel(u, empty);
    free(all);
    free(body);
    free(want);
}

/* A body that arrives in pieces of any size (read by berth as it arrives): appended in order, hashed on the way. */
static void test_feed(uploads_t *u, blobstore_t *bs)
{
    const size_t len = 2 * BODY_COPY_SLICE + 999;
    unsigned char *want = malloc(len);
    fill(want, len, 3);
    upload_t *up = new_session(u, "lib/feed");
    ok(upload_append(up, "ab", 2) == 0, "a session that already holds 2 bytes");
    body_copy_t c;
    body_copy_init(&c, up);
    size_t at = 0, sizes[] = {1, 4095, 65536, BODY_COPY_SLICE + 7, 3 * BODY_COPY_PIECE};
    int fed = 1;
    for (size_t i = 0; at < len; ++i) {
        size_t n = sizes[i % 5] < len - at ? sizes[i % 5] : len - at;
        fed = fed && body_copy_feed(&c, up, (const char *)want + at, n) == 0;
        at += n;
    }
    body_copy_end(&c, up);
    ok(fed && c.done == len && up->offset == 2 + len, "pieces of 1 byte to more than a slice are appended in order");
    ok(c.synced == len, "the writeback of all of it was started");
    ok(c.seconds >= 0 && c.seconds < 60, "the copy's time is measured (%.6f s)", c.seconds);
    ok(up->hasher != NULL, "the running hash was kept (no re-hash at the end)");
    unsigned char *all = malloc(len + 2);
    memcpy(all, "ab", 2);
    memcpy(all + 2, want, len);
    digest_t d;
    uint64_t size = 0;
    digest_compute(&d, DIGEST_SHA256, all, len + 2);
    ok(upload_finish(u, up, &d, bs, &size, NULL) == 0 && size == len + 2, "the blob is the old bytes and the pieces");
    char path[BLOBSTORE_PATH_MAX];
    blobstore_path(bs, &d, path, sizeof(path));
    ok(file_is(path, all, len + 2), "byte for byte");

    /* hashed on a thread of its own, reading back what was written */
    up = new_session(u, "lib/feed");
    ok(upload_append(up, "ab", 2) == 0, "another session that holds 2 bytes");
    body_copy_init(&c, up);
    body_copy_hash_behind(&c, up);
    ok(c.behind != NULL && up->hasher == NULL, "its hash goes to a thread of its own");
    fed = 1;
    for (at = 0; at < len;) {
        size_t n = len - at < 100000 ? len - at : 100000;
        fed = fed && body_copy_feed(&c, up, (const char *)want + at, n) == 0;
        at += n;
    }
    body_copy_end(&c, up);
    body_copy_join(&c, up);
    ok(fed && c.behind == NULL && up->hasher != NULL, "joined, the hash is the session's again");
    size = 0;
    ok(upload_finish(u, up, &d, bs, &size, NULL) == 0 && size == len + 2, "and it is the digest of all the bytes");

    up = new_session(u, "lib/feed");
    body_copy_init(&c, up);
    body_copy_hash_behind(&c, up);
    ok(body_copy_feed(&c, up, (const char *)want, 1000) == 0 && up->offset == 1000, "a first piece");
    body_copy_abandon(&c, up);
    ok(up->offset == 0 && c.behind == NULL, "abandoning the copy (the client went away) ends the thread, cuts back");
    upload_cancel(u, up);
    free(all);
    free(want);
}

/* The disk refuses half-way through a slice (a quota: RLIMIT_FSIZE): an error, and the session is as before. */
static void test_write_error(uploads_t *u, blobstore_t *bs)
{
    const size_t len = BODY_COPY_SLICE + 5;
    unsigned char *body = malloc(len);
    fill(body, len, 3);
    upload_t *up = new_session(u, "lib/full");
    ok(upload_append(up, "0123456789", 10) == 0, "a session that already holds 10 bytes");
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = MIB + 10;
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &lim);
    body_copy_t c;
    body_copy_init(&c, up);
    int rc = body_copy_step(&c, up, body, len), e = errno;
    setrlimit(RLIMIT_FSIZE, &old);
    ok(rc == BERTH_ERROR && e == EFBIG, "a write past the quota is an error (%s)", strerror(e));
    struct stat st;
    ok(up->offset == 10 && fstat(up->fd, &st) == 0 && st.st_size == 10,
       "the session is cut back to where the body began");

    /* the client sends the chunk again: the running hash was dropped, so the end re-hashes the file */
    body_copy_init(&c, up);
    ok(body_copy_step(&c, up, body, len) == BODY_COPY_MORE && body_copy_step(&c, up, body, len) == BODY_COPY_DONE,
       "the same body copies once the disk has room");
    unsigned char *all = malloc(len + 10);
    memcpy(all, "0123456789", 10);
    memcpy(all + 10, body, len);
    digest_t d;
    uint64_t size = 0;
    digest_compute(&d, DIGEST_SHA256, all, len + 10);
    ok(upload_finish(u, up, &d, bs, &size, NULL) == 0 && size == len + 10, "and the blob is right");

    /* a descriptor that cannot be written (here: read-only) fails the first piece */
    up = new_session(u, "lib/full");
    int ro = open("/dev/null", O_RDONLY);
    ok(ro >= 0 && dup2(ro, up->fd) == up->fd, "a session whose file cannot be written");
    close(ro);
    body_copy_init(&c, up);
    ok(body_copy_step(&c, up, body, len) == BERTH_ERROR && up->offset == 0, "the copy fails at once, nothing counted");
    upload_cancel(u, up);

    /* the body went away between two steps */
    up = new_session(u, "lib/full");
    body_copy_init(&c, up);
    ok(body_copy_step(&c, up, body, len) == BODY_COPY_MORE && up->offset == BODY_COPY_SLICE, "one slice copied");
    body_copy_abandon(&c, up);
    ok(up->offset == 0 && fstat(up->fd, &st) == 0 && st.st_size == 0, "abandoning the copy cuts the session back");
    upload_cancel(u, up);
    free(all);
    free(body);
}

int main(void)
{
    blobstore_t bs;
    uploads_t u;
    page = (size_t)sysconf(_SC_PAGESIZE);
    if (tap_tmpdir(root, sizeof(root), "berth-body-test") != 0 || blobstore_init(&bs, root) != 0 ||
        uploads_init(&u, root) != 0)
        return 2;
    can_punch = probe_punch();
    test_mapped(&u, &bs);
    test_heap(&u, &bs);
    test_feed(&u, &bs);
    test_write_error(&u, &bs);
    uploads_dispose(&u);
    blobstore_dispose(&bs);
    if (tap_rmtree(root) != 0)
        return 2;
    return tap_done();
}
