#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util/cache.h"
#include "util/hash.h"

typedef struct {
    uint64_t gen; /* 0: empty */
    uint64_t hash;
    char *key; /* kind, a, '\n', b */
    cache_value_t value;
} cache_entry_t;

struct cache {
    size_t nslots, data_max;
    cache_entry_t slots[];
};

cache_t *cache_new(size_t slots, size_t data_max)
{
    cache_t *c = calloc(1, sizeof(cache_t) + slots * sizeof(cache_entry_t));
    if (c != NULL) {
        c->nslots = slots;
        c->data_max = data_max;
    }
    return c;
}

static void entry_clear(cache_entry_t *e)
{
    if (e->key != NULL) {
        explicit_bzero(e->key, strlen(e->key));
        free(e->key);
    }
    if (e->value.data != NULL) {
        explicit_bzero(e->value.data, e->value.len);
        free(e->value.data);
    }
    memset(e, 0, sizeof(*e));
}

void cache_free(cache_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nslots; ++i)
        entry_clear(&c->slots[i]);
    free(c);
}

cache_key_t cache_key(char kind, const char *a, const char *b)
{
    cache_key_t k = {kind, a, b, 0};
    uint64_t h = hash_fnv(HASH_FNV_INIT, &kind, 1);
    h = hash_fnv(h, a, strlen(a));
    h = hash_fnv(h, "\n", 1); /* ("ab", "c") and ("a", "bc") differ: '\n' is in no repository name */
    k.hash = hash_fnv(h, b, strlen(b));
    return k;
}

static int key_is(const char *key, const cache_key_t *k)
{
    size_t al = strlen(k->a);
    return key[0] == k->kind && strncmp(key + 1, k->a, al) == 0 && key[1 + al] == '\n' &&
           strcmp(key + 2 + al, k->b) == 0;
}

const cache_value_t *cache_get(cache_t *c, uint64_t gen, const cache_key_t *k)
{
    cache_entry_t *e = &c->slots[k->hash % c->nslots];
    if (e->gen == gen && e->hash == k->hash && key_is(e->key, k))
        return &e->value;
    return NULL;
}

cache_value_t *cache_put(cache_t *c, uint64_t gen, const cache_key_t *k, void *data, size_t len)
{
    cache_entry_t *e = &c->slots[k->hash % c->nslots];
    char *key;
    if (len > c->data_max || asprintf(&key, "%c%s\n%s", k->kind, k->a, k->b) < 0)
        return NULL;
    entry_clear(e);
    e->gen = gen;
    e->hash = k->hash;
    e->key = key;
    e->value.data = data;
    e->value.len = len;
    return &e->value;
}
