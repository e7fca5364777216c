/*
 * The router's parse (http/parse.h), without a server: every endpoint of the distribution API and berth's own,
 * names of several components (some containing "blobs" or "manifests"), invalid names, digests, tags and upload
 * ids, trailing slashes, unknown paths and refused methods.
 */
#include <string.h>
#include "http/parse.h"
#include "oci/scope.h"
#include "tap.h"

#define UUID "0b7e2ff0-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
#define DIG "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

/* An expectation: `err` counts only without an endpoint; NULL `name` or `ref`: none. */
typedef struct {
    const char *method, *path;
    parse_target_t target;
    parse_ep_t ep;
    err_code_t err;
    const char *name, *ref;
    unsigned actions;
    int push;
} case_t;

#define NOWHERE(m, p)                                                                                                  \
    {                                                                                                                  \
        m, p, PARSE_NOWHERE, PARSE_EP_NONE, ERR_NOT_FOUND, NULL, NULL, 0, 0                                            \
    }
#define SERVICE(m, p, ep)                                                                                              \
    {                                                                                                                  \
        m, p, PARSE_SERVICE, ep, 0, NULL, NULL, 0, 0                                                                   \
    }
#define NO_METHOD(m, p)                                                                                                \
    {                                                                                                                  \
        m, p, PARSE_NOWHERE, PARSE_EP_NONE, ERR_METHOD_UNKNOWN, NULL, NULL, 0, 0                                       \
    }
#define REGISTRY(m, p, ep)                                                                                             \
    {                                                                                                                  \
        m, p, PARSE_REGISTRY, ep, ERR_METHOD_UNKNOWN, NULL, NULL, 0, 0                                                 \
    }
#define BAD_NAME(m, p, name)                                                                                           \
    {                                                                                                                  \
        m, p, PARSE_NOWHERE, PARSE_EP_NONE, ERR_NAME_INVALID, name, NULL, 0, 0                                         \
    }
#define REPO(m, p, ep, name, ref, actions, push)                                                                       \
    {                                                                                                                  \
        m, p, PARSE_REPOSITORY, ep, ERR_METHOD_UNKNOWN, name, ref, actions, push                                       \
    }
#define REFUSED(m, p, err, name, ref, actions, push)                                                                   \
    {                                                                                                                  \
        m, p, PARSE_REPOSITORY, PARSE_EP_NONE, err, name, ref, actions, push                                           \
    }

