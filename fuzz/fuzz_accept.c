/*
 * libFuzzer target for the Accept check (parse_accepts in src/http/parse.c). The first byte picks the media type
 * asked about; the rest, split at '\n', are the values of as many Accept headers (with another header between them).
 * Compared with a second implementation of the rule parse.h states, written the other way round: each entry is cut
 * out and normalised into a string of its own first, then compared whole.
 */
#include "fuzz.h"
#include "http/parse.h"
#include "oci/manifest.h"

/* Does one header value allow `mt`? Entries split at ',', parameters (from ';') dropped, spaces and tabs trimmed. */
static int oracle_value(const char *v, size_t len, const char *mt)
{
    const char *slash = strchr(mt, '/');
    size_t typelen = slash != NULL ? (size_t)(slash - mt) : strlen(mt);
    size_t i = 0;
    for (;;) {
        size_t j = i;
        while (j < len && v[j] != ',')
            ++j;
        size_t k = i;
        while (k < j && v[k] != ';')
            ++k;
        char *e = fuzz_strndup(v + i, k - i), *a = e;
        size_t n = k - i;
        while (n > 0 && (*a == ' ' || *a == '\t'))
            ++a, --n;
        while (n > 0 && (a[n - 1] == ' ' || a[n - 1] == '\t'))
            --n;
        int match =
            n != 0 &&
            ((n == 3 && memcmp(a, "*/*", 3) == 0) || (n == strlen(mt) && memcmp(a, mt, n) == 0) ||
             (slash != NULL && n == typelen + 2 && memcmp(a, mt, typelen) == 0 && memcmp(a + typelen, "/*", 2) == 0));
        free(e);
        if (match)
            return 1;
        if (j >= len)
            return 0;
        i = j + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const types[] = {
        MT_OCI_MANIFEST, MT_OCI_INDEX, MT_DOCKER_MANIFEST, MT_DOCKER_LIST, "application/json", "a/b",
    };
    const char *mt = types[0];
    h2o_mem_pool_t pool;
    h2o_headers_t hs = {NULL};
    int want = 0, headers = 0;

    if (size != 0) {
        mt = types[data[0] % (sizeof(types) / sizeof(types[0]))];
        ++data;
        --size;
    }
    h2o_mem_init_pool(&pool);
    const char *s = (const char *)data, *end = s + size;
    char *values[64];
    while (size != 0 && s <= end && headers < 64) {
        const char *nl = memchr(s, '\n', (size_t)(end - s)), *e = nl != NULL ? nl : end;
        size_t len = (size_t)(e - s);
        /* exactly the value's bytes in memory of their own, so that ASan sees a read beyond them */
        char *v = values[headers++] = malloc(len != 0 ? len : 1);
        memcpy(v, s, len);
        h2o_add_header(&pool, &hs, H2O_TOKEN_ACCEPT, NULL, v, len);
        h2o_add_header(&pool, &hs, H2O_TOKEN_USER_AGENT, NULL, H2O_STRLIT("*/*"));
        want |= oracle_value(v, len, mt);
        s = e + 1;
    }
    if (headers == 0)
        want = 1; /* no Accept header allows anything */
    CHECK(parse_accepts(&hs, mt) == want);
    while (headers > 0)
        free(values[--headers]);
    h2o_mem_clear_pool(&pool);
    return 0;
}
