/*
 * libFuzzer target for the decoder of query strings and of the /token POST form (form_value in src/http/response.c,
 * which req_query also uses). The first byte picks a key and an occurrence, the rest is the string. Compared with a
 * second decoder written from the rules response.h states; and values encoded by an independent encoder (as a
 * client's library would) must come back unchanged, each under its key and in order under a repeated key.
 */
#include "fuzz.h"
#include "http/response.h"

static int hex(char c)
{
    const char *digits = "0123456789abcdefABCDEF", *p = c != '\0' ? strchr(digits, c) : NULL;
    return p == NULL ? -1 : p - digits < 16 ? (int)(p - digits) : (int)(p - digits) - 6;
}

/* The nth value of `key`: pairs split at '&', the key compared raw up to the first '=', the value percent-decoded
 * ("%00" and malformed escapes kept as they are) with '+' as a space. NULL if absent; malloc'd. */
static char *oracle(const char *s, size_t len, const char *key, int nth)
{
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && s[j] != '&')
            ++j;
        size_t eq = i;
        while (eq < j && s[eq] != '=')
            ++eq;
        if (eq - i == strlen(key) && memcmp(s + i, key, eq - i) == 0 && nth-- == 0) {
            char *out = malloc(j - i + 1);
            size_t o = 0;
            for (size_t k = eq < j ? eq + 1 : j; k < j; ++k) {
                if (s[k] == '%' && j - k >= 3 && hex(s[k + 1]) >= 0 && hex(s[k + 2]) >= 0 &&
                    (hex(s[k + 1]) | hex(s[k + 2])) != 0) {
                    out[o++] = (char)(hex(s[k + 1]) * 16 + hex(s[k + 2]));
                    k += 2;
                } else {
                    out[o++] = s[k] == '+' ? ' ' : s[k];
                }
            }
            out[o] = '\0';
            return out;
        }
        i = j + 1;
    }
    return NULL;
}

/* Append `v` (`len` bytes, NULs left out: a decoded value is a C string) percent-encoded to `out` at *o. */
static void encode(char *out, size_t *o, const char *v, size_t len)
{
    for (size_t i = 0; i < len; ++i) {
        unsigned char c = (unsigned char)v[i];
        if (c == '\0')
            continue;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-._~", c))
            out[(*o)++] = (char)c;
        else if (c == ' ')
            out[(*o)++] = '+';
        else
            *o += (size_t)sprintf(out + *o, "%%%02X", c);
    }
}

static int same(const char *got, const char *want)
{
    return want == NULL ? got == NULL : got != NULL && strcmp(got, want) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[] = {"scope", "a", "", "grant_type", "a+b", "%41", "username", "x=y"};
    const char *key = keys[0];
    int nth = 0;
    h2o_mem_pool_t pool;

    if (size != 0) {
        key = keys[data[0] % 8];
        nth = data[0] / 8 % 4;
        ++data;
        --size;
    }
    h2o_mem_init_pool(&pool);
    const char *s = (const char *)data;
    char *want = oracle(s, size, key, nth);
    CHECK(same(form_value(&pool, s, size, key, nth), want));
    free(want);

    /* the input's lines as values: under keys k0, k1, … and each under the repeated key v */
    char *enc = malloc(size * 6 + 33 * 16 + 1); /* each byte at most 3 characters, twice */
    size_t o = 0, nvals = 0, i = 0;
    while (i <= size && nvals < 32) {
        const char *nl = memchr(s + i, '\n', size - i);
        size_t end = nl != NULL ? (size_t)(nl - s) : size;
        o += (size_t)sprintf(enc + o, "%sk%zu=", o != 0 ? "&" : "", nvals);
        encode(enc, &o, s + i, end - i);
        o += (size_t)sprintf(enc + o, "&v=");
        encode(enc, &o, s + i, end - i);
        ++nvals;
        i = end + 1;
    }
    i = 0;
    for (size_t k = 0; k < nvals; ++k) {
        const char *nl = memchr(s + i, '\n', size - i);
        size_t end = nl != NULL ? (size_t)(nl - s) : size;
        char *value = malloc(end - i + 1), name[16];
        size_t n = 0;
        for (size_t j = i; j < end; ++j)
            if (s[j] != '\0')
                value[n++] = s[j];
        value[n] = '\0';
        snprintf(name, sizeof(name), "k%zu", k);
        CHECK(same(form_value(&pool, enc, o, name, 0), value));
        CHECK(same(form_value(&pool, enc, o, "v", (int)k), value));
        free(value);
        i = end + 1;
    }
    CHECK(form_value(&pool, enc, o, "v", (int)nvals) == NULL);
    free(enc);
    h2o_mem_clear_pool(&pool);
    return 0;
}
