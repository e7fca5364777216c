#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "http/parse.h"
#include "oci/name.h"
#include "oci/scope.h"
#include "store/upload.h"

static int is(const char *s, size_t len, const char *lit)
{
    return h2o_memis(s, len, lit, strlen(lit));
}

typedef enum { R_NONE, R_TAGS, R_UPLOAD_START, R_UPLOAD, R_BLOB, R_MANIFEST, R_REFERRERS } resource_t;

/* The endpoint of `kind` for method `m`; the actions are those of the resource even when the method is refused. */
static void repository_endpoint(parse_route_t *out, resource_t kind, const char *m, size_t mlen)
{
    int read = is(m, mlen, "GET") || is(m, mlen, "HEAD"), put = is(m, mlen, "PUT"), del = is(m, mlen, "DELETE");
    out->push = kind == R_UPLOAD_START || kind == R_UPLOAD || (kind == R_MANIFEST && put);
    out->actions = ACTION_PULL;
    out->allow = "GET, HEAD";
    switch (kind) {
    case R_TAGS:
        out->ep = read ? PARSE_EP_TAGS_LIST : PARSE_EP_NONE;
        break;
    case R_UPLOAD_START:
        out->ep = is(m, mlen, "POST") ? PARSE_EP_UPLOAD_START : PARSE_EP_NONE;
        out->actions = ACTION_PUSH;
        out->allow = "POST";
        break;
    case R_UPLOAD:
        out->actions = ACTION_PUSH;
        out->allow = "GET, HEAD, PATCH, PUT, DELETE";
        /* the handlers see the id as a C string, so it is checked as one */
        if (!upload_uuid_valid(out->ref, strnlen(out->ref, out->ref_len))) {
            out->err = ERR_BLOB_UPLOAD_UNKNOWN;
            return;
        }
        out->ep = read                   ? PARSE_EP_UPLOAD_STATUS
                  : is(m, mlen, "PATCH") ? PARSE_EP_UPLOAD_PATCH
                  : put                  ? PARSE_EP_UPLOAD_PUT
                  : del                  ? PARSE_EP_UPLOAD_DELETE
                                         : PARSE_EP_NONE;
        break;
    case R_BLOB:
        out->ep = read ? PARSE_EP_BLOB_GET : del ? PARSE_EP_BLOB_DELETE : PARSE_EP_NONE;
        out->actions = read ? ACTION_PULL : ACTION_DELETE;
        out->allow = "GET, HEAD, DELETE";
        break;
    case R_MANIFEST:
        out->ep = read  ? PARSE_EP_MANIFEST_GET
                  : put ? PARSE_EP_MANIFEST_PUT
                  : del ? PARSE_EP_MANIFEST_DELETE
                        : PARSE_EP_NONE;
        out->actions = read ? ACTION_PULL : put ? ACTION_PUSH : ACTION_DELETE;
        out->allow = "GET, HEAD, PUT, DELETE";
        break;
    case R_REFERRERS:
        out->ep = read ? PARSE_EP_REFERRERS : PARSE_EP_NONE;
        break;
    default:
        break;
    }
    if (out->ep == PARSE_EP_NONE)
        out->err = ERR_METHOD_UNKNOWN;
}

/* "<name>/<rest>" after "/v2/": the name may itself contain "blobs" or "manifests" as components, so the resource
 * is recognised from the end of the path. */
static void route_repository(parse_route_t *out, const char *p, size_t len, const char *m, size_t mlen)
{
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
    resource_t kind = R_NONE;
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
        out->message = "no such API endpoint";
        return;
    }
    out->name = p;
    out->name_len = (size_t)(cs[tail - 1] - 1 - p);
    if (!name_valid(out->name, out->name_len)) {
        out->err = ERR_NAME_INVALID;
        return;
    }
    out->target = PARSE_REPOSITORY;
    if (kind != R_TAGS && kind != R_UPLOAD_START) {
        out->ref = cs[0];
        out->ref_len = cl[0];
    }
    repository_endpoint(out, kind, m, mlen);
}

