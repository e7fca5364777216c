/*
 * Content digests as the OCI spec defines them: "algorithm:encoded".
 * berth accepts sha256 (64 lowercase hex) and sha512 (128 lowercase hex).
 */
#ifndef BERTH_OCI_DIGEST_H
#define BERTH_OCI_DIGEST_H

#include <stddef.h>
#include <stdint.h>

typedef enum { DIGEST_SHA256 = 0, DIGEST_SHA512 = 1 } digest_algo_t;

#define DIGEST_MAX_HEX 128
#define DIGEST_MAX_STR (7 + DIGEST_MAX_HEX) /* "sha512:" + hex, without NUL */

/** A parsed, validated digest; `str` is NUL-terminated "algo:hex". */
typedef struct {
    digest_algo_t algo;
    size_t len; /* strlen(str) */
    char str[DIGEST_MAX_STR + 1];
} digest_t;

/* No pointer into `str` is kept in the struct, so that digest_t can be copied by assignment. */
/** The encoded (hex) part of a digest: both algorithm names are six letters, so it starts at str + 7. */
static inline const char *digest_hex(const digest_t *d)
{
    return d->str + 7;
}

/** Result of digest_parse. */
typedef enum {
    DIGEST_OK = 0,
    DIGEST_EMALFORMED = -1,   /* does not match the spec's digest grammar */
    DIGEST_EUNSUPPORTED = -2, /* grammatical, but an algorithm berth does not implement */
} digest_err_t;

/**
 * Parse `s` (length `len`, not necessarily NUL-terminated) into `out`.
 * Grammar (OCI image-spec descriptor.md): algorithm ":" encoded, algorithm = component (separator component)*,
 * component = [a-z0-9]+, separator = [+._-]; encoded = [a-zA-Z0-9=_-]+. For sha256 the encoded part must be
 * exactly 64 lowercase hex characters, for sha512 exactly 128; a known algorithm with any other encoding is EMALFORMED;
 * a grammatical digest of an unknown algorithm is EUNSUPPORTED.
 */
digest_err_t digest_parse(digest_t *out, const char *s, size_t len);

/** Name of an algorithm ("sha256"/"sha512"); digest_algo_from_name returns -1 if unknown. */
const char *digest_algo_name(digest_algo_t algo);
int digest_algo_from_name(const char *name, size_t len);
/** Length in hex characters of an algorithm's digest (64 or 128). */
size_t digest_algo_hexlen(digest_algo_t algo);

/** A streaming hash (EVP underneath). Allocated with digest_hasher_new, freed with digest_hasher_free. */
typedef struct digest_hasher digest_hasher_t;
digest_hasher_t *digest_hasher_new(digest_algo_t algo);
void digest_hasher_update(digest_hasher_t *h, const void *data, size_t len);
/** Finish the hash into `out` (formatted "algo:hex"); the hasher may not be updated afterwards. */
void digest_hasher_final(digest_hasher_t *h, digest_t *out);
digest_algo_t digest_hasher_algo(const digest_hasher_t *h);
void digest_hasher_free(digest_hasher_t *h);

/** One-shot hash of a buffer. */
void digest_compute(digest_t *out, digest_algo_t algo, const void *data, size_t len);

/** Two digests equal (same algorithm and value). */
int digest_equal(const digest_t *a, const digest_t *b);

#endif
