#include <stdio.h>
#include <string.h>
#include "util/tar.h"

/* ustar field offsets and lengths */
enum {
    F_NAME = 0,
    F_MODE = 100,
    F_UID = 108,
    F_GID = 116,
    F_SIZE = 124,
    F_MTIME = 136,
    F_CHKSUM = 148,
    F_TYPE = 156,
    F_MAGIC = 257,
    F_VERSION = 263,
    F_UNAME = 265,
    F_GNAME = 297,
    F_PREFIX = 345,
};
#define OCTAL_SIZE_MAX 077777777777ULL /* 11 octal digits: 8 GiB - 1 */

static void octal(unsigned char *f, size_t len, uint64_t v)
{
    /* len - 1 digits, zero-padded, then NUL */
    f[len - 1] = '\0';
    for (size_t i = len - 1; i-- > 0; v >>= 3)
        f[i] = (unsigned char)('0' + (v & 7));
}

static unsigned checksum(const unsigned char *b)
{
    unsigned sum = 0;
    for (int i = 0; i < TAR_BLOCK; ++i)
        sum += (i >= F_CHKSUM && i < F_CHKSUM + 8) ? ' ' : b[i];
    return sum;
}

/* One ustar block for `e`, its name split into prefix and name where needed (`fits` 0: the name is left to a pax
 * header, and the ustar name is a stand-in). */
static void ustar(unsigned char *b, const tar_entry_t *e, char type, uint64_t size, const char *name)
{
    size_t len = strlen(name);
    memset(b, 0, TAR_BLOCK);
    if (len <= 100) {
        memcpy(b + F_NAME, name, len);
    } else { /* the caller checked that it splits at a '/' */
        const char *slash = name + len - 101;
        while (*slash != '/')
            ++slash;
        memcpy(b + F_PREFIX, name, (size_t)(slash - name));
        memcpy(b + F_NAME, slash + 1, len - (size_t)(slash - name) - 1);
    }
    octal(b + F_MODE, 8, e->mode ? e->mode : 0644);
    octal(b + F_UID, 8, 0);
    octal(b + F_GID, 8, 0);
    octal(b + F_SIZE, 12, size);
    octal(b + F_MTIME, 12, e->mtime > 0 && (uint64_t)e->mtime <= OCTAL_SIZE_MAX ? (uint64_t)e->mtime : 0);
    b[F_TYPE] = (unsigned char)type;
    memcpy(b + F_MAGIC, "ustar", 6);
    memcpy(b + F_VERSION, "00", 2);
    memcpy(b + F_UNAME, "root", 4);
    memcpy(b + F_GNAME, "root", 4);
    octal(b + F_CHKSUM, 7, checksum(b));
    b[F_CHKSUM + 7] = ' ';
}

/* Whether `name` fits ustar's name (100) and prefix (155) fields, split at a '/'. */
static int ustar_fits(const char *name)
{
    size_t len = strlen(name);
    if (len <= 100)
        return 1;
    if (len > 100 + 1 + 155)
        return 0;
    for (const char *s = name + len - 101; *s; ++s)
        if (*s == '/')
            return (size_t)(s - name) <= 155 && s[1] != '\0';
    return 0;
}

/* Append the pax record "<len> key=value\n" to `out` at *off (its length counts its own digits). */
static int pax_record(char *out, size_t cap, size_t *off, const char *key, const char *value)
{
    size_t body = 1 + strlen(key) + 1 + strlen(value) + 1, len = body + 1;
    while (snprintf(NULL, 0, "%zu", len) + body != len)
        ++len;
    if (*off + len >= cap)
        return -1;
    snprintf(out + *off, cap - *off, "%zu %s=%s\n", len, key, value);
    *off += len;
    return 0;
}

size_t tar_header(const tar_entry_t *e, unsigned char out[TAR_HEADER_MAX])
{
    size_t len = strlen(e->name);
    char type = e->type ? e->type : '0';
    if (len == 0 || len > TAR_NAME_MAX)
        return 0;
    int long_name = !ustar_fits(e->name), big = e->size > OCTAL_SIZE_MAX;
    if (!long_name && !big) {
        ustar(out, e, type, e->size, e->name);
        return TAR_BLOCK;
    }
    char recs[TAR_BLOCK], num[32];
    size_t off = 0;
    memset(recs, 0, sizeof(recs));
    if (long_name && pax_record(recs, sizeof(recs), &off, "path", e->name) != 0)
        return 0;
    snprintf(num, sizeof(num), "%llu", (unsigned long long)e->size);
    if (big && pax_record(recs, sizeof(recs), &off, "size", num) != 0)
        return 0;
    /* the pax header's own name, as GNU tar and bsdtar write it: ./PaxHeaders/<base name>, cut to fit */
    char pname[101];
    const char *base = strrchr(e->name, '/');
    snprintf(pname, sizeof(pname), "PaxHeaders/%s", base ? base + 1 : e->name);
    tar_entry_t ph = {.mode = 0644, .mtime = e->mtime};
    ustar(out, &ph, 'x', off, pname);
    memcpy(out + TAR_BLOCK, recs, TAR_BLOCK);
    /* the ustar header's own fields: the name cut to what fits, the size 0 when it does not (the pax record rules) */
    char stand_in[101];
    snprintf(stand_in, sizeof(stand_in), "%s", long_name ? (base ? base + 1 : e->name) : e->name);
    ustar(out + 2 * TAR_BLOCK, e, type, big ? 0 : e->size, long_name ? stand_in : e->name);
    return 3 * TAR_BLOCK;
}

