/* Non-cryptographic hashing, for in-memory tables. */
#ifndef BERTH_UTIL_HASH_H
#define BERTH_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV_INIT 14695981039346656037ull

/** Continue an FNV-1a hash `h` (start with HASH_FNV_INIT) over `len` bytes at `p`. */
static inline uint64_t hash_fnv(uint64_t h, const void *p, size_t len)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < len; ++i)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

#endif
