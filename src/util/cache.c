#include <pthread.h>
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
    const char *name; /* counted (cache_count), or NULL */
    uint64_t hits, misses;
    struct cache *next; /* in the list of counted caches */
    cache_entry_t slots[];
};

#define MAX_NAMES 16

/* The counted caches, and the totals of those freed, by name. */
static struct {
    pthread_mutex_t mu;
    cache_t *live;
    cache_stats_t gone[MAX_NAMES];
    size_t ngone;
} counted = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Only the cache's own thread writes its counters: a relaxed load and store, no lock-prefixed instruction. */
static inline void bump(uint64_t *c)
{
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

/* The entry of `name` in `t` (`*n` used, room for MAX_NAMES), added if new; NULL when full. Under counted.mu. */
static cache_stats_t *stats_slot(cache_stats_t *t, size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; ++i)
        if (strcmp(t[i].name, name) == 0)
            return &t[i];
    if (*n == MAX_NAMES)
        return NULL;
    t[*n] = (cache_stats_t){name, 0, 0};
    return &t[(*n)++];
}

void cache_count(cache_t *c, const char *name)
{
    pthread_mutex_lock(&counted.mu);
    c->name = name;
    c->next = counted.live;
    counted.live = c;
    stats_slot(counted.gone, &counted.ngone, name); /* the name's place in the order */
    pthread_mutex_unlock(&counted.mu);
}

size_t cache_stats(cache_stats_t *out, size_t max)
{
    cache_stats_t t[MAX_NAMES];
    size_t n = 0;
    pthread_mutex_lock(&counted.mu);
    for (size_t i = 0; i < counted.ngone; ++i)
        t[n++] = counted.gone[i];
    for (cache_t *c = counted.live; c != NULL; c = c->next) {
        cache_stats_t *e = stats_slot(t, &n, c->name);
        if (e != NULL) {
            e->hits += __atomic_load_n(&c->hits, __ATOMIC_RELAXED);
            e->misses += __atomic_load_n(&c->misses, __ATOMIC_RELAXED);
        }
    }
    pthread_mutex_unlock(&counted.mu);
    if (n > max)
        n = max;
    memcpy(out, t, n * sizeof(*t));
    return n;
}

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
    if (c->name != NULL) {
        pthread_mutex_lock(&counted.mu);
        cache_t **p = &counted.live;
        while (*p != c)
            p = &(*p)->next;
        *p = c->next;
        cache_stats_t *e = stats_slot(counted.gone, &counted.ngone, c->name);
        if (e != NULL) {
            e->hits += c->hits;
            e->misses += c->misses;
        }
        pthread_mutex_unlock(&counted.mu);
    }
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
    if (e->gen == gen && e->hash == k->hash && key_is(e->key, k)) {
        if (c->name != NULL)
            bump(&c->hits);
        return &e->value;
    }
    if (c->name != NULL)
        bump(&c->misses);
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