static const case_t cases[] = {
    /* outside /v2/: berth's own endpoints, each with its methods */
    NOWHERE("GET", "/"),
    NOWHERE("GET", ""),
    NOWHERE("GET", "/V2/"),
    NOWHERE("GET", "/v2x"),
    NOWHERE("GET", "/nope"),
    SERVICE("GET", "/token", PARSE_EP_TOKEN),
    SERVICE("POST", "/token", PARSE_EP_TOKEN),
    NO_METHOD("PUT", "/token"),
    NO_METHOD("HEAD", "/token"),
    NOWHERE("GET", "/token/"),
    SERVICE("GET", "/token/jwks", PARSE_EP_JWKS),
    SERVICE("GET", "/.well-known/jwks.json", PARSE_EP_JWKS),
    SERVICE("GET", "/healthz", PARSE_EP_HEALTHZ),
    SERVICE("HEAD", "/healthz", PARSE_EP_HEALTHZ),
    NO_METHOD("POST", "/healthz"),
    NO_METHOD("DELETE", "/metrics"),
    NO_METHOD("POST", "/.well-known/jwks.json"),
    NOWHERE("GET", "/healthz/"),
    SERVICE("GET", "/readyz", PARSE_EP_READYZ),
    SERVICE("GET", "/metrics", PARSE_EP_METRICS),
    NOWHERE("GET", "/metrics/"),

    /* /v2/ and the catalog: GET and HEAD only */
    REGISTRY("GET", "/v2", PARSE_EP_BASE),
    REGISTRY("GET", "/v2/", PARSE_EP_BASE),
    REGISTRY("HEAD", "/v2/", PARSE_EP_BASE),
    REGISTRY("POST", "/v2/", PARSE_EP_NONE),
    REGISTRY("OPTIONS", "/v2", PARSE_EP_NONE),
    REGISTRY("get", "/v2/", PARSE_EP_NONE),
    REGISTRY("GET", "/v2/_catalog", PARSE_EP_CATALOG),
    REGISTRY("HEAD", "/v2/_catalog", PARSE_EP_CATALOG),
    REGISTRY("DELETE", "/v2/_catalog", PARSE_EP_NONE),
    NOWHERE("GET", "/v2/_catalog/"),

    /* tags */
    REPO("GET", "/v2/foo/tags/list", PARSE_EP_TAGS_LIST, "foo", NULL, ACTION_PULL, 0),
    REPO("HEAD", "/v2/foo/tags/list", PARSE_EP_TAGS_LIST, "foo", NULL, ACTION_PULL, 0),
    REPO("POST", "/v2/foo/tags/list", PARSE_EP_NONE, "foo", NULL, ACTION_PULL, 0),
    REPO("GET", "/v2/a/b/c/tags/list", PARSE_EP_TAGS_LIST, "a/b/c", NULL, ACTION_PULL, 0),
    REPO("GET", "/v2/a.b-c/d_e/f__g/tags/list", PARSE_EP_TAGS_LIST, "a.b-c/d_e/f__g", NULL, ACTION_PULL, 0),
    NOWHERE("GET", "/v2/foo/tags/list/"),
    NOWHERE("GET", "/v2/foo/tags"),
    NOWHERE("GET", "/v2/foo/tags/list/x"),
    NOWHERE("GET", "/v2/tags/list"),

    /* starting an upload: POST, with or without the trailing slash */
    REPO("POST", "/v2/foo/blobs/uploads/", PARSE_EP_UPLOAD_START, "foo", NULL, ACTION_PUSH, 1),
    REPO("POST", "/v2/foo/blobs/uploads", PARSE_EP_UPLOAD_START, "foo", NULL, ACTION_PUSH, 1),
    REPO("POST", "/v2/x/blobs/uploads/blobs/uploads/", PARSE_EP_UPLOAD_START, "x/blobs/uploads", NULL, ACTION_PUSH, 1),
    REPO("GET", "/v2/foo/blobs/uploads/", PARSE_EP_NONE, "foo", NULL, ACTION_PUSH, 1),
    REPO("PUT", "/v2/foo/blobs/uploads", PARSE_EP_NONE, "foo", NULL, ACTION_PUSH, 1),
    NOWHERE("POST", "/v2/blobs/uploads/"),

    /* a session: the id is checked before the method */
    REPO("GET", "/v2/foo/blobs/uploads/" UUID, PARSE_EP_UPLOAD_STATUS, "foo", UUID, ACTION_PUSH, 1),
    REPO("HEAD", "/v2/foo/blobs/uploads/" UUID, PARSE_EP_UPLOAD_STATUS, "foo", UUID, ACTION_PUSH, 1),
    REPO("PATCH", "/v2/foo/blobs/uploads/" UUID, PARSE_EP_UPLOAD_PATCH, "foo", UUID, ACTION_PUSH, 1),
    REPO("PUT", "/v2/foo/blobs/uploads/" UUID, PARSE_EP_UPLOAD_PUT, "foo", UUID, ACTION_PUSH, 1),
    REPO("DELETE", "/v2/foo/blobs/uploads/" UUID, PARSE_EP_UPLOAD_DELETE, "foo", UUID, ACTION_PUSH, 1),
    REPO("POST", "/v2/foo/blobs/uploads/" UUID, PARSE_EP_NONE, "foo", UUID, ACTION_PUSH, 1),
    REPO("PATCH", "/v2/a/b/blobs/uploads/" UUID, PARSE_EP_UPLOAD_PATCH, "a/b", UUID, ACTION_PUSH, 1),
    REFUSED("GET", "/v2/foo/blobs/uploads/notauuid", ERR_BLOB_UPLOAD_UNKNOWN, "foo", "notauuid", ACTION_PUSH, 1),
    REFUSED("POST", "/v2/foo/blobs/uploads/notauuid", ERR_BLOB_UPLOAD_UNKNOWN, "foo", "notauuid", ACTION_PUSH, 1),
    REFUSED("PATCH", "/v2/foo/blobs/uploads/0B7E2FF0-1C2D-4E5F-8A9B-0C1D2E3F4A5B", ERR_BLOB_UPLOAD_UNKNOWN, "foo",
            "0B7E2FF0-1C2D-4E5F-8A9B-0C1D2E3F4A5B", ACTION_PUSH, 1),
    NOWHERE("PUT", "/v2/foo/blobs/uploads/../" UUID),
    BAD_NAME("PUT", "/v2/../blobs/uploads/" UUID, ".."),
    NOWHERE("GET", "/v2/foo/blobs/uploads/" UUID "/"),

    /* blobs: the digest is the handler's to check */
    REPO("GET", "/v2/foo/blobs/" DIG, PARSE_EP_BLOB_GET, "foo", DIG, ACTION_PULL, 0),
    REPO("HEAD", "/v2/foo/blobs/" DIG, PARSE_EP_BLOB_GET, "foo", DIG, ACTION_PULL, 0),
    REPO("DELETE", "/v2/foo/blobs/" DIG, PARSE_EP_BLOB_DELETE, "foo", DIG, ACTION_DELETE, 0),
    REPO("PUT", "/v2/foo/blobs/" DIG, PARSE_EP_NONE, "foo", DIG, ACTION_DELETE, 0),
    REPO("POST", "/v2/foo/blobs/" DIG, PARSE_EP_NONE, "foo", DIG, ACTION_DELETE, 0),
    REPO("GET", "/v2/foo/blobs/sha256:abc", PARSE_EP_BLOB_GET, "foo", "sha256:abc", ACTION_PULL, 0),
    REPO("GET", "/v2/foo/blobs/", PARSE_EP_BLOB_GET, "foo", "", ACTION_PULL, 0),
    REPO("GET", "/v2/a/blobs/b/blobs/" DIG, PARSE_EP_BLOB_GET, "a/blobs/b", DIG, ACTION_PULL, 0),
    NOWHERE("GET", "/v2/foo/blobs"),
    NOWHERE("GET", "/v2//blobs/x"),

    /* manifests: tag or digest, the handler's to check */
    REPO("GET", "/v2/foo/manifests/latest", PARSE_EP_MANIFEST_GET, "foo", "latest", ACTION_PULL, 0),
    REPO("HEAD", "/v2/foo/manifests/latest", PARSE_EP_MANIFEST_GET, "foo", "latest", ACTION_PULL, 0),
    REPO("PUT", "/v2/foo/manifests/latest", PARSE_EP_MANIFEST_PUT, "foo", "latest", ACTION_PUSH, 1),
    REPO("DELETE", "/v2/foo/manifests/" DIG, PARSE_EP_MANIFEST_DELETE, "foo", DIG, ACTION_DELETE, 0),
    REPO("POST", "/v2/foo/manifests/latest", PARSE_EP_NONE, "foo", "latest", ACTION_DELETE, 0),
    REPO("PATCH", "/v2/foo/manifests/latest", PARSE_EP_NONE, "foo", "latest", ACTION_DELETE, 0),
    REPO("GET", "/v2/foo/manifests/Bad!tag", PARSE_EP_MANIFEST_GET, "foo", "Bad!tag", ACTION_PULL, 0),
    REPO("GET", "/v2/foo/manifests/", PARSE_EP_MANIFEST_GET, "foo", "", ACTION_PULL, 0),
    REPO("GET", "/v2/a/manifests/b/manifests/latest", PARSE_EP_MANIFEST_GET, "a/manifests/b", "latest", ACTION_PULL, 0),
    REPO("GET", "/v2/library/tags/manifests/list", PARSE_EP_MANIFEST_GET, "library/tags", "list", ACTION_PULL, 0),
    NOWHERE("GET", "/v2/foo/manifests"),
    NOWHERE("GET", "/v2/manifests/x"),

    /* referrers */
    REPO("GET", "/v2/foo/referrers/" DIG, PARSE_EP_REFERRERS, "foo", DIG, ACTION_PULL, 0),
    REPO("HEAD", "/v2/foo/referrers/" DIG, PARSE_EP_REFERRERS, "foo", DIG, ACTION_PULL, 0),
    REPO("DELETE", "/v2/foo/referrers/" DIG, PARSE_EP_NONE, "foo", DIG, ACTION_PULL, 0),
    REPO("GET", "/v2/foo/referrers/", PARSE_EP_REFERRERS, "foo", "", ACTION_PULL, 0),

    /* invalid names: refused before anything else, and never resolved */
    BAD_NAME("GET", "/v2/Foo/tags/list", "Foo"),
    BAD_NAME("GET", "/v2/../foo/tags/list", "../foo"),
    BAD_NAME("GET", "/v2/foo/../bar/tags/list", "foo/../bar"),
    BAD_NAME("GET", "/v2/./foo/manifests/latest", "./foo"),
    BAD_NAME("DELETE", "/v2/-bad/blobs/" DIG, "-bad"),
    BAD_NAME("GET", "/v2/a//b/tags/list", "a//b"),
    BAD_NAME("GET", "/v2/a___b/tags/list", "a___b"),
    BAD_NAME("POST", "/v2/foo%2fbar/blobs/uploads/", "foo%2fbar"),
    BAD_NAME("OPTIONS", "/v2/Foo/manifests/latest", "Foo"),

    /* paths that name no endpoint */
    NOWHERE("GET", "/v2//"),
    NOWHERE("GET", "/v2/foo"),
    NOWHERE("GET", "/v2/foo/"),
    NOWHERE("GET", "/v2/x/y/"),
    NOWHERE("GET", "/v2/foo/unknown/x"),
    NOWHERE("GET", "/v2/foo/blob/" DIG),
};

