/*
 * libFuzzer target for the router's reading of a path (parse_route in src/http/parse.c). The first byte picks the
 * method, the rest is the raw path. Checked: a repository route names a valid repository that is exactly the path
 * between "/v2/" and the resource, its reference is exactly the last component, an upload id is a UUID, the method
 * and the actions fit the endpoint, and the canonical path of the endpoint routes back to the same place.
 */
#include "fuzz.h"
#include "http/parse.h"
#include "oci/name.h"
#include "oci/scope.h"
#include "store/upload.h"

static int is(const char *s, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(s, lit, len) == 0;
}

/* Is `m` one of the methods in `allow` ("GET, HEAD")? */
static int allowed(const char *allow, const char *m, size_t mlen)
{
    for (const char *a = allow; *a != '\0';) {
        size_t n = strcspn(a, ",");
        if (n != 0 && n == mlen && memcmp(a, m, mlen) == 0)
            return 1;
        a += n;
        a += strspn(a, ", ");
    }
    return 0;
}

/* The path an endpoint of repository `pr` has, with its name and reference: what a client builds. */
static int canonical(const parse_route_t *pr, char *buf, size_t len)
{
    const char *res;
    switch (pr->ep) {
    case PARSE_EP_TAGS_LIST:
        res = "tags/list";
        break;
    case PARSE_EP_UPLOAD_START:
        res = "blobs/uploads/";
        break;
    case PARSE_EP_UPLOAD_STATUS:
    case PARSE_EP_UPLOAD_PATCH:
    case PARSE_EP_UPLOAD_PUT:
    case PARSE_EP_UPLOAD_DELETE:
        res = "blobs/uploads/";
        break;
    case PARSE_EP_BLOB_GET:
    case PARSE_EP_BLOB_DELETE:
        res = "blobs/";
        break;
    case PARSE_EP_MANIFEST_GET:
    case PARSE_EP_MANIFEST_PUT:
    case PARSE_EP_MANIFEST_DELETE:
        res = "manifests/";
        break;
    case PARSE_EP_REFERRERS:
        res = "referrers/";
        break;
    default:
        return -1;
    }
    size_t rl = strlen(res), n = 4 + pr->name_len + 1 + rl + (pr->ref != NULL ? pr->ref_len : 0);
    if (n > len)
        return -1;
    /* byte for byte: a reference may hold any byte the path held */
    memcpy(buf, "/v2/", 4);
    memcpy(buf + 4, pr->name, pr->name_len);
    buf[4 + pr->name_len] = '/';
    memcpy(buf + 5 + pr->name_len, res, rl);
    if (pr->ref != NULL)
        memcpy(buf + 5 + pr->name_len + rl, pr->ref, pr->ref_len);
    return (int)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "get", ""};
    const char *m = "GET", *p;
    parse_route_t pr, again;
    char buf[8192];

    if (size != 0) {
        m = methods[data[0] % (sizeof(methods) / sizeof(methods[0]))];
        ++data;
        --size;
    }
    p = (const char *)data;
    size_t mlen = strlen(m);
    int read = is(m, mlen, "GET") || is(m, mlen, "HEAD");

    parse_route(&pr, p, size, m, mlen);
    CHECK(pr.ep == PARSE_EP_NONE || pr.err == ERR_NOT_FOUND); /* err is only read with PARSE_EP_NONE */
    /* a method is refused exactly when the resource has other methods, which a 405 lists */
    if (pr.ep != PARSE_EP_NONE)
        CHECK(pr.allow != NULL && allowed(pr.allow, m, mlen));
    if (pr.ep == PARSE_EP_NONE && pr.err == ERR_METHOD_UNKNOWN)
        CHECK(pr.allow != NULL && !allowed(pr.allow, m, mlen));
    switch (pr.target) {
    case PARSE_NOWHERE:
        CHECK(pr.ep == PARSE_EP_NONE &&
              (pr.err == ERR_NOT_FOUND || pr.err == ERR_NAME_INVALID || pr.err == ERR_METHOD_UNKNOWN));
        if (pr.err == ERR_NAME_INVALID)
            CHECK(pr.name == p + 4 && !name_valid(pr.name, pr.name_len));
        break;
    case PARSE_SERVICE:
        CHECK(is(p, size, "/token") || is(p, size, "/token/jwks") || is(p, size, "/.well-known/jwks.json") ||
              is(p, size, "/healthz") || is(p, size, "/readyz") || is(p, size, "/metrics"));
        CHECK(pr.ep == PARSE_EP_TOKEN || pr.ep == PARSE_EP_JWKS || pr.ep == PARSE_EP_HEALTHZ ||
              pr.ep == PARSE_EP_READYZ || pr.ep == PARSE_EP_METRICS);
        break;
    case PARSE_REGISTRY:
        CHECK(is(p, size, "/v2") || is(p, size, "/v2/") || is(p, size, "/v2/_catalog"));
        CHECK(pr.ep == (!read ? PARSE_EP_NONE : is(p, size, "/v2/_catalog") ? PARSE_EP_CATALOG : PARSE_EP_BASE));
        CHECK(pr.ep != PARSE_EP_NONE || pr.err == ERR_METHOD_UNKNOWN);
        break;
    case PARSE_NAMESPACE:
        /* "/api/v1/namespaces/" <one valid name component>, nothing after it */
        CHECK(size > 19 && memcmp(p, "/api/v1/namespaces/", 19) == 0 && pr.name == p + 19 && pr.name_len == size - 19 &&
              memchr(pr.name, '/', pr.name_len) == NULL && name_valid(pr.name, pr.name_len));
        CHECK(pr.ep == (read ? PARSE_EP_NAMESPACE : PARSE_EP_NONE));
        CHECK(pr.ep != PARSE_EP_NONE || pr.err == ERR_METHOD_UNKNOWN);
        break;
    case PARSE_REPOSITORY:
        /* "/v2/" <name> "/" …, the name valid (so no "..", no "//", no leading or trailing '/') */
        CHECK(size > 4 && memcmp(p, "/v2/", 4) == 0 && pr.name == p + 4 && pr.name_len < size - 4);
        CHECK(name_valid(pr.name, pr.name_len) && p[4 + pr.name_len] == '/');
        if (pr.ref != NULL)
            CHECK(pr.ref + pr.ref_len == p + size && pr.ref > pr.name + pr.name_len && pr.ref[-1] == '/' &&
                  memchr(pr.ref, '/', pr.ref_len) == NULL);
        switch (pr.ep) {
        case PARSE_EP_NONE:
            CHECK(pr.err == ERR_METHOD_UNKNOWN || pr.err == ERR_BLOB_UPLOAD_UNKNOWN);
            break;
        case PARSE_EP_TAGS_LIST:
        case PARSE_EP_REFERRERS:
            CHECK(read && pr.actions == ACTION_PULL && !pr.push);
            break;
        case PARSE_EP_BLOB_GET:
        case PARSE_EP_MANIFEST_GET:
            CHECK(read && pr.actions == ACTION_PULL && !pr.push && pr.ref != NULL);
            break;
        case PARSE_EP_UPLOAD_START:
            CHECK(is(m, mlen, "POST") && pr.actions == ACTION_PUSH && pr.push && pr.ref == NULL);
            break;
        case PARSE_EP_UPLOAD_STATUS:
        case PARSE_EP_UPLOAD_PATCH:
        case PARSE_EP_UPLOAD_PUT:
        case PARSE_EP_UPLOAD_DELETE:
            /* the handlers read the id as a C string (h2o lets no NUL into a path), and that is what is checked */
            CHECK(pr.actions == ACTION_PUSH && pr.push && pr.ref != NULL &&
                  upload_uuid_valid(pr.ref, strnlen(pr.ref, pr.ref_len)));
            CHECK(pr.ep == (read                    ? PARSE_EP_UPLOAD_STATUS
                            : is(m, mlen, "PATCH")  ? PARSE_EP_UPLOAD_PATCH
                            : is(m, mlen, "PUT")    ? PARSE_EP_UPLOAD_PUT
                            : is(m, mlen, "DELETE") ? PARSE_EP_UPLOAD_DELETE
                                                    : PARSE_EP_NONE));
            break;
        case PARSE_EP_BLOB_DELETE:
        case PARSE_EP_MANIFEST_DELETE:
            CHECK(is(m, mlen, "DELETE") && pr.actions == ACTION_DELETE && !pr.push && pr.ref != NULL);
            break;
        case PARSE_EP_MANIFEST_PUT:
            CHECK(is(m, mlen, "PUT") && pr.actions == ACTION_PUSH && pr.push && pr.ref != NULL);
            break;
        default:
            CHECK(!"an endpoint outside a repository");
        }
        /* the path a client would build for this endpoint leads to it again */
        int n;
        if (pr.ep != PARSE_EP_NONE && (n = canonical(&pr, buf, sizeof(buf))) > 0) {
            parse_route(&again, buf, (size_t)n, m, mlen);
            CHECK(again.target == PARSE_REPOSITORY && again.ep == pr.ep && again.name_len == pr.name_len &&
                  memcmp(again.name, pr.name, pr.name_len) == 0 && (again.ref == NULL) == (pr.ref == NULL) &&
                  again.ref_len == pr.ref_len && (pr.ref == NULL || memcmp(again.ref, pr.ref, pr.ref_len) == 0));
        }
        break;
    default:
        CHECK(!"an unknown target");
    }
    return 0;
}
