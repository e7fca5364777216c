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

    /* counted caches: hits and misses by name, those of a freed cache kept */
    cache_t *x = cache_new(8, 64), *y = cache_new(8, 64), *z = cache_new(8, 64);
    cache_count(x, "one");
    cache_count(y, "one");
    cache_count(z, "two");
    cache_key_t kx = cache_key('m', "a", "b");
    ok(cache_get(x, 1, &kx) == NULL, "count: a miss");
    cache_put(x, 1, &kx, NULL, 0);
    ok(cache_get(x, 1, &kx) != NULL && cache_get(x, 1, &kx) != NULL, "count: two hits");
    ok(cache_get(y, 1, &kx) == NULL, "count: a miss on the other cache of the same name");
    ok(cache_get(z, 1, &kx) == NULL && cache_get(z, 2, &kx) == NULL, "count: two misses on another name");
    cache_free(y);
    cache_stats_t st[4];
    size_t n = cache_stats(st, 4);
    ok(n == 2 && strcmp(st[0].name, "one") == 0 && strcmp(st[1].name, "two") == 0, "stats: the names in order (%zu)",
       n);
    ok(n == 2 && st[0].hits == 2 && st[0].misses == 2, "stats: one: 2 hits, 2 misses, a freed cache's kept");
    ok(n == 2 && st[1].hits == 0 && st[1].misses == 2, "stats: two: 0 hits, 2 misses");
    ok(cache_stats(st, 1) == 1, "stats: at most max entries");
    cache_free(x);
    cache_free(z);
    n = cache_stats(st, 4);
    ok(n == 2 && st[0].hits == 2 && st[1].misses == 2, "stats: unchanged once every cache is freed");
    return tap_done();
}