static const char *const targets[] = {"nowhere", "service", "registry", "repository"};
static const char *const eps[] = {"none",          "base",         "catalog",      "token",           "jwks",
                                  "healthz",       "readyz",       "metrics",      "tags_list",       "upload_start",
                                  "upload_status", "upload_patch", "upload_put",   "upload_delete",   "blob_get",
                                  "blob_delete",   "manifest_get", "manifest_put", "manifest_delete", "referrers"};
_Static_assert(sizeof(eps) / sizeof(eps[0]) == PARSE_EP_REFERRERS + 1, "a name for every endpoint");

static int is_str(const char *p, size_t len, const char *want)
{
    if (want == NULL)
        return p == NULL;
    return p != NULL && len == strlen(want) && memcmp(p, want, len) == 0;
}

static int matches(const case_t *c, const parse_route_t *r)
{
    if (r->target != c->target || r->ep != c->ep || (c->ep == PARSE_EP_NONE && r->err != c->err))
        return 0;
    if (!is_str(r->name, r->name_len, c->name) || !is_str(r->ref, r->ref_len, c->ref))
        return 0;
    if (c->target == PARSE_REPOSITORY && (r->actions != c->actions || r->push != c->push))
        return 0;
    /* name and reference point into the path: nothing was copied */
    return (r->name == NULL || r->name == c->path + 4) &&
           (r->ref == NULL || r->ref == c->path + strlen(c->path) - r->ref_len);
}

