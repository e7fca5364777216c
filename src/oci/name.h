/*
 * The distribution spec's grammar for repository names and tags.
 *   name      = path-component ("/" path-component)*
 *   path-comp = [a-z0-9]+ (separator [a-z0-9]+)*,  separator = "." | "_" | "__" | "-"+
 *   tag       = [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
 *   reference = tag | digest   (the last component of /v2/<name>/manifests/<reference>)
 */
#ifndef BERTH_OCI_NAME_H
#define BERTH_OCI_NAME_H

#include <stddef.h>
#include "oci/digest.h"

#define NAME_MAX_LEN 255 /* berth's limit on a whole repository name (distribution uses 255 too) */
#define TAG_MAX_LEN 128

/** 1 if `s` (length `len`) is a valid repository name, else 0. Never touches anything beyond s[len-1]. */
int name_valid(const char *s, size_t len);

/** 1 if `s` (length `len`) is a valid tag, else 0. */
int tag_valid(const char *s, size_t len);

/** What a manifest reference is. A digest always has a colon and a tag never does, so the colon decides. */
typedef enum {
    REFERENCE_TAG,          /* a valid tag */
    REFERENCE_DIGEST,       /* a valid digest, parsed into *d */
    REFERENCE_ETAG,         /* no colon, and not a valid tag */
    REFERENCE_EDIGEST,      /* a colon, and not a digest (DIGEST_EMALFORMED) */
    REFERENCE_EUNSUPPORTED, /* a grammatical digest of an algorithm berth does not implement (DIGEST_EUNSUPPORTED) */
} reference_t;

/** Classify the reference `s` (length `len`); with REFERENCE_DIGEST, *d is the digest (else left undefined). */
reference_t reference_parse(const char *s, size_t len, digest_t *d);

#endif
