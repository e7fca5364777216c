#include <string.h>
#include <sys/random.h>
#include "http/api.h"
#include "http/conns.h"
#include "http/gate.h"
#include "http/metrics.h"
#include "http/parse.h"
#include "http/router.h"
#include "oci/scope.h"
#include "util/log.h"

/* The handlers of the endpoints under /v2/ (a mirrored repository's pulls go to api_mirror.c instead). */
static void (*const handlers[])(route_t *) = {
    [PARSE_EP_BASE] = api_base,
    [PARSE_EP_CATALOG] = api_catalog,
    [PARSE_EP_TAGS_LIST] = api_tags_list,
    [PARSE_EP_UPLOAD_START] = api_upload_start,
    [PARSE_EP_UPLOAD_STATUS] = api_upload_status,
    [PARSE_EP_UPLOAD_PATCH] = api_upload_patch,
    [PARSE_EP_UPLOAD_PUT] = api_upload_put,
    [PARSE_EP_UPLOAD_DELETE] = api_upload_delete,
    [PARSE_EP_BLOB_GET] = api_blob_get,
    [PARSE_EP_BLOB_DELETE] = api_blob_delete,
    [PARSE_EP_MANIFEST_GET] = api_manifest_get,
    [PARSE_EP_MANIFEST_PUT] = api_manifest_put,
    [PARSE_EP_MANIFEST_DELETE] = api_manifest_delete,
    [PARSE_EP_REFERRERS] = api_referrers,
    [PARSE_EP_NAMESPACE] = api_namespace_get,
};

static route_t *route_new(h2o_req_t *req)
{
    route_t *r = h2o_mem_alloc_pool(&req->pool, sizeof(*r));
    *r = (route_t){req, thread_ctx_of(req), NULL, "", NULL};
    return r;
}

static void route_error(h2o_req_t *req, const parse_route_t *pr)
{
    if (pr->err == ERR_METHOD_UNKNOWN && pr->allow != NULL)
        res_header(req, "allow", pr->allow);
    json_t *detail = pr->err == ERR_NAME_INVALID ? json_pack("{s:s%}", "name", pr->name, pr->name_len) : NULL;
    res_error(req, pr->err, pr->message, detail);
}

/* /token, /healthz and the like answer without a route: they authenticate (or not) themselves. */
static void route_service(h2o_req_t *req, parse_ep_t ep)
{
    switch (ep) {
    case PARSE_EP_TOKEN:
        api_token(req);
        break;
    case PARSE_EP_JWKS:
        api_jwks(req);
        break;
    case PARSE_EP_HEALTHZ:
        api_healthz(req);
        break;
    case PARSE_EP_READYZ:
        api_readyz(req);
        break;
    case PARSE_EP_METRICS:
        api_metrics(req);
        break;
    default:
        res_error(req, ERR_NOT_FOUND, NULL, NULL);
        break;
    }
}

static void route_registry(h2o_req_t *req, const parse_route_t *pr)
{
    route_t *r = route_new(req);
    if (pr->ep == PARSE_EP_NONE) {
        route_error(req, pr);
        return;
    }
    gate_require(r, 0, pr->ep == PARSE_EP_CATALOG, handlers[pr->ep]);
}

/* Between authentication and authorization: the repository the name reaches under the mirrors, and its handler. */
static gate_then_t mirror_then(route_t *r, gate_then_t then)
{
    gate_then_t refuse = NULL;
    switch (api_mirror_route(r, &refuse)) {
    case 0:
        break;
    case 1:
        return refuse;
    default:
        return NULL;
    }
    if (r->mirror != NULL && then == api_blob_get)
        return api_mirror_blob_get;
    if (r->mirror != NULL && then == api_manifest_get)
        return api_mirror_manifest_get;
    return then;
}

/* A refused method or upload id is answered at once, whatever the name; the mirrors route the rest once the caller
 * is authenticated (a push to a mirrored repository is then refused as a push). */
static void route_repository(h2o_req_t *req, const parse_route_t *pr)
{
    route_t *r = route_new(req);
    r->name = h2o_strdup(&req->pool, pr->name, pr->name_len).base;
    if (pr->ref != NULL)
        r->ref = h2o_strdup(&req->pool, pr->ref, pr->ref_len).base;
    if (pr->ep == PARSE_EP_NONE) {
        route_error(req, pr);
        return;
    }
    r->push = pr->push;
    gate_require_routed(r, pr->actions, mirror_then, handlers[pr->ep]);
}

/* A namespace's facts are for those who may push in it: authorization as for a repository ns/... (the name "ns/"
 * followed by a star, which grants and ownership cover and no repository can have). */
