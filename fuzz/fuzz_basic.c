/*
 * libFuzzer target for Basic credentials (parse_basic in src/http/parse.c). The first byte picks the reading: the
 * rest is either what follows "Basic " in the header, or "user:password" that a client encodes (by an independent
 * base64 encoder here) and berth must decode back to the same two strings. A user name is never empty and never
 * holds a colon; nothing decoded holds a NUL.
 */
#include "fuzz.h"
#include "http/parse.h"

static size_t base64(char *out, const uint8_t *in, size_t len)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v =
            (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0) | (i + 2 < len ? in[i + 2] : 0);
        out[o++] = abc[v >> 18];
        out[o++] = abc[v >> 12 & 63];
        out[o++] = i + 1 < len ? abc[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? abc[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

static void check_decoded(h2o_mem_pool_t *pool, const char *user, const char *pass)
{
    char *enc, *u2, *p2, *plain;
    size_t ul = strlen(user), pl = strlen(pass);
    CHECK(ul != 0 && strchr(user, ':') == NULL);
    /* encoded canonically, the credentials decode to themselves */
    plain = malloc(ul + pl + 2);
    enc = malloc((ul + pl + 1) / 3 * 4 + 8);
    sprintf(plain, "%s:%s", user, pass);
    size_t n = base64(enc, (const uint8_t *)plain, ul + pl + 1);
    CHECK(parse_basic(pool, enc, n, &u2, &p2) == 0 && strcmp(u2, user) == 0 && strcmp(p2, pass) == 0);
    free(plain);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    h2o_mem_pool_t pool;
    char *user, *pass;
    int as_header = 1;

    if (size != 0) {
        as_header = data[0] & 1;
        ++data;
        --size;
    }
    h2o_mem_init_pool(&pool);
    if (as_header) {
        if (parse_basic(&pool, (const char *)data, size, &user, &pass) == 0)
            check_decoded(&pool, user, pass);
    } else {
        /* "user:password" as a client sends it: accepted exactly when well-formed and not too long */
        const uint8_t *colon = memchr(data, ':', size);
        char *enc = malloc(size / 3 * 4 + 8);
        size_t n = base64(enc, data, size);
        int well_formed = colon != NULL && colon != data && memchr(data, '\0', size) == NULL;
        int r = parse_basic(&pool, enc, n, &user, &pass);
        CHECK(r == ((well_formed && n <= 1300) ? 0 : -1));
        if (r == 0) {
            size_t ul = (size_t)(colon - data);
            CHECK(strlen(user) == ul && memcmp(user, data, ul) == 0);
            CHECK(strlen(pass) == size - ul - 1 && memcmp(pass, colon + 1, size - ul - 1) == 0);
        }
        free(enc);
    }
    h2o_mem_clear_pool(&pool);
    return 0;
}