/* An endpoint without a repository: `allow` lists its methods. */
static void fixed_endpoint(parse_route_t *out, parse_target_t target, parse_ep_t ep, const char *allow, const char *m,
                           size_t mlen)
{
    out->target = target;
    out->allow = allow;
    size_t n = strlen(allow);
    for (const char *a = allow; a < allow + n;) {
        size_t l = strcspn(a, ",");
        if (l == mlen && memcmp(a, m, mlen) == 0) {
            out->ep = ep;
            return;
        }
        a += l + (a[l] == ',' ? 2 : 0);
    }
    out->err = ERR_METHOD_UNKNOWN;
    if (target == PARSE_SERVICE)
        out->target = PARSE_NOWHERE;
}

#define NAMESPACES "/api/v1/namespaces/"

void parse_route(parse_route_t *out, const char *p, size_t len, const char *m, size_t mlen)
{
    *out = (parse_route_t){.target = PARSE_NOWHERE, .ep = PARSE_EP_NONE, .err = ERR_NOT_FOUND};
    if (is(p, len, "/v2") || is(p, len, "/v2/"))
        fixed_endpoint(out, PARSE_REGISTRY, PARSE_EP_BASE, "GET, HEAD", m, mlen);
    else if (is(p, len, "/v2/_catalog"))
        fixed_endpoint(out, PARSE_REGISTRY, PARSE_EP_CATALOG, "GET, HEAD", m, mlen);
    else if (len > 4 && memcmp(p, "/v2/", 4) == 0)
        route_repository(out, p + 4, len - 4, m, mlen);
    else if (is(p, len, "/token"))
        fixed_endpoint(out, PARSE_SERVICE, PARSE_EP_TOKEN, "GET, POST", m, mlen);
    else if (is(p, len, "/token/jwks") || is(p, len, "/.well-known/jwks.json"))
        fixed_endpoint(out, PARSE_SERVICE, PARSE_EP_JWKS, "GET, HEAD", m, mlen);
    else if (is(p, len, "/healthz"))
        fixed_endpoint(out, PARSE_SERVICE, PARSE_EP_HEALTHZ, "GET, HEAD", m, mlen);
    else if (is(p, len, "/readyz"))
        fixed_endpoint(out, PARSE_SERVICE, PARSE_EP_READYZ, "GET, HEAD", m, mlen);
    else if (is(p, len, "/metrics"))
        fixed_endpoint(out, PARSE_SERVICE, PARSE_EP_METRICS, "GET, HEAD", m, mlen);
    else if (len > sizeof(NAMESPACES) - 1 && memcmp(p, NAMESPACES, sizeof(NAMESPACES) - 1) == 0) {
        const char *ns = p + sizeof(NAMESPACES) - 1;
        size_t nlen = len - (sizeof(NAMESPACES) - 1);
        if (memchr(ns, '/', nlen) != NULL || !name_valid(ns, nlen))
            return; /* 404: no such resource */
        fixed_endpoint(out, PARSE_NAMESPACE, PARSE_EP_NAMESPACE, "GET, HEAD", m, mlen);
        out->name = ns;
        out->name_len = nlen;
    }
}

/* RFC 9110: Content-Length = 1*DIGIT */
static int all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; ++i)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return n > 0;
}

/* Is the header line [p, e) named `name` (lower case)? Then *value is its value without surrounding blanks. */
static int header_is(const char *p, const char *e, const char *name, h2o_iovec_t *value)
{
    size_t n = strlen(name);
    if ((size_t)(e - p) <= n || p[n] != ':' || !h2o_lcstris(p, n, name, n))
        return 0;
    const char *v = p + n + 1;
    while (v < e && (*v == ' ' || *v == '\t'))
        ++v;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        --e;
    *value = h2o_iovec_init(v, (size_t)(e - v));
    return 1;
}

/* Where the header lines of the raw HTTP/1 head `head` start: after the request line, and after the one empty line
 * that h2o's parser skips before it (RFC 9112 2.2); NULL while the request line is incomplete. */
static const char *head_lines(const char *head, size_t len)
{
    const char *end = head + len;
    if (len >= 2 && head[0] == '\r' && head[1] == '\n')
        head += 2;
    else if (len >= 1 && head[0] == '\n')
        head += 1;
    const char *nl = memchr(head, '\n', (size_t)(end - head));
    return nl != NULL ? nl + 1 : NULL;
}

