/*
 * libFuzzer target for what berth reads of a raw HTTP/1 request head, against h2o's own parser (picohttpparser, the
 * phr_parse_request libh2o exports) on the same bytes:
 *   - the framing check (parse_framing in src/http/parse.c): only a head picohttpparser accepts reaches it, and its
 *     verdict must be the one the rules of parse.h give on picohttpparser's reading: a Content-Length that is not
 *     decimal, two that differ, one beside Transfer-Encoding, two Hosts, or none in HTTP/1.1;
 *   - a header of a head (parse_head_header, which the connection watchdog reads credentials with before h2o has the
 *     request): the first of that name that picohttpparser reads, with the same value;
 *   - whether the head is complete (conns_head_done in src/http/conns.h): always when picohttpparser has read it
 *     whole (picohttpparser may also ask for more bytes of a head that can never be valid: not checked).
 * The first byte picks the protocol: HTTP/1 (the head is given), or HTTP/2 (only the headers, with every
 * Content-Length among them).
 */
#include <strings.h>
#include "fuzz.h"
#include "http/conns.h"
#include "http/parse.h"

/* picohttpparser, inside libh2o-evloop (no header is installed) */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path,
                      size_t *path_len, int *minor_version, struct phr_header *headers, size_t *num_headers,
                      size_t last_len);

static int named(const struct phr_header *h, const char *name)
{
    return h->name_len == strlen(name) && strncasecmp(h->name, name, h->name_len) == 0;
}

/* The value without the blanks around it (picohttpparser leaves trailing ones in some versions). */
static h2o_iovec_t trimmed(const struct phr_header *h)
{
    const char *v = h->value;
    size_t n = h->value_len;
    while (n > 0 && (*v == ' ' || *v == '\t'))
        ++v, --n;
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        --n;
    return h2o_iovec_init(v, n);
}

static int decimal(h2o_iovec_t v)
{
    if (v.len == 0)
        return 0;
    for (size_t i = 0; i < v.len; ++i)
        if (v.base[i] < '0' || v.base[i] > '9')
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct phr_header hs[100];
    size_t nhs = 100, mlen, plen;
    const char *method, *path;
    int minor, http2 = 0;

    if (size != 0) {
        http2 = data[0] & 1;
        ++data;
        --size;
    }
    const char *buf = (const char *)data;
    int r = phr_parse_request(buf, size, &method, &mlen, &path, &plen, &minor, hs, &nhs, 0);
    if (r <= 0)
        return 0;                      /* h2o answers 400 itself (or waits for more) */
    CHECK(conns_head_done(buf, size)); /* else the watchdog would time a body out as a slow head */
    int version = 0x100 | (minor != 0);

    /* the watchdog's reading of a header is picohttpparser's first of that name */
    static const char *const names[] = {"authorization", "host", "content-length", "transfer-encoding"};
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); ++k) {
        h2o_iovec_t got;
        size_t i = 0;
        while (i < nhs && !named(&hs[i], names[k]))
            ++i;
        int found = parse_head_header(buf, size, names[k], &got);
        if (found != (i < nhs))
            fprintf(stderr, "parse_head_header(%s) says %d, picohttpparser %d\n", names[k], found, i < nhs);
        CHECK(found == (i < nhs));
        if (found) {
            h2o_iovec_t want = trimmed(&hs[i]);
            CHECK(h2o_memis(got.base, got.len, want.base, want.len));
        }
    }

    h2o_mem_pool_t pool;
    h2o_headers_t headers = {NULL};
    h2o_mem_init_pool(&pool);
    int want_refused = 0, hosts = 0, te = 0;
    h2o_iovec_t cl = {NULL, 0};
    for (size_t i = 0; i < nhs; ++i) {
        const struct phr_header *h = &hs[i];
        if (http2 && named(h, "content-length")) {
            /* HTTP/2 gives its headers as they came, no head */
            h2o_add_header(&pool, &headers, H2O_TOKEN_CONTENT_LENGTH, NULL, h->value, h->value_len);
            want_refused |= !decimal(h2o_iovec_init(h->value, h->value_len));
        } else if (!http2) {
            if (named(h, "host")) {
                ++hosts;
            } else if (named(h, "transfer-encoding")) {
                te = 1;
            } else if (named(h, "content-length")) {
                h2o_iovec_t v = trimmed(h);
                want_refused |= !decimal(v) || (cl.base != NULL && !h2o_memis(cl.base, cl.len, v.base, v.len));
                cl = v;
            }
        }
    }
    if (!http2)
        want_refused |= (te && cl.base != NULL) || hosts > 1 || (hosts == 0 && version >= 0x101);

    const char *got = parse_framing(&headers, http2 ? 0x200 : version, http2 ? NULL : buf, http2 ? 0 : size);
    if ((got != NULL) != want_refused)
        fprintf(stderr, "berth says \"%s\", picohttpparser's reading says %s\n", got ? got : "fine",
                want_refused ? "refuse" : "fine");
    CHECK((got != NULL) == want_refused);
    h2o_mem_clear_pool(&pool);
    return 0;
}
