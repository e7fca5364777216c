/* Secrets: random tokens for passwords, refresh and access tokens, and comparing them without leaking timing. */
#ifndef BERTH_UTIL_SECRET_H
#define BERTH_UTIL_SECRET_H

#include <stddef.h>

/** A random secret of `nbytes` bytes (at most 1 MiB), base64url without padding; malloc'd (caller frees), or NULL. */
char *secret_random(size_t nbytes);

/** Compare two byte strings in constant time (for their common length); 1 if equal. */
int secret_equal(const void *a, size_t alen, const void *b, size_t blen);

#endif
