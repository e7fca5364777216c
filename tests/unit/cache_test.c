/* Unit tests for src/util/cache.c: generations, keys, slots, bounds. */
#include <stdlib.h>
#include <string.h>
#include "util/cache.h"
#include "tap.h"

static void *dup(const char *s)
{
    return strdup(s);
}

int main(void)
{
    cache_t *c = cache_new(4, 16);
    ok(c != NULL, "a cache of 4 slots, values up to 16 bytes");

    cache_key_t k = cache_key('m', "lib/app", "v1");
    ok(cache_get(c, 1, &k) == NULL, "empty: a miss");
    cache_value_t *v = cache_put(c, 1, &k, dup("hello"), 6);
    ok(v != NULL && v->num[0] == 0 && v->num[3] == 0, "put: the value, numbers zeroed");
    v->num[0] = 42;
    const cache_value_t *hit = cache_get(c, 1, &k);
    ok(hit != NULL && hit->len == 6 && strcmp(hit->data, "hello") == 0 && hit->num[0] == 42,
       "get at the same generation");
    ok(cache_get(c, 2, &k) == NULL, "another generation: a miss (one change invalidates every entry)");

    cache_key_t other_kind = cache_key('t', "lib/app", "v1"), split = cache_key('m', "lib/ap", "pv1"),
                other_b = cache_key('m', "lib/app", "v2");
    ok(cache_get(c, 1, &other_kind) == NULL, "same strings, another kind: a miss");
    ok(cache_get(c, 1, &split) == NULL, "(\"lib/ap\", \"pv1\") is not (\"lib/app\", \"v1\")");
    ok(cache_get(c, 1, &other_b) == NULL, "another b: a miss");

    char *big = malloc(17);
    memset(big, 'x', 17);
    ok(cache_put(c, 1, &other_b, big, 17) == NULL, "a value over the bound is refused and stays the caller's");
    free(big);
    ok(cache_put(c, 1, &other_b, NULL, 0) != NULL && cache_get(c, 1, &other_b) != NULL, "a value of numbers only");

    /* fill more keys than slots: whatever shares a slot is evicted, the cache holds at most 4 */
    char a[16];
    int live = 0;
    for (int i = 0; i < 64; ++i) {
        snprintf(a, sizeof(a), "r%d", i);
        cache_key_t ki = cache_key('b', a, "");
        cache_put(c, 7, &ki, dup(a), strlen(a) + 1);
    }
    for (int i = 0; i < 64; ++i) {
        snprintf(a, sizeof(a), "r%d", i);
        cache_key_t ki = cache_key('b', a, "");
        const cache_value_t *h = cache_get(c, 7, &ki);
        if (h != NULL) {
            ++live;
            ok(strcmp(h->data, a) == 0, "a live entry holds its own value (%s)", a);
        }
    }
    ok(live >= 1 && live <= 4, "64 keys into 4 slots: between 1 and 4 live (%d)", live);
    cache_free(c);
    cache_free(NULL);
    ok(1, "cache_free frees everything (the sanitizer build checks) and ignores NULL");
    return tap_done();
}
