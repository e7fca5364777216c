/*
 * berth's one cache: direct-mapped slots, each holding an owned key and an owned value, stamped with a generation
 * the user chooses — the store's write generation (store/db.h) for the database's read cache and the HTTP layer's
 * list pages, the auth generation for verified credentials. An entry is live only while the user still asks with
 * the generation it was stamped with, so one change invalidates everything at once and nothing has to know which
 * entries a change touched. Bounded: `slots` entries of at most `data_max` bytes each.
 *
 * Keys are (kind, a, b): one letter per kind of value (the store's letters are listed in store/db.h), then two
 * strings. Values are up to four integers and one optional block of bytes the user packs itself. Keys and values
 * are wiped when they leave (some are HMACs of passwords).
 * A cache is used by one thread at a time (one event loop's).
 */
#ifndef BERTH_UTIL_CACHE_H
#define BERTH_UTIL_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct cache cache_t;

/** A key: built by cache_key (which hashes it once for both the lookup and the fill); the strings are borrowed. */
typedef struct {
    char kind;
    const char *a, *b;
    uint64_t hash;
} cache_key_t;

/** A cached value. `data` belongs to the cache: valid until the next cache_put on the same cache. */
typedef struct {
    int64_t num[4];
    void *data;
    size_t len;
} cache_value_t;

/** An empty cache of `slots` entries, each value at most `data_max` bytes (free with cache_free); NULL if no memory. */
cache_t *cache_new(size_t slots, size_t data_max);
/** Free the cache with every key and value in it. NULL is ignored. */
void cache_free(cache_t *c);

/** The key (kind, a, b); a and b must stay valid while the key is used, b may be "" (never NULL). */
cache_key_t cache_key(char kind, const char *a, const char *b);

/** The value stored under `k` if it was stamped with generation `gen`, else NULL. Borrowed from the cache. */
const cache_value_t *cache_get(cache_t *c, uint64_t gen, const cache_key_t *k);

/**
 * Store a value under `k`, stamped with `gen` (the generation read before the value was; never 0), evicting
 * whatever shared its slot. Returns the value, with num[] zeroed for the caller to fill, and `data` (malloc'd, `len`
 * bytes; may be NULL) now owned by the cache. NULL when the value is not cached (`len` above the cache's `data_max`,
 * or no memory): `data` then stays the caller's.
 */
cache_value_t *cache_put(cache_t *c, uint64_t gen, const cache_key_t *k, void *data, size_t len);

/**
 * Count the lookups of `c` as hits and misses under `name` (a string that outlives the process's caches, e.g. a
 * literal), for cache_stats; caches of the same name add up. Counting costs a cache_get two relaxed atomic
 * accesses to the cache's own counters, no lock.
 */
void cache_count(cache_t *c, const char *name);

/** The lookups of the counted caches of one name, those freed since included. */
typedef struct {
    const char *name;
    uint64_t hits, misses;
} cache_stats_t;

/** Totals by name, into `out` (room for `max`, in the order the names were first counted); returns how many. */
size_t cache_stats(cache_stats_t *out, size_t max);

#endif
