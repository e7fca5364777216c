/*
 * Repository names and tags, matched by hand against the distribution spec's grammar (no regex: names arrive on
 * every request, and the grammar is small enough that a loop is clearer than a pattern).
 */
#include <string.h>
#include "oci/name.h"

static int is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int is_tag_char(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z') || c == '_' || c == '.' || c == '-';
}

int name_valid(const char *s, size_t len)
{
    size_t i = 0;

    if (len == 0 || len > NAME_MAX_LEN)
        return 0;
    /* Each pass consumes one run of [a-z0-9]+ and the separator or '/' after it; whatever follows a separator or a
     * '/' must start another run, which is what rejects "a..b", "a//b", "a/", "a-" and "a___b". */
    for (;;) {
        if (i == len || !is_lower_alnum(s[i]))
            return 0;
        while (i < len && is_lower_alnum(s[i]))
            ++i;
        if (i == len)
            return 1;
        switch (s[i]) {
        case '/':
        case '.':
            ++i;
            break;
        case '_':
            ++i;
            if (i < len && s[i] == '_')
                ++i;
            break;
        case '-':
            while (i < len && s[i] == '-')
                ++i;
            break;
        default:
            return 0;
        }
    }
}

int tag_valid(const char *s, size_t len)
{
    if (len == 0 || len > TAG_MAX_LEN || s[0] == '.' || s[0] == '-')
        return 0;
    for (size_t i = 0; i < len; ++i)
        if (!is_tag_char(s[i]))
            return 0;
    return 1;
}

reference_t reference_parse(const char *s, size_t len, digest_t *d)
{
    if (memchr(s, ':', len) == NULL)
        return tag_valid(s, len) ? REFERENCE_TAG : REFERENCE_ETAG;
    switch (digest_parse(d, s, len)) {
    case DIGEST_OK:
        return REFERENCE_DIGEST;
    case DIGEST_EUNSUPPORTED:
        return REFERENCE_EUNSUPPORTED;
    default:
        return REFERENCE_EDIGEST;
    }
}
