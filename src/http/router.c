#include <string.h>
#include "http/api.h"
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
    route_t r = {req, thread_ctx_of(req), NULL, ""};
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
    r.name = h2o_strdup(&req->pool, p, nlen).base;
    if (kind != R_TAGS && kind != R_UPLOAD_START)
        r.ref = h2o_strdup(&req->pool, cs[0], cl[0]).base;

    switch (kind) {
    case R_TAGS:
        if (method_is(req, "GET") || method_is(req, "HEAD"))
            return api_tags_list(&r);
        break;
    case R_UPLOAD_START:
        if (method_is(req, "POST"))
            return api_upload_start(&r);
        break;
    case R_UPLOAD:
        if (!upload_uuid_valid(r.ref, strlen(r.ref))) {
            res_error(req, ERR_BLOB_UPLOAD_UNKNOWN, NULL, NULL);
            return;
        }
        if (method_is(req, "GET") || method_is(req, "HEAD"))
            return api_upload_status(&r);
        if (method_is(req, "PATCH"))
            return api_upload_patch(&r);
        if (method_is(req, "PUT"))
            return api_upload_put(&r);
        if (method_is(req, "DELETE"))
            return api_upload_delete(&r);
        break;
    case R_BLOB:
        if (method_is(req, "GET") || method_is(req, "HEAD"))
            return api_blob_get(&r);
        if (method_is(req, "DELETE"))
            return api_blob_delete(&r);
        break;
    case R_MANIFEST:
        if (method_is(req, "GET") || method_is(req, "HEAD"))
            return api_manifest_get(&r);
        if (method_is(req, "PUT"))
            return api_manifest_put(&r);
        if (method_is(req, "DELETE"))
            return api_manifest_delete(&r);
        break;
    case R_REFERRERS:
        if (method_is(req, "GET") || method_is(req, "HEAD"))
            return api_referrers(&r);
        break;
    default:
        break;
    }
    method_unknown(req);
}

int router_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    /* the raw path, not h2o's normalised one: "a/../b" must be refused, never resolved */
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    const char *p = req->path.base;

    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("docker-distribution-api-version"), 1, NULL,
                          H2O_STRLIT("registry/2.0"));
    if (h2o_memis(p, plen, H2O_STRLIT("/v2")) || h2o_memis(p, plen, H2O_STRLIT("/v2/"))) {
        if (method_is(req, "GET") || method_is(req, "HEAD"))
            api_base(req);
        else
            method_unknown(req);
    } else if (h2o_memis(p, plen, H2O_STRLIT("/v2/_catalog"))) {
        if (method_is(req, "GET") || method_is(req, "HEAD"))
            api_catalog(req);
        else
            method_unknown(req);
    } else if (plen > 4 && memcmp(p, "/v2/", 4) == 0) {
        route_v2(req, p + 4, plen - 4);
    } else if (h2o_memis(p, plen, H2O_STRLIT("/healthz"))) {
        api_healthz(req);
    } else if (h2o_memis(p, plen, H2O_STRLIT("/readyz"))) {
        api_readyz(req);
    } else {
        res_error(req, ERR_NOT_FOUND, NULL, NULL);
    }
    return 0;
}