static void route_namespace(h2o_req_t *req, const parse_route_t *pr)
{
    route_t *r = route_new(req);
    if (pr->ep == PARSE_EP_NONE) {
        route_error(req, pr);
        return;
    }
    r->ref = h2o_strdup(&req->pool, pr->name, pr->name_len).base;
    r->name = h2o_concat(&req->pool, h2o_iovec_init(pr->name, pr->name_len), h2o_iovec_init(H2O_STRLIT("/*"))).base;
    gate_require(r, ACTION_PUSH, 0, handlers[pr->ep]);
}

/* A client's X-Request-Id is kept when it is short and made of characters safe in a header and a log line. */
static int id_valid(const char *s, size_t len)
{
    if (len == 0 || len > REQ_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; ++i)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              (s[i] != '\0' && strchr("-_.:+/=", s[i]) != NULL)))
            return 0;
    return 1;
}

/* The request's id: the client's X-Request-Id if valid, else 20 hex digits, a random prefix of the loop's and a count
 * (no lock, no system call but the first). Sent back in X-Request-Id; in req->env for the logs (req_id()). */
static const char *request_id(h2o_req_t *req)
{
    static __thread uint32_t prefix;
    static __thread uint64_t seq;
    static const char hex[] = "0123456789abcdef";
    size_t len;
    const char *given = req_header(req, "x-request-id", &len);
    char *id;
    if (given != NULL && id_valid(given, len)) {
        id = h2o_strdup(&req->pool, given, len).base;
    } else {
        if (seq == 0 && getrandom(&prefix, sizeof(prefix), 0) != sizeof(prefix))
            prefix = (uint32_t)(uintptr_t)&prefix ^ (uint32_t)time(NULL);
        uint64_t v = ((uint64_t)prefix << 48) ^ ++seq, hi = prefix >> 16;
        id = h2o_mem_alloc_pool(&req->pool, 21);
        for (int i = 0; i < 4; ++i)
            id[i] = hex[(hi >> (12 - 4 * i)) & 15];
        for (int i = 0; i < 16; ++i)
            id[4 + i] = hex[(v >> (60 - 4 * i)) & 15];
        id[20] = '\0';
        len = 20;
    }
    h2o_vector_reserve(&req->pool, &req->env, req->env.size + 4); /* and the route's, for the access log */
    req->env.entries[req->env.size++] = h2o_iovec_init(H2O_STRLIT(REQ_ID_ENV));
    req->env.entries[req->env.size++] = h2o_iovec_init(id, len);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL, id, len);
    return id;
}

static void route(h2o_req_t *req, metrics_req_t *m);

int router_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    metrics_req_t *m = metrics_begin(req);
    const char *prev = log_set_request(request_id(req));
    route(req, m);
    log_set_request(prev);
    return 0;
}

static void route(h2o_req_t *req, metrics_req_t *m)
{
    conns_request(req);

    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("docker-distribution-api-version"), 1, NULL,
                          H2O_STRLIT("registry/2.0"));
    const char *bad = parse_framing(&req->headers, req->version, NULL, 0);
    if (bad == NULL && req->version < 0x200) {
        /* HTTP/1: until the answer is sent, the socket's input starts with this request's head */
        h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
        if (sock != NULL && sock->input != NULL)
            bad = parse_framing(&req->headers, req->version, sock->input->bytes, sock->input->size);
    }
    if (bad != NULL) {
        req->http1_is_persistent = 0; /* the next request's start is not known: close after the answer */
        res_error(req, ERR_UNSUPPORTED, bad, NULL);
        return;
    }

    /* the raw path, not h2o's normalised one: "a/../b" must be refused, never resolved */
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    parse_route_t pr;
    parse_route(&pr, req->path.base, plen, req->method.base, req->method.len);
    metrics_route(m, pr.ep);
    const char *rn = metrics_route_name(pr.ep);
    h2o_vector_reserve(&req->pool, &req->env, req->env.size + 2);
    req->env.entries[req->env.size++] = h2o_iovec_init(H2O_STRLIT("route"));
    req->env.entries[req->env.size++] = h2o_iovec_init(rn, strlen(rn));
    switch (pr.target) {
    case PARSE_NOWHERE:
        route_error(req, &pr);
        break;
    case PARSE_SERVICE:
        route_service(req, pr.ep);
        break;
    case PARSE_REGISTRY:
        route_registry(req, &pr);
        break;
    case PARSE_REPOSITORY:
        route_repository(req, &pr);
        break;
    case PARSE_NAMESPACE:
        route_namespace(req, &pr);
        break;
    }
}
