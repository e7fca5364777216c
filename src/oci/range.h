/*
 * HTTP byte ranges: the request's `Range` header on blob GETs and the upload `Content-Range` header.
 */
#ifndef BERTH_OCI_RANGE_H
#define BERTH_OCI_RANGE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    RANGE_OK = 0,            /* out_start/out_end (inclusive) are set */
    RANGE_IGNORE = 1,        /* not a single bytes range berth serves (multi-range, other unit, garbage):
                                 serve the whole entity with 200, as RFC 9110 allows */
    RANGE_UNSATISFIABLE = 2, /* a well-formed single range that does not overlap the entity: 416 */
} range_result_t;

/**
 * Parse a `Range` request header against an entity of `size` bytes. Accepts "bytes=a-b", "bytes=a-" and
 * "bytes=-n" (suffix), clamps an end beyond the entity, optional whitespace around the spec. An empty entity
 * makes every range unsatisfiable.
 */
range_result_t range_parse(const char *s, size_t len, uint64_t size, uint64_t *out_start, uint64_t *out_end);

/**
 * Parse an upload's `Content-Range` header: "a-b" (what docker and the OCI spec send) or "bytes a-b/total" /
 * "bytes a-b/<asterisk>" (RFC form). Sets the inclusive start and end. Returns 0, or -1 if malformed or b < a.
 */
int content_range_parse(const char *s, size_t len, uint64_t *out_start, uint64_t *out_end);

#endif