/* An octal field (spaces and NULs around the digits), or GNU's base-256 (high bit of the first byte set). */
static int number(const unsigned char *f, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (f[0] & 0x80) {
        if (f[0] != 0x80) /* negative, or more than 64 bits in the first byte */
            return -1;
        for (size_t i = 1; i < len; ++i) {
            if (v >> 56)
                return -1;
            v = v << 8 | f[i];
        }
        *out = v;
        return 0;
    }
    size_t i = 0;
    while (i < len && f[i] == ' ')
        ++i;
    for (; i < len && f[i] >= '0' && f[i] <= '7'; ++i) {
        if (v >> 60)
            return -1;
        v = v << 3 | (uint64_t)(f[i] - '0');
    }
    for (; i < len; ++i)
        if (f[i] != ' ' && f[i] != '\0')
            return -1;
    *out = v;
    return 0;
}

/* Remove leading "./" (and "/" ) from a member name. */
static void strip_dot(char *name)
{
    size_t skip = 0;
    for (;;) {
        if (name[skip] == '.' && name[skip + 1] == '/')
            skip += 2;
        else if (name[skip] == '/')
            skip += 1;
        else
            break;
    }
    if (skip > 0)
        memmove(name, name + skip, strlen(name + skip) + 1);
}

int tar_parse(const unsigned char blk[TAR_BLOCK], tar_entry_t *e)
{
    int zero = 1;
    for (int i = 0; i < TAR_BLOCK && zero; ++i)
        zero = blk[i] == 0;
    if (zero)
        return TAR_ZERO;
    uint64_t sum, mode, mtime;
    if (number(blk + F_CHKSUM, 8, &sum) != 0 || sum != checksum(blk))
        return TAR_BAD;
    if (number(blk + F_SIZE, 12, &e->size) != 0 || number(blk + F_MODE, 8, &mode) != 0 ||
        number(blk + F_MTIME, 12, &mtime) != 0)
        return TAR_BAD;
    e->mode = (unsigned)(mode & 07777);
    e->mtime = (int64_t)mtime;
    e->type = blk[F_TYPE] ? (char)blk[F_TYPE] : '0';
    char name[101], prefix[156];
    memcpy(name, blk + F_NAME, 100);
    name[100] = '\0';
    prefix[0] = '\0';
    if (memcmp(blk + F_MAGIC, "ustar", 5) == 0) {
        memcpy(prefix, blk + F_PREFIX, 155);
        prefix[155] = '\0';
    }
    if (prefix[0])
        snprintf(e->name, sizeof(e->name), "%s/%s", prefix, name);
    else
        snprintf(e->name, sizeof(e->name), "%s", name);
    strip_dot(e->name);
    return TAR_OK;
}

int tar_pax_apply(const char *data, size_t len, tar_entry_t *e)
{
    size_t off = 0;
    while (off < len) {
        if (data[off] == '\0') /* padding */
            break;
        size_t n = 0, i = off;
        while (i < len && data[i] >= '0' && data[i] <= '9' && n < len)
            n = n * 10 + (size_t)(data[i++] - '0');
        if (i == off || i >= len || data[i] != ' ' || n <= i - off + 1 || off + n > len || data[off + n - 1] != '\n')
            return -1;
        const char *kv = data + i + 1, *end = data + off + n - 1, *eq = memchr(kv, '=', (size_t)(end - kv));
        if (eq == NULL)
            return -1;
        size_t klen = (size_t)(eq - kv), vlen = (size_t)(end - eq - 1);
        if (klen == 4 && memcmp(kv, "path", 4) == 0) {
            if (vlen > TAR_NAME_MAX || memchr(eq + 1, '\0', vlen) != NULL)
                return -1;
            memcpy(e->name, eq + 1, vlen);
            e->name[vlen] = '\0';
            strip_dot(e->name);
        } else if (klen == 4 && memcmp(kv, "size", 4) == 0) {
            uint64_t v = 0;
            if (vlen == 0 || vlen > 19)
                return -1;
            for (size_t j = 0; j < vlen; ++j) {
                char c = eq[1 + j];
                if (c < '0' || c > '9')
                    return -1;
                v = v * 10 + (uint64_t)(c - '0');
            }
            e->size = v;
        }
        off += n;
    }
    return 0;
}
