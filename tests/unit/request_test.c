/*
 * Reading what a request carries, without a server: the Accept headers and Basic credentials (http/parse.h), and
 * application/x-www-form-urlencoded values, as in a query or a token POST (form_value, http/response.h).
 */
#include <string.h>
#include "http/parse.h"
#include "http/response.h"
#include "tap.h"

#define OCI "application/vnd.oci.image.manifest.v1+json"

static h2o_mem_pool_t pool;

/* Whether Accept headers `values` (NULL-terminated; other headers around them) allow OCI. */
static int accepts(const char *const *values)
{
    h2o_headers_t hs = {NULL};
    h2o_add_header(&pool, &hs, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/plain"));
    for (; *values != NULL; ++values) {
        h2o_add_header(&pool, &hs, H2O_TOKEN_ACCEPT, NULL, *values, strlen(*values));
        h2o_add_header(&pool, &hs, H2O_TOKEN_USER_AGENT, NULL, H2O_STRLIT(OCI));
    }
    return parse_accepts(&hs, OCI);
}

#define ACCEPTS(want, desc, ...) ok(accepts((const char *const[]){__VA_ARGS__, NULL}) == (want), "%s", desc)

static void test_accepts(void)
{
    ok(accepts((const char *const[]){NULL}), "no Accept header allows anything");
    ACCEPTS(1, "the type itself", OCI);
    ACCEPTS(0, "another type only", "application/vnd.docker.distribution.manifest.v2+json");
    ACCEPTS(1, "the type in a list", "application/vnd.docker.distribution.manifest.v2+json, " OCI ", application/json");
    ACCEPTS(1, "with parameters", OCI "; q=0.5; charset=utf-8");
    ACCEPTS(1, "q=0 is not read: it allows too", OCI ";q=0");
    ACCEPTS(1, "*/*", "text/html, */*");
    ACCEPTS(1, "*/* with a q-value", "*/*;q=0.1");
    ACCEPTS(1, "a wildcard of the type", "application/*");
    ACCEPTS(0, "a wildcard of another type", "text/*");
    ACCEPTS(0, "a wildcard that is not a whole subtype", "application/vnd.oci.*");
    ACCEPTS(0, "a lone *", "*");
    ACCEPTS(0, "a wildcard type with a subtype", "*/json");
    ACCEPTS(1, "spaces and tabs around entries", " \t" OCI "\t , text/plain");
    ACCEPTS(0, "case-sensitive", "application/vnd.oci.image.manifest.v1+JSON");
    ACCEPTS(0, "a prefix of the type", "application/vnd.oci.image.manifest.v1");
    ACCEPTS(0, "the type and more", OCI "x");
    ACCEPTS(0, "an empty Accept header allows nothing", "");
    ACCEPTS(0, "empty entries allow nothing", ", ,\t,");
    ACCEPTS(1, "the type in the second of two headers", "text/plain", OCI);
    ACCEPTS(0, "two headers, neither with the type", "text/plain", "application/json");
    ACCEPTS(1, "an empty header and one with the type", "", OCI);

    /* found by fuzz/fuzz_accept.c: a type wildcard was compared with strncmp, so that the whole type, a NUL and a
     * wildcard's slash and star made a wildcard of that type (h2o refuses a NUL in a header: no request sends it) */
    h2o_headers_t hs = {NULL};
    static const char nul[] = OCI "\0/*";
    h2o_add_header(&pool, &hs, H2O_TOKEN_ACCEPT, NULL, nul, sizeof(nul) - 1);
    ok(!parse_accepts(&hs, OCI), "the type, a NUL and \"/*\" is no wildcard of it");
}

static const char *form(const char *s, const char *key, int nth)
{
    return form_value(&pool, s, strlen(s), key, nth);
}

static int is(const char *got, const char *want)
{
    return want == NULL ? got == NULL : got != NULL && strcmp(got, want) == 0;
}

#define FORM(s, key, nth, want)                                                                                        \
    ok(is(form(s, key, nth), want), "%s: %s[%d] is %s%s%s", s, key, nth, want ? "\"" : "", want ? want : "missing",    \
       want ? "\"" : "")

static void test_form(void)
{
    FORM("a=1&b=2", "a", 0, "1");
    FORM("a=1&b=2", "b", 0, "2");
    FORM("a=1&b=2", "c", 0, NULL);
    FORM("", "a", 0, NULL);
    FORM("scope=repository%3Afoo%2Fbar%3Apull", "scope", 0, "repository:foo/bar:pull");
    FORM("x=%3a%2f", "x", 0, ":/");
    FORM("q=a+b", "q", 0, "a b");
    FORM("q=a%2Bb", "q", 0, "a+b");
    FORM("p=50%25", "p", 0, "50%");
    FORM("x=%zz", "x", 0, "%zz");
    FORM("x=%4", "x", 0, "%4");
    FORM("x=%", "x", 0, "%");
    FORM("x=a%00b", "x", 0, "a%00b"); /* never a NUL inside a value */
    FORM("scope=a&scope=b&scope=c", "scope", 0, "a");
    FORM("scope=a&scope=b&scope=c", "scope", 1, "b");
    FORM("scope=a&scope=b&scope=c", "scope", 2, "c");
    FORM("scope=a&scope=b&scope=c", "scope", 3, NULL);
    FORM("scope=a&other=x&scope=b", "scope", 1, "b");
    FORM("a=&b=2", "a", 0, "");
    FORM("flag&x=1", "flag", 0, "");
    FORM("a=b=c", "a", 0, "b=c");
    FORM("ab=1", "a", 0, NULL);
    FORM("a=1", "ab", 0, NULL);
    FORM("a%62=1", "ab", 0, NULL); /* keys are compared as sent */
    FORM("a%62=1", "a%62", 0, "1");
    FORM("a=1&&b=2", "b", 0, "2");
    FORM("a=1&", "a", 0, "1");
    FORM("=v", "", 0, "v");
    ok(is(form_value(&pool, "a=123&b=4", 4, "a", 0), "12"), "only `len` bytes are read");
    ok(is(form_value(&pool, "a=123&b=4", 5, "b", 0), NULL), "nor keys beyond them");
}

/* "Basic " credentials: the header's value after "Basic " */
static int basic(const char *v, const char *user, const char *pass)
{
    char *u = NULL, *p = NULL;
    int r = parse_basic(&pool, v, strlen(v), &u, &p);
    if (user == NULL)
        return r == -1;
    return r == 0 && strcmp(u, user) == 0 && strcmp(p, pass) == 0;
}

static void test_basic(void)
{
    char longer[1400];

    ok(basic("dXNlcjpwYXNz", "user", "pass"), "user:pass");
    ok(basic("  dXNlcjpwYXNz", "user", "pass"), "spaces before the credentials");
    ok(basic("YWxhZGRpbjpvcGVuIHNlc2FtZQ==", "aladdin", "open sesame"), "padding (==)");
    ok(basic("YTpiYw==", "a", "bc"), "padding (==), short");
    ok(basic("YTpiY2Q=", "a", "bcd"), "padding (=)");
    ok(basic("dTpwOnc6eA==", "u", "p:w:x"), "a password with colons");
    ok(basic("YTo=", "a", ""), "an empty password");
    ok(basic("Og==", NULL, NULL), "an empty user is refused");
    ok(basic("dXNlcnBhc3M=", NULL, NULL), "no colon is refused");
    ok(basic("dXNlcgBuYW1lOnB3", NULL, NULL), "a NUL inside is refused");
    ok(basic("", NULL, NULL), "nothing is refused");
    ok(basic("dXNlcjpwYXN", NULL, NULL), "a length that is not a multiple of 4 is refused");
    ok(basic("dXNl*jpwYXNz", NULL, NULL), "a character outside base64 is refused");
    memset(longer, 'Q', sizeof(longer));
    memcpy(longer, "YTpi", 4); /* "a:b" then 'A' bytes */
    longer[1300] = '\0';
    ok(parse_basic(&pool, longer, 1300, &(char *){NULL}, &(char *){NULL}) == 0, "1300 characters are read");
    ok(parse_basic(&pool, longer, 1304, &(char *){NULL}, &(char *){NULL}) == -1, "1304 are too many");
}

int main(void)
{
    h2o_mem_init_pool(&pool);
    test_accepts();
    test_form();
    test_basic();
    h2o_mem_clear_pool(&pool);
    return tap_done();
}
