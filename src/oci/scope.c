/*
 * Scopes of the Docker registry token protocol. A repository name never contains ':', so a scope splits at its first
 * colon (end of the type) and its last (start of the actions); anything with a colon left in the name, such as
 * "repository:host:5000/a:pull", then fails name_valid() and is refused.
 */
#include <stdio.h>
#include <string.h>
#include "oci/scope.h"
#include "oci/name.h"

static int span_is(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && memcmp(s, lit, n) == 0;
}

unsigned scope_action_parse(const char *s, size_t len)
{
    if (span_is(s, len, "pull"))
        return ACTION_PULL;
    if (span_is(s, len, "push"))
        return ACTION_PUSH;
    if (span_is(s, len, "delete"))
        return ACTION_DELETE;
    if (span_is(s, len, "*"))
        return ACTION_ALL;
    return 0;
}

/* "pull,push": unknown and empty items count for nothing (distribution ignores them too). */
static unsigned actions_parse(const char *s, size_t len)
{
    unsigned actions = 0;
    size_t i = 0;

    while (i < len) {
        const char *comma = memchr(s + i, ',', len - i);
        size_t end = comma != NULL ? (size_t)(comma - s) : len;
        actions |= scope_action_parse(s + i, end - i);
        i = end + 1;
    }
    return actions;
}

int scope_parse(scope_t *out, const char *s, size_t len)
{
    const char *first, *last;
    size_t typelen, namelen;

    if (len == 0 || (first = memchr(s, ':', len)) == NULL || (last = memrchr(s, ':', len)) == first)
        return -1;
    typelen = (size_t)(first - s);
    namelen = (size_t)(last - first - 1);
    if (namelen > SCOPE_NAME_MAX)
        return -1;

    if (span_is(s, typelen, "repository")) {
        if (!name_valid(first + 1, namelen))
            return -1;
        out->type = SCOPE_REPOSITORY;
    } else if (span_is(s, typelen, "registry")) {
        if (!span_is(first + 1, namelen, "catalog"))
            return -1;
        out->type = SCOPE_REGISTRY;
    } else {
        return -1; /* includes "repository(plugin)" and other resource classes */
    }
    memcpy(out->name, first + 1, namelen);
    out->name[namelen] = '\0';
    out->actions = actions_parse(last + 1, len - (size_t)(last + 1 - s));
    return 0;
}

size_t scope_parse_list(scope_t *out, size_t cap, const char *s, size_t len)
{
    size_t n = 0, i = 0;

    while (i < len) {
        const char *space = memchr(s + i, ' ', len - i);
        size_t end = space != NULL ? (size_t)(space - s) : len, k;
        scope_t one;

        if (end > i && scope_parse(&one, s + i, end - i) == 0) {
            /* The same resource named twice (clients repeat scopes) takes one slot with the union of the actions. */
            for (k = 0; k < n; ++k) {
                if (out[k].type == one.type && strcmp(out[k].name, one.name) == 0) {
                    out[k].actions |= one.actions;
                    break;
                }
            }
            if (k == n && n < cap)
                out[n++] = one;
        }
        i = end + 1;
    }
    return n;
}

char *scope_actions_format(unsigned actions, char *buf, size_t len)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{ACTION_PULL, "pull"}, {ACTION_PUSH, "push"}, {ACTION_DELETE, "delete"}};
    size_t off = 0;

    if (len == 0)
        return buf;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); ++i) {
        if ((actions & names[i].bit) == 0)
            continue;
        size_t need = (off != 0) + strlen(names[i].name);
        if (off + need >= len)
            break; /* too small: stop at a whole name rather than write half of one */
        off += (size_t)snprintf(buf + off, len - off, "%s%s", off != 0 ? "," : "", names[i].name);
    }
    return buf;
}
