/*
 * Reading requests without a server: which endpoint a path and a method name (the router dispatches on it),
 * whether an Accept list allows a media type, and the credentials of a Basic Authorization header. Pure functions
 * over strings and h2o's header vector and pool, so that the unit tests (tests/unit/router_test.c, request_test.c)
 * and the fuzzers (fuzz/) call them directly.
 */
#ifndef BERTH_HTTP_PARSE_H
#define BERTH_HTTP_PARSE_H

#include <stddef.h>
#include <h2o.h>
#include "oci/errors.h"

/** Where a path leads, which decides the order of the router's steps. */
typedef enum {
    PARSE_NOWHERE,    /* no resource: answer `err` at once */
    PARSE_SERVICE,    /* /token, /healthz, …: the handler takes the request as it is (no authentication here) */
    PARSE_REGISTRY,   /* /v2/ and /v2/_catalog: authenticated, no repository */
    PARSE_REPOSITORY, /* /v2/<name>/…: mirror routing first (it may answer), then `err` or authentication */
    PARSE_NAMESPACE   /* /api/v1/namespaces/<ns>: `name` is the namespace; authentication as for pushing in it */
} parse_target_t;

/** The endpoints: a resource and a method. */
typedef enum {
    PARSE_EP_NONE, /* answer `err` instead */
    PARSE_EP_BASE,
    PARSE_EP_CATALOG,
    PARSE_EP_TOKEN,
    PARSE_EP_JWKS,
    PARSE_EP_HEALTHZ,
    PARSE_EP_READYZ,
    PARSE_EP_METRICS,
    PARSE_EP_TAGS_LIST,
    PARSE_EP_UPLOAD_START,
    PARSE_EP_UPLOAD_STATUS,
    PARSE_EP_UPLOAD_PATCH,
    PARSE_EP_UPLOAD_PUT,
    PARSE_EP_UPLOAD_DELETE,
    PARSE_EP_BLOB_GET, /* GET and HEAD */
    PARSE_EP_BLOB_DELETE,
    PARSE_EP_MANIFEST_GET, /* GET and HEAD */
    PARSE_EP_MANIFEST_PUT,
    PARSE_EP_MANIFEST_DELETE,
    PARSE_EP_REFERRERS,
    PARSE_EP_NAMESPACE, /* GET and HEAD */
} parse_ep_t;

/** A request's route. `name` and `ref` point into the path given to parse_route (nothing to free). */
typedef struct {
    parse_target_t target;
    parse_ep_t ep;
    err_code_t err;      /* with PARSE_EP_NONE: the error to answer */
    const char *message; /* with PARSE_EP_NONE: its message, NULL for the table's */
    const char *name;    /* /v2/<name>/…: the repository, valid unless err is ERR_NAME_INVALID; else NULL */
    size_t name_len;
    const char *ref; /* the last component (tag, digest or upload id), for the endpoints that take one; else NULL */
    size_t ref_len;
    unsigned actions;  /* the ACTION_* bits (oci/scope.h) the endpoint needs on the repository */
    int push;          /* the request writes to the repository (a mirrored one refuses it) */
    const char *allow; /* the methods of the resource found (the Allow header of a 405), or NULL */
} parse_route_t;

/**
 * Route the raw path `path` (`len` bytes, without the query; never normalised: "a/../b" is refused, not resolved)
 * for method `method` (`mlen` bytes, case-sensitive). Names, upload ids and the resource are checked; digests and
 * tags are the handlers' to check.
 */
void parse_route(parse_route_t *out, const char *path, size_t len, const char *method, size_t mlen);

/**
 * Whether a request's framing breaks RFC 9112 although h2o accepted it: a Content-Length that is not a plain
 * decimal number. For HTTP/1 (`head`, `len`: the raw request head, of which h2o keeps only one Host and one
 * Content-Length), also two Content-Lengths that differ, one beside Transfer-Encoding, and an HTTP/1.1 request
 * (`version` 0x101) without a Host header or with two. Returns what is wrong, or NULL.
 */
const char *parse_framing(const h2o_headers_t *headers, int version, const char *head, size_t len);

/**
 * Find header `name` (lower case) in the raw HTTP/1 request head `head` (`len` bytes, possibly followed by the
 * body): 1 with its value (blanks trimmed) in *value, pointing into `head`; 0 if absent.
 */
int parse_head_header(const char *head, size_t len, const char *name, h2o_iovec_t *value);

/**
 * Whether the request's Accept headers (all of them, each a comma-separated list) allow media type `mt`: an entry
 * equal to it, or a wildcard (any type, or any subtype of its type). Parameters, q-values included, are ignored
 * (q=0 allows too). No Accept header allows anything.
 */
int parse_accepts(const h2o_headers_t *headers, const char *mt);

/**
 * Decode the credentials of an `Authorization: Basic` header: `v` (`len` bytes) is what follows "Basic ", the base64
 * of "user:password". Sets `user` (non-empty, no colon) and `password` (may hold colons) to strings in `pool`.
 * 0, or -1 if malformed (also for a NUL byte inside, or more than 1300 characters).
 */
int parse_basic(h2o_mem_pool_t *pool, const char *v, size_t len, char **user, char **password);

#endif
