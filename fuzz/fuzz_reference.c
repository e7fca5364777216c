/*
 * libFuzzer target for reference_parse (src/oci/name.c), the <reference> of /v2/<name>/manifests/<reference>: a tag
 * exactly when there is no colon and the spec's tag expression matches, a digest exactly when digest_parse takes the
 * whole of it; never both, and a tag never holds a '/' (it becomes part of a key, never of a path).
 */
#include "fuzz.h"
#include "oci/name.h"

#define TAG_RE "^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static regex_t tag_re;
    static int tag_ready;
    const char *s = (const char *)data;
    digest_t d, again;

    reference_t r = reference_parse(s, size, &d);
    int colon = memchr(s, ':', size) != NULL;
    digest_err_t derr = digest_parse(&again, s, size);
    int tag = fuzz_match(fuzz_regex(&tag_re, &tag_ready, TAG_RE), s, size);

    switch (r) {
    case REFERENCE_TAG:
        CHECK(!colon && tag && memchr(s, '/', size) == NULL && derr != DIGEST_OK);
        break;
    case REFERENCE_ETAG:
        CHECK(!colon && !tag);
        break;
    case REFERENCE_DIGEST:
        CHECK(colon && derr == DIGEST_OK && !tag && d.len == size && memcmp(d.str, s, size) == 0);
        CHECK(digest_equal(&d, &again));
        break;
    case REFERENCE_EDIGEST:
        CHECK(colon && derr == DIGEST_EMALFORMED);
        break;
    case REFERENCE_EUNSUPPORTED:
        CHECK(colon && derr == DIGEST_EUNSUPPORTED);
        break;
    default:
        CHECK(!"an unknown reference kind");
    }
    return 0;
}
