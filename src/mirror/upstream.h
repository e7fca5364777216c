/*
 * The HTTP client of another registry: of a pull-through mirror's upstream (GET and HEAD of manifests, blobs and tag
 * lists) and of a replication rule's remote (also POST, PUT and PATCH of uploads and manifests, with a body from a
 * file or memory), with libcurl, following the registry's auth challenge (Docker's token protocol, or Basic) with the
 * configured credentials or none, and caching its tokens until they expire. Blocking: call on a worker thread.
 * Each thread keeps one curl handle, so connections to the registry are reused.
 */
#ifndef BERTH_MIRROR_UPSTREAM_H
#define BERTH_MIRROR_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include "config/config.h"

typedef struct upstream upstream_t;

/** What the upstream answered. */
typedef struct {
    long status;     /* the final HTTP status; 0 if there was no answer (see error) */
    char error[256]; /* why there was no answer, or the start of an error body, for the log */
    char content_type[256];
    char digest[160];     /* Docker-Content-Digest, "" if absent */
    int64_t length;       /* Content-Length, -1 if absent */
    char retry_after[32]; /* Retry-After, "" if absent */
    char link[512];       /* Link (the next page of a tag list), "" if absent or longer */
    char location[2048];  /* Location (an upload session), "" if absent or longer */
} upstream_resp_t;

/** Where a 2xx body goes: `start` once the status and headers are known, then `data` for each piece; either
 * returns 0 to go on or -1 to abort the transfer. For a HEAD (or an empty body) only `start` is called. */
typedef struct {
    int (*start)(void *ctx, const upstream_resp_t *resp);
    int (*data)(void *ctx, const void *p, size_t n);
    void *ctx;
} upstream_sink_t;

/** Once per process, before threads start: loads libcurl. 0, or -1 if it cannot (logged). */
int upstream_global_init(void);

upstream_t *upstream_new(const config_mirror_t *cfg);

/** Where and how to reach a registry, for upstream_open (the strings are copied). */
typedef struct {
    const char *base;     /* "https://host[:port]", no trailing slash */
    const char *username; /* NULL or "": anonymous */
    const char *password;
    uint64_t timeout_ms;
    int tls_verify;      /* 0: accept any certificate (a test, a private CA one cannot install) */
    const char *ca_file; /* NULL: the system's CAs */
    const char *agent;   /* the User-Agent's product ("berth-mirror"), the version added */
} upstream_opts_t;

/** A client of the registry `o` describes; upstream_new is this with a mirror's settings. */
upstream_t *upstream_open(const upstream_opts_t *o);
void upstream_free(upstream_t *u);

/**
 * `method` ("GET" or "HEAD") /v2/<name>/<kind>/<ref> of the upstream (`kind` "manifests", "blobs" or "tags", whose
 * `ref` is "list" with its query), with
 * `accept` as the Accept header (NULL: none). A 401 is answered once by fetching a token (or sending Basic
 * credentials) and retrying. `whole_timeout`: the mirror's timeout bounds the whole transfer (manifests); else
 * only connecting and a stalled transfer (blobs). Returns 0 if the upstream answered (status in resp->status; the
 * body of a 2xx went to `sink`), -1 if not (resp->error says why; also when the sink aborted).
 */
int upstream_fetch(upstream_t *u, const char *method, const char *name, const char *kind, const char *ref,
                   const char *accept, int whole_timeout, const upstream_sink_t *sink, upstream_resp_t *resp);

/** A request of upstream_request. */
typedef struct {
    const char *method; /* GET, HEAD, POST, PUT, PATCH */
    const char *name;   /* the repository, for the token's scope; NULL: the catalog (registry:catalog:*) */
    const char *path;   /* "/v2/..." (with its query) below the base, or an absolute URL under the base (a Location) */
    const char *accept; /* NULL: no Accept */
    const char *content_type; /* of the body, NULL: none */
    int push;                 /* ask for pull,push rather than pull */
    int whole_timeout;        /* as upstream_fetch's */
    int fd;                   /* >= 0: the body is `len` bytes of this file from `off` (pread; the fd stays open) */
    uint64_t off, len;
    const void *mem; /* else with fd < 0: `len` bytes here (NULL and 0: an empty body for POST/PUT/PATCH) */
    const int *stop; /* when *stop becomes non-zero (atomically), the transfer aborts; may be NULL */
} upstream_req_t;

/**
 * Any request to the registry, as upstream_fetch; a body is sent with POST, PUT and PATCH (again after a 401). An
 * absolute `path` outside the base is refused (-1): credentials go to the registry only. `sink` may be NULL.
 */
int upstream_request(upstream_t *u, const upstream_req_t *rq, const upstream_sink_t *sink, upstream_resp_t *resp);

/**
 * POST `body` (`len` bytes) to `url` with the header lines `headers` ("Name: value", `nheaders` of them), within
 * `timeout_ms` (connecting and the whole exchange), following no redirect: 0 with the answer's status in *status (its
 * body is read and dropped), or -1 with the reason in `err`. For webhooks; upstream_global_init() first.
 */
int upstream_post(const char *url, const char *const *headers, size_t nheaders, const char *body, size_t len,
                  long timeout_ms, long *status, char *err, size_t errlen);

/**
 * GET `url` (no credentials; redirects followed; `timeout_ms` for the whole transfer, at most 64 KiB): 0 with the
 * malloc'd body in *data (*len bytes) when the answer is 200, else -1 with the reason in `err`. Blocking. For
 * documents other than an upstream registry's, such as an external token issuer's JWKS.
 */
int upstream_get_url(const char *url, long timeout_ms, char **data, size_t *len, char *err, size_t errlen);

#endif
