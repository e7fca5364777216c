/*
 * The read cache of one connection: direct-mapped slots, each holding an owned key and an owned value, stamped with
 * the generation (store/db.h) in effect before the value was read. An entry is live only while the connection's
 * generation is still the one it was stamped with, so every committed write invalidates everything at once and
 * nothing has to know which entries a write touched.
 *
 * Keys are (kind, a, b): one letter per kind of value (the modules' letters are listed in store/db.h), then two
 * strings. Values are up to four integers and one optional block of bytes the module packs itself.
 * Nothing here knows SQLite: a second database backend uses the same cache.
 * A cache is used by one thread at a time (one event loop's connection).
 */
#ifndef BERTH_STORE_CACHE_H
#define BERTH_STORE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define CACHE_SLOTS 1024 /* per connection */
/* Larger values are not cached: 16 KiB of content and what describes it (a manifest's digest and media type).
 * This bounds a cache at about 17 MiB. */
#define CACHE_DATA_MAX (16384 + 512)

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

/** An empty cache (free with cache_free). */
cache_t *cache_new(void);
/** Free the cache with every key and value in it. NULL is ignored. */
void cache_free(cache_t *c);

/** The key (kind, a, b); a and b must stay valid while the key is used, b may be "" (never NULL). */
cache_key_t cache_key(char kind, const char *a, const char *b);

/** The value stored under `k` if it was stamped with generation `gen`, else NULL. Borrowed from the cache. */
const cache_value_t *cache_get(cache_t *c, uint64_t gen, const cache_key_t *k);

/**
 * Store a value under `k`, stamped with `gen` (the generation read before the value was; never 0), evicting
 * whatever shared its slot. Returns the value, with num[] zeroed for the caller to fill, and `data` (malloc'd, `len`
 * bytes; may be NULL) now owned by the cache. NULL when the value is not cached (`len` above CACHE_DATA_MAX, or
 * no memory): `data` then stays the caller's.
 */
cache_value_t *cache_put(cache_t *c, uint64_t gen, const cache_key_t *k, void *data, size_t len);

#endif
