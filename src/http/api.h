/* The registry API's handlers, one file per resource; the router (router.c) validates and dispatches. */
#ifndef BERTH_HTTP_API_H
#define BERTH_HTTP_API_H

#include <h2o.h>
#include "http/response.h"
#include "http/server.h"
#include "oci/digest.h"
#include "store/quota.h"

struct auth_principal;

/** What the router found in a request's path; lives in the request's pool. */
typedef struct {
    h2o_req_t *req;
    thread_ctx_t *tc;
    const char *name;              /* the repository, validated; NULL for /v2/ and the catalog */
    const char *ref;               /* the last path component: tag, digest or upload id (not validated), "" if none */
    struct auth_principal *who;    /* the caller, once authenticated (auth/principal.h, by http/gate.c) */
    const struct mirror_s *mirror; /* the pull-through mirror serving `name`, or NULL (api_mirror.c) */
    const char *upstream_name;     /* with a mirror: the upstream's name for the repository */
    int push;                      /* the request writes to the repository (a mirrored one refuses it) */
} route_t;

/** 1 if the request's method is `m`. */
static inline int method_is(h2o_req_t *req, const char *m)
{
    return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

/* api_base.c */
void api_base(route_t *r);
void api_healthz(h2o_req_t *req);
void api_readyz(h2o_req_t *req);

/* api_blob.c */
void api_blob_get(route_t *r); /* GET and HEAD */
/** Answer a GET or HEAD with blob `d` of `size` bytes, which the repository was found to hold. */
void api_blob_send(route_t *r, const digest_t *d, uint64_t size);
void api_blob_delete(route_t *r);

/* api_upload.c */
void api_upload_start(route_t *r);  /* POST /v2/<name>/blobs/uploads/ */
void api_upload_status(route_t *r); /* GET <location> */
void api_upload_patch(route_t *r);
void api_upload_put(route_t *r);
void api_upload_delete(route_t *r);

/* api_manifest.c */
void api_manifest_get(route_t *r); /* GET and HEAD */
/** Answer a GET or HEAD with manifest `mf` (found by the caller), as its Accept allows; disposes `mf`. */
void api_manifest_send(route_t *r, metastore_manifest_t *mf);
void api_manifest_put(route_t *r);
void api_manifest_delete(route_t *r);

/* api_namespace.c: GET /api/v1/namespaces/<ns> (r->ref: the namespace), for those who may push in it */
void api_namespace_get(route_t *r);

/* api_referrers.c */
void api_referrers(route_t *r);

/* api_tags.c */
void api_tags_list(route_t *r);
void api_catalog(route_t *r);
/** Frees each loop's cache of list pages as the loop ends. */
extern const server_hooks_t api_tags_hooks;

/* api_mirror.c: pull-through mirrors (the routing and fetching are mirror/route.h's and mirror/fetch.h's) */
/**
 * Decide, once the caller is authenticated (never before: which names are mirrored is not for anonymous callers of a
 * private registry to learn), whether a mirror serves the request's repository; if so set r->mirror,
 * r->upstream_name and r->name (berth's name for it, e.g. with "library/" added). Returns 0 to go on, or 1 with
 * *refuse set to the handler that refuses the request, to be called as any handler once the caller was found allowed
 * on r->name: a push (r->push) to a mirrored repository is refused 403 DENIED, and a request whose ?ns= no mirror
 * serves for a mirrored copy 404 NAME_UNKNOWN. -1 when it answered (500: the database failed).
 */
int api_mirror_route(route_t *r, void (**refuse)(route_t *r));
void api_mirror_manifest_get(route_t *r); /* GET and HEAD, fetching from the upstream what is missing or stale */
void api_mirror_blob_get(route_t *r);
/** Each loop's receiver of fetch progress; the fetch engine set up at start and told to stop at shutdown. */
extern const server_hooks_t api_mirror_hooks;

/* api_token.c: the token service (GET/POST /token) and its JWKS */
void api_token(h2o_req_t *req);
void api_jwks(h2o_req_t *req);

/**
 * Answer 403 DENIED: namespace quota `q` (store/quota.h) cannot take `need` more bytes (0: it is over its quota
 * already), with the quota and usage in the message and the detail.
 */
void api_quota_refuse(h2o_req_t *req, const quota_t *q, uint64_t need);

/** Parse a digest from a URL or query; on failure answer 400 DIGEST_INVALID and return -1. */
int api_digest_arg(h2o_req_t *req, const char *s, digest_t *out);
/** Answer 400 DIGEST_INVALID for digest `s`, which digest_parse refused with `e`. */
void api_digest_refuse(h2o_req_t *req, digest_err_t e, const char *s);

/** A write (upload or manifest) may go ahead: 0; or the volume is below storage.min_free: answered 507, -1. */
int api_space_ok(h2o_req_t *req);

#endif
