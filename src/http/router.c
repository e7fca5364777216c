#include <string.h>
#include "http/api.h"
#include "http/auth.h"
#include "http/router.h"
#include "oci/name.h"

static void method_unknown(h2o_req_t *req)
{
    res_error(req, ERR_METHOD_UNKNOWN, NULL, NULL);
}

/* "/v2/<name>/<rest>": find which resource the tail names. The name may itself contain "blobs" or "manifests"
 * as components, so the resource is recognised from the end of the path. */
static void route_v2(h2o_req_t *req, const char *p, size_t len)
{
    route_t *r = h2o_mem_alloc_pool(&req->pool, sizeof(*r));
    *r = (route_t){req, thread_ctx_of(req), NULL, "", NULL};
    /* the last four components, [0] being the last: start and length */
    const char *cs[4];
    size_t cl[4], n = 0, e = len;
    for (size_t i = len + 1; i-- > 0 && n < 4;) {
        if (i == 0 || p[i - 1] == '/') {
            cs[n] = p + i;
            cl[n] = e - i;
            ++n;
            e = i ? i - 1 : 0;
        }
    }
#define IS(k, s) (n > (k) && cl[k] == sizeof(s) - 1 && memcmp(cs[k], s, sizeof(s) - 1) == 0)
    enum { R_NONE, R_TAGS, R_UPLOAD_START, R_UPLOAD, R_BLOB, R_MANIFEST, R_REFERRERS } kind = R_NONE;
    size_t tail = 0; /* how many components follow the name */
    if (IS(1, "tags") && IS(0, "list")) {
        kind = R_TAGS;
        tail = 2;
    } else if (IS(2, "blobs") && IS(1, "uploads")) {
        kind = cl[0] == 0 ? R_UPLOAD_START : R_UPLOAD;
        tail = 3;
    } else if (IS(1, "blobs") && IS(0, "uploads")) {
        kind = R_UPLOAD_START;
        tail = 2;
    } else if (IS(1, "blobs")) {
        kind = R_BLOB;
        tail = 2;
    } else if (IS(1, "manifests")) {
        kind = R_MANIFEST;
        tail = 2;
    } else if (IS(1, "referrers")) {
        kind = R_REFERRERS;
        tail = 2;
    }
#undef IS
    if (kind == R_NONE || n <= tail || cs[tail - 1] - 1 <= p) {
        res_error(req, ERR_NOT_FOUND, "no such API endpoint", NULL);
        return;
    }
    size_t nlen = (size_t)(cs[tail - 1] - 1 - p);
    if (!name_valid(p, nlen)) {
        res_error(req, ERR_NAME_INVALID, NULL, json_pack("{s:s%}", "name", p, nlen));
        return;
    }
    r->name = h2o_strdup(&req->pool, p, nlen).base;
    if (kind != R_TAGS && kind != R_UPLOAD_START)
        r->ref = h2o_strdup(&req->pool, cs[0], cl[0]).base;

    int read = method_is(req, "GET") || method_is(req, "HEAD");
    int push = kind == R_UPLOAD_START || kind == R_UPLOAD || (kind == R_MANIFEST && method_is(req, "PUT"));
    if (api_mirror_route(r, push) != 0)
        return;
    void (*handler)(route_t *) = NULL;
    unsigned actions = ACTION_PULL;
    switch (kind) {
    case R_TAGS:
        handler = read ? api_tags_list : NULL;
        break;
    case R_UPLOAD_START:
        handler = method_is(req, "POST") ? api_upload_start : NULL;
        actions = ACTION_PUSH;
        break;
    case R_UPLOAD:
        if (!upload_uuid_valid(r->ref, strlen(r->ref))) {
            res_error(req, ERR_BLOB_UPLOAD_UNKNOWN, NULL, NULL);
            return;
        }
        handler = read                         ? api_upload_status
                  : method_is(req, "PATCH")    ? api_upload_patch
                  : method_is(req, "PUT")      ? api_upload_put
                  : method_is(req, "DELETE")   ? api_upload_delete
                                               : NULL;
        actions = ACTION_PUSH;
        break;
    case R_BLOB:
        handler = read ? (r->mirror ? api_mirror_blob_get : api_blob_get) : method_is(req, "DELETE") ? api_blob_delete : NULL;
        actions = read ? ACTION_PULL : ACTION_DELETE;
        break;
    case R_MANIFEST:
        handler = read                        ? (r->mirror ? api_mirror_manifest_get : api_manifest_get)
                  : method_is(req, "PUT")    ? api_manifest_put
                  : method_is(req, "DELETE") ? api_manifest_delete
                                             : NULL;
        actions = read ? ACTION_PULL : method_is(req, "PUT") ? ACTION_PUSH : ACTION_DELETE;
        break;
    case R_REFERRERS:
        handler = read ? api_referrers : NULL;
        break;
    default:
        break;
    }
    if (handler == NULL) {
        method_unknown(req);
        return;
    }
    auth_require(r, actions, 0, handler);
}

static void route_top(h2o_req_t *req, void (*handler)(route_t *), int catalog)
{
    route_t *r = h2o_mem_alloc_pool(&req->pool, sizeof(*r));
    *r = (route_t){req, thread_ctx_of(req), NULL, "", NULL};
    if (!method_is(req, "GET") && !method_is(req, "HEAD")) {
        method_unknown(req);
        return;
    }
    auth_require(r, 0, catalog, handler);
}

static void on_req_done(void *p)
{
    --**(size_t **)p;
}

int router_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    size_t **inflight = h2o_mem_alloc_shared(&req->pool, sizeof(*inflight), on_req_done);
    *inflight = &thread_ctx_of(req)->inflight;
    ++**inflight;

    /* the raw path, not h2o's normalised one: "a/../b" must be refused, never resolved */
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    const char *p = req->path.base;

    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("docker-distribution-api-version"), 1, NULL,
                          H2O_STRLIT("registry/2.0"));
    if (h2o_memis(p, plen, H2O_STRLIT("/v2")) || h2o_memis(p, plen, H2O_STRLIT("/v2/"))) {
        route_top(req, api_base, 0);
    } else if (h2o_memis(p, plen, H2O_STRLIT("/v2/_catalog"))) {
        route_top(req, api_catalog, 1);
    } else if (plen > 4 && memcmp(p, "/v2/", 4) == 0) {
        route_v2(req, p + 4, plen - 4);
    } else if (h2o_memis(p, plen, H2O_STRLIT("/token"))) {
        api_token(req);
    } else if (h2o_memis(p, plen, H2O_STRLIT("/token/jwks")) || h2o_memis(p, plen, H2O_STRLIT("/.well-known/jwks.json"))) {
        api_jwks(req);
    } else if (h2o_memis(p, plen, H2O_STRLIT("/healthz"))) {
        api_healthz(req);
    } else if (h2o_memis(p, plen, H2O_STRLIT("/readyz"))) {
        api_readyz(req);
    } else if (h2o_memis(p, plen, H2O_STRLIT("/metrics"))) {
        api_metrics(req);
    } else {
        res_error(req, ERR_NOT_FOUND, NULL, NULL);
    }
    return 0;
}