static void test_cases(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        const case_t *c = &cases[i];
        parse_route_t r;
        parse_route(&r, c->path, strlen(c->path), c->method, strlen(c->method));
        ok(matches(c, &r), "%s %s -> %s %s%s%s name '%.*s' ref '%.*s'", c->method, c->path, targets[r.target],
           eps[r.ep], r.ep == PARSE_EP_NONE ? " " : "", r.ep == PARSE_EP_NONE ? err_code_name(r.err) : "",
           (int)r.name_len, r.name ? r.name : "", (int)r.ref_len, r.ref ? r.ref : "");
    }
}

static parse_route_t route(const char *method, const char *path, size_t len)
{
    parse_route_t r;
    parse_route(&r, path, len, method, strlen(method));
    return r;
}

static void test_details(void)
{
    parse_route_t r = route("GET", "/nope", 5);
    ok(r.message == NULL, "a path outside the API: the table's message");
    r = route("GET", "/v2/foo/unknown/x", 17);
    ok(r.message != NULL && strcmp(r.message, "no such API endpoint") == 0,
       "a path under /v2/ that names nothing says so");
    r = route("GET", "/v2/Foo/tags/list", 17);
    ok(r.message == NULL, "an invalid name: the table's message");

    /* the length given is the path: what follows (the query) is never read */
    r = route("GET", "/v2/foo/tags/list?n=1", 17);
    ok(r.ep == PARSE_EP_TAGS_LIST && r.name_len == 3, "only `len` bytes of the path count");
    r = route("GET", "/v2/foo/manifests/latestXYZ", 24);
    ok(r.ep == PARSE_EP_MANIFEST_GET && r.ref_len == 6, "the reference ends where the length does");

    /* the name's length limit (255) */
    char path[400] = "/v2/";
    memset(path + 4, 'a', 255);
    strcpy(path + 4 + 255, "/tags/list");
    r = route("GET", path, strlen(path));
    ok(r.ep == PARSE_EP_TAGS_LIST && r.name_len == 255, "a name of 255 characters");
    memset(path + 4, 'a', 256);
    strcpy(path + 4 + 256, "/tags/list");
    r = route("GET", path, strlen(path));
    ok(r.target == PARSE_NOWHERE && r.err == ERR_NAME_INVALID && r.name_len == 256, "a name of 256 is invalid");

    /* an upload id is read as the C string the handlers get */
    static const char nul[] = "/v2/foo/blobs/uploads/" UUID "\0xyz";
    r = route("GET", nul, sizeof(nul) - 1);
    ok(r.ep == PARSE_EP_UPLOAD_STATUS && r.ref_len == 40,
       "an upload id with a NUL after 36 characters is checked up to it");
}