int parse_head_header(const char *head, size_t len, const char *name, h2o_iovec_t *value)
{
    const char *end = head + len;
    for (const char *p = head_lines(head, len); p != NULL && p < end && *p != '\r' && *p != '\n';) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (e == NULL)
            return 0; /* an incomplete line */
        if (header_is(p, e, name, value))
            return 1;
        p = e + 1;
    }
    return 0;
}

const char *parse_framing(const h2o_headers_t *headers, int version, const char *head, size_t len)
{
    ssize_t i = -1;
    while ((i = h2o_find_header(headers, H2O_TOKEN_CONTENT_LENGTH, i)) != -1)
        if (!all_digits(headers->entries[i].value.base, headers->entries[i].value.len))
            return "Content-Length must be a decimal number";
    if (head == NULL)
        return NULL;
    /* HTTP/1: h2o keeps one Host and one Content-Length of the head it parsed; look at the head itself */
    unsigned hosts = 0, te = 0;
    h2o_iovec_t cl = {NULL, 0}, v;
    const char *end = head + len;
    for (const char *p = head_lines(head, len); p != NULL && p < end && *p != '\r' && *p != '\n';) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (e == NULL)
            e = end;
        if (header_is(p, e, "host", &v)) {
            ++hosts;
        } else if (header_is(p, e, "transfer-encoding", &v)) {
            te = 1;
        } else if (header_is(p, e, "content-length", &v)) {
            if (!all_digits(v.base, v.len))
                return "Content-Length must be a decimal number";
            if (cl.base != NULL && !h2o_memis(cl.base, cl.len, v.base, v.len))
                return "conflicting Content-Length headers";
            cl = v;
        }
        p = e < end ? e + 1 : NULL;
    }
    if (te && cl.base != NULL)
        return "both Content-Length and Transfer-Encoding";
    if (hosts > 1)
        return "more than one Host header";
    if (hosts == 0 && version >= 0x101)
        return "an HTTP/1.1 request needs a Host header";
    return NULL;
}
/* Does one Accept entry (no parameters) cover media type `mt`? */
static int accept_matches(const char *a, size_t alen, const char *mt)
{
    if (h2o_memis(a, alen, H2O_STRLIT("*/*")))
        return 1;
    if (alen >= 2 && a[alen - 1] == '*' && a[alen - 2] == '/') /* a type wildcard such as application/<anything> */
        return alen - 1 <= strlen(mt) && memcmp(a, mt, alen - 1) == 0;
    return h2o_memis(a, alen, mt, strlen(mt));
}

int parse_accepts(const h2o_headers_t *headers, const char *mt)
{
    ssize_t i = -1;
    int seen = 0;
    while ((i = h2o_find_header(headers, H2O_TOKEN_ACCEPT, i)) != -1) {
        const char *p = headers->entries[i].value.base, *end = p + headers->entries[i].value.len;
        seen = 1;
        while (p < end) {
            const char *comma = memchr(p, ',', end - p), *e = comma ? comma : end, *semi = memchr(p, ';', e - p);
            const char *a = p, *ae = semi ? semi : e;
            while (a < ae && (*a == ' ' || *a == '\t'))
                ++a;
            while (ae > a && (ae[-1] == ' ' || ae[-1] == '\t'))
                --ae;
            if (ae > a && accept_matches(a, (size_t)(ae - a), mt))
                return 1;
            p = e + 1;
        }
    }
    return !seen;
}

int parse_basic(h2o_mem_pool_t *pool, const char *v, size_t len, char **user, char **pass)
{
    unsigned char buf[1024];
    while (len > 0 && *v == ' ')
        ++v, --len;
    if (len == 0 || len > 1300)
        return -1;
    int n = EVP_DecodeBlock(buf, (const unsigned char *)v, (int)len);
    if (n <= 0)
        return -1;
    while (n > 0 && len > 0 && v[len - 1] == '=') /* EVP_DecodeBlock counts padding as zero bytes */
        --n, --len;
    char *s = h2o_mem_alloc_pool(pool, (size_t)n + 1);
    memcpy(s, buf, (size_t)n);
    s[n] = '\0';
    OPENSSL_cleanse(buf, sizeof(buf));
    char *colon = strchr(s, ':');
    if (colon == NULL || colon == s || strlen(s) != (size_t)n)
        return -1;
    *colon = '\0';
    *user = s;
    *pass = colon + 1;
    return 0;
}
