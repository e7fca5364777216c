/*
 * HTTP byte ranges (RFC 9110 section 14): a single "bytes" range on blob GETs, and the Content-Range of chunked
 * uploads.
 */
#include <string.h>
#include "oci/range.h"

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static void skip_ows(const char *s, size_t len, size_t *i)
{
    while (*i < len && is_ows(s[*i]))
        ++*i;
}

/* Strip leading and trailing OWS by narrowing [*s, *s + *len). */
static void trim_ows(const char **s, size_t *len)
{
    while (*len != 0 && is_ows((*s)[0])) {
        ++*s;
        --*len;
    }
    while (*len != 0 && is_ows((*s)[*len - 1]))
        --*len;
}

/* Case-insensitive match of the lowercase token `tok` at s[*i]; advances past it on success. */
static int match_token(const char *s, size_t len, size_t *i, const char *tok)
{
    size_t n = strlen(tok);

    if (len - *i < n)
        return 0;
    for (size_t k = 0; k < n; ++k)
        if ((s[*i + k] | 0x20) != tok[k])
            return 0;
    *i += n;
    return 1;
}

/*
 * Parse 1*DIGIT at s[*i]. Returns 0 if there is no digit, 1 otherwise. A value beyond uint64_t saturates and sets
 * *overflow: for a Range that is still meaningful (the position is past any entity), for a Content-Range it is not.
 */
static int parse_uint(const char *s, size_t len, size_t *i, uint64_t *out, int *overflow)
{
    uint64_t v = 0;
    size_t start = *i;

    *overflow = 0;
    for (; *i < len && is_digit(s[*i]); ++*i) {
        unsigned d = s[*i] - '0';
        if (v > (UINT64_MAX - d) / 10) {
            v = UINT64_MAX;
            *overflow = 1;
        } else {
            v = v * 10 + d;
        }
    }
    *out = v;
    return *i != start;
}

range_result_t range_parse(const char *s, size_t len, uint64_t size, uint64_t *out_start, uint64_t *out_end)
{
    uint64_t first = 0, last = 0;
    int has_first, has_last, overflow;
    size_t i = 0;

    if (s == NULL)
        return RANGE_IGNORE;
    trim_ows(&s, &len);
    if (!match_token(s, len, &i, "bytes"))
        return RANGE_IGNORE;
    skip_ows(s, len, &i);
    if (i == len || s[i++] != '=')
        return RANGE_IGNORE;
    /* A range-set with several ranges would need multipart/byteranges; RFC 9110 lets us send the whole entity. */
    if (memchr(s + i, ',', len - i) != NULL)
        return RANGE_IGNORE;
    skip_ows(s, len, &i);
    has_first = parse_uint(s, len, &i, &first, &overflow);
    if (i == len || s[i++] != '-')
        return RANGE_IGNORE;
    has_last = parse_uint(s, len, &i, &last, &overflow);
    if (i != len || (!has_first && !has_last))
        return RANGE_IGNORE;
    if (has_first && has_last && last < first)
        return RANGE_IGNORE; /* an invalid byte-range-spec, not an unsatisfiable one */

    if (!has_first) {
        /* suffix range: the last `last` bytes; a zero-length suffix selects nothing */
        if (last == 0 || size == 0)
            return RANGE_UNSATISFIABLE;
        *out_start = last >= size ? 0 : size - last;
        *out_end = size - 1;
        return RANGE_OK;
    }
    if (first >= size)
        return RANGE_UNSATISFIABLE;
    *out_start = first;
    *out_end = has_last && last < size - 1 ? last : size - 1;
    return RANGE_OK;
}

int content_range_parse(const char *s, size_t len, uint64_t *out_start, uint64_t *out_end)
{
    uint64_t start, end, total;
    int overflow;
    size_t i = 0;
    int rfc_form = 0;

    if (s == NULL)
        return -1;
    trim_ows(&s, &len);
    if (match_token(s, len, &i, "bytes")) {
        if (i == len || s[i] != ' ')
            return -1;
        skip_ows(s, len, &i);
        rfc_form = 1;
    }
    if (!parse_uint(s, len, &i, &start, &overflow) || overflow)
        return -1;
    if (i == len || s[i++] != '-')
        return -1;
    if (!parse_uint(s, len, &i, &end, &overflow) || overflow || end < start)
        return -1;
    if (rfc_form) {
        if (i == len || s[i++] != '/')
            return -1;
        if (i < len && s[i] == '*') {
            ++i;
        } else {
            if (!parse_uint(s, len, &i, &total, &overflow) || overflow || end >= total)
                return -1;
        }
    }
    if (i != len)
        return -1;
    *out_start = start;
    *out_end = end;
    return 0;
}
