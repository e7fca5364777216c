/* util/tar: headers written and read back, long names and big sizes through pax records, what GNU tar writes. */
#include <stdio.h>
#include <string.h>
#include "tap.h"
#include "util/tar.h"

static void roundtrip(const char *name, uint64_t size, size_t want_len)
{
    tar_entry_t e = {.size = size, .mode = 0600, .mtime = 1700000000, .type = '0'}, got = {0};
    unsigned char h[TAR_HEADER_MAX];
    snprintf(e.name, sizeof(e.name), "%s", name);
    size_t n = tar_header(&e, h);
    ok(n == want_len, "%s (%llu bytes): %zu header bytes", name, (unsigned long long)size, n);
    if (n == 0)
        return;
    unsigned char *last = h + n - TAR_BLOCK;
    ok(tar_parse(last, &got) == TAR_OK && got.type == '0' && got.mode == 0600 && got.mtime == 1700000000,
       "  its ustar block parses");
    if (n > TAR_BLOCK) {
        tar_entry_t x = {0};
        ok(tar_parse(h, &x) == TAR_OK && x.type == 'x', "  a pax header first");
        tar_entry_t over = {.size = UINT64_MAX};
        ok(tar_pax_apply((const char *)h + TAR_BLOCK, (size_t)x.size, &over) == 0, "  its records parse");
        if (over.name[0])
            snprintf(got.name, sizeof(got.name), "%s", over.name);
        if (over.size != UINT64_MAX)
            got.size = over.size;
    }
    ok(strcmp(got.name, name) == 0, "  name back: %s", got.name);
    ok(got.size == size, "  size back: %llu", (unsigned long long)got.size);
}

int main(void)
{
    char sha256[200], sha512[300], flat[151];
    snprintf(sha256, sizeof(sha256), "blobs/sha256/ab/ab%062d", 7);
    snprintf(sha512, sizeof(sha512), "blobs/sha512/cd/cd%0126d", 7);
    memset(flat, 'a', sizeof(flat) - 1);
    flat[sizeof(flat) - 1] = '\0';

    roundtrip("berth.db", 12345, TAR_BLOCK);
    roundtrip("berth-backup.json", 0, TAR_BLOCK);
    roundtrip(sha256, 1 << 20, TAR_BLOCK);
    roundtrip(sha512, 99, 3 * TAR_BLOCK);                   /* 144 characters, the last component over 100: pax path */
    roundtrip("keys/token.pem", 9ULL << 30, 3 * TAR_BLOCK); /* over 8 GiB - 1: pax size */
    roundtrip("x", 077777777777ULL, TAR_BLOCK);             /* the largest octal size */
    roundtrip(flat, 3, 3 * TAR_BLOCK);                      /* 150 characters and no folder: pax path */

    tar_entry_t e = {.size = 1};
    unsigned char h[TAR_HEADER_MAX];
    e.name[0] = '\0';
    ok(tar_header(&e, h) == 0, "an empty name is refused");

    /* reading: zeros, a bad checksum, GNU's base-256 size, ./ prefixes */
    unsigned char blk[TAR_HEADER_MAX] = {0};
    tar_entry_t got;
    ok(tar_parse(blk, &got) == TAR_ZERO, "a block of zeros ends the archive");
    snprintf(e.name, sizeof(e.name), "./blobs/x");
    e.size = 5;
    tar_header(&e, blk);
    ok(tar_parse(blk, &got) == TAR_OK && strcmp(got.name, "blobs/x") == 0, "./ is taken off a name: %s", got.name);
    blk[0] ^= 1;
    ok(tar_parse(blk, &got) == TAR_BAD, "a changed byte fails the checksum");
    blk[0] ^= 1;
    /* base-256: 0x80 then the big-endian size in the 12-byte field; the checksum done again */
    memset(blk + 124, 0, 12);
    blk[124] = 0x80;
    blk[131] = 0x02; /* 2 << 32 = 8 GiB */
    unsigned sum = 0;
    memset(blk + 148, ' ', 8);
    for (int i = 0; i < TAR_BLOCK; ++i)
        sum += blk[i];
    snprintf((char *)blk + 148, 8, "%06o", sum);
    ok(tar_parse(blk, &got) == TAR_OK && got.size == 8ULL << 30, "GNU base-256 size: %llu",
       (unsigned long long)got.size);

    /* malformed pax records */
    tar_entry_t x = {0};
    ok(tar_pax_apply("9 size=1\n", 9, &x) == 0 && x.size == 1, "pax size=1");
    ok(tar_pax_apply("11 size=1\n", 10, &x) != 0, "a record whose length is wrong is refused");
    ok(tar_pax_apply("9 size=12\n", 10, &x) != 0, "a record not ending in a newline is refused");
    ok(tar_pax_apply("8 size=\n", 8, &x) != 0, "an empty size is refused");
    ok(tar_pax_apply("12 size=1x2\n", 12, &x) != 0, "a size that is no number is refused");
    ok(tar_pax_apply("99999999999999999999 p=\n", 24, &x) != 0, "a huge length is refused");
    ok(tar_pax_apply("20 mtime=1.5\n15 path=a/b\n", 25, &x) != 0, "a record running past the end is refused");
    ok(tar_pax_apply("13 mtime=1.5\n12 path=a/b\n", 25, &x) == 0 && strcmp(x.name, "a/b") == 0,
       "unknown keys are skipped, path taken");
    return tap_done();
}