/* A 405 names the methods of the resource (its Allow header) */
static void test_allow(void)
{
    static const struct {
        const char *method, *path, *allow;
    } cases[] = {
        {"POST", "/v2/", "GET, HEAD"},
        {"DELETE", "/v2/_catalog", "GET, HEAD"},
        {"PUT", "/token", "GET, POST"},
        {"POST", "/healthz", "GET, HEAD"},
        {"PUT", "/v2/foo/tags/list", "GET, HEAD"},
        {"GET", "/v2/foo/blobs/uploads/", "POST"},
        {"POST", "/v2/foo/blobs/uploads/" UUID, "GET, HEAD, PATCH, PUT, DELETE"},
        {"PUT", "/v2/foo/blobs/" DIG, "GET, HEAD, DELETE"},
        {"POST", "/v2/foo/manifests/latest", "GET, HEAD, PUT, DELETE"},
        {"DELETE", "/v2/foo/referrers/" DIG, "GET, HEAD"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        parse_route_t r = route(cases[i].method, cases[i].path, strlen(cases[i].path));
        ok(r.ep == PARSE_EP_NONE && r.err == ERR_METHOD_UNKNOWN && r.allow != NULL &&
               strcmp(r.allow, cases[i].allow) == 0,
           "%s %s: 405, Allow: %s (got %s)", cases[i].method, cases[i].path, cases[i].allow, r.allow ? r.allow : "-");
    }
    parse_route_t r = route("GET", "/nope", 5);
    ok(r.allow == NULL, "no resource, no Allow");
}

static const char *framing(int version, const char *head)
{
    return parse_framing(&(h2o_headers_t){NULL, 0, 0}, version, head, strlen(head));
}

/* RFC 9112's framing rules that h2o leaves to the application */
static void test_framing(void)
{
    ok(framing(0x101, "GET / HTTP/1.1\r\nHost: a\r\n\r\n") == NULL, "HTTP/1.1 with one Host");
    ok(framing(0x100, "GET / HTTP/1.0\r\n\r\n") == NULL, "HTTP/1.0 without Host");
    ok(framing(0x101, "GET / HTTP/1.1\r\nX-Host: a\r\n\r\n") != NULL, "HTTP/1.1 without Host");
    ok(framing(0x101, "GET / HTTP/1.1\r\nHost: a\r\nhOST: b\r\n\r\n") != NULL, "two Host headers");
    ok(framing(0x100, "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n") != NULL, "two Host headers in 1.0");
    ok(framing(0x101, "GET / HTTP/1.1\r\nHost: a\r\n\r\nHost: b\r\n") == NULL, "the body is not the head");
    ok(framing(0x101, "GET / HTTP/1.1\nHost: a\n\n") == NULL, "bare line feeds");
    ok(framing(0x101, "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello") == NULL, "a Content-Length");
    ok(framing(0x101, "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length:5 \r\n\r\n") == NULL,
       "the same Content-Length twice");
    ok(framing(0x101, "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n") != NULL,
       "two Content-Lengths that differ");
    ok(framing(0x101, "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5+10\r\n\r\n") != NULL, "Content-Length 5+10");
    ok(framing(0x101, "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n") != NULL, "Content-Length -1");
    ok(framing(0x101, "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n") != NULL, "an empty Content-Length");
    ok(framing(0x101, "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n") != NULL,
       "Content-Length beside Transfer-Encoding");
    ok(framing(0x101, "PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n") == NULL, "chunked alone");
    /* found by fuzz/fuzz_framing.c: h2o skips one empty line before the request line, which was read as the request
     * line here, and the real one as a header */
    ok(framing(0x101, "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n") == NULL, "an empty line before the request line");
    ok(framing(0x101, "\nGET / HTTP/1.1\nHost: a\n\n") == NULL, "an empty line (LF) before the request line");
    ok(framing(0x101, "\r\nHost:x / HTTP/1.1\r\nHost: a\r\n\r\n") == NULL,
       "after an empty line, a request line that looks like a Host header is the request line");
    ok(framing(0x101, "\r\nHost:x / HTTP/1.1\r\n\r\n") != NULL, "... so that without a Host header it has none");

    /* HTTP/2: no head, only the header list */
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    h2o_headers_t h = {NULL, 0, 0};
    h2o_add_header(&pool, &h, H2O_TOKEN_CONTENT_LENGTH, NULL, H2O_STRLIT("5+10"));
    ok(parse_framing(&h, 0x200, NULL, 0) != NULL, "HTTP/2: Content-Length 5+10");
    h.size = 0;
    h2o_add_header(&pool, &h, H2O_TOKEN_CONTENT_LENGTH, NULL, H2O_STRLIT("15"));
    ok(parse_framing(&h, 0x200, NULL, 0) == NULL, "HTTP/2: Content-Length 15");
    h2o_mem_clear_pool(&pool);
}

/* The value of header `name` in raw head `head` as the watchdog reads it, or "(none)". */
static const char *head_header(const char *head, const char *name)
{
    static char buf[128];
    h2o_iovec_t v;
    if (!parse_head_header(head, strlen(head), name, &v))
        return "(none)";
    snprintf(buf, sizeof(buf), "%.*s", (int)v.len, v.base);
    return buf;
}

static void test_head_header(void)
{
    static const char head[] = "POST /v2/a/blobs/uploads/ HTTP/1.1\r\nHost: a\r\nAuthorization:  Basic eA== \r\n"
                               "authorization: Bearer second\r\n\r\nAuthorization: in the body";
    ok(strcmp(head_header(head, "authorization"), "Basic eA==") == 0, "the first of the name, blanks trimmed");
    ok(strcmp(head_header(head, "host"), "a") == 0, "another header");
    ok(strcmp(head_header(head, "cookie"), "(none)") == 0, "absent");
    ok(strcmp(head_header("GET / HTTP/1.1\r\nAuthorization: Bearer x", "authorization"), "(none)") == 0,
       "an incomplete line is not read");
    ok(strcmp(head_header("GET / HTTP/1.1\nAuthorization: Bearer x\n\n", "authorization"), "Bearer x") == 0,
       "bare line feeds");
    /* found by fuzz/fuzz_framing.c: as parse_framing, the empty line h2o skips was taken for the request line */
    ok(strcmp(head_header("\r\nAuthorization:x / HTTP/1.1\r\nHost: a\r\n\r\n", "authorization"), "(none)") == 0,
       "after an empty line, the request line is no header");
    ok(strcmp(head_header("\r\nGET / HTTP/1.1\r\nAuthorization: Bearer y\r\n\r\n", "authorization"), "Bearer y") == 0,
       "after an empty line, the headers are read");
}

int main(void)
{
    test_cases();
    test_details();
    test_allow();
    test_framing();
    test_head_header();
    return tap_done();
}
