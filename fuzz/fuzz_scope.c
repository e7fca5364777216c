/*
 * libFuzzer target for src/oci/scope.c: the token protocol's scopes, as a client sends them to /token. The input is
 * read as one scope, as a space-separated list (the first byte sets the list's capacity), and as actions to format.
 * A scope accepted names a valid repository (or the catalog) and reads the same once written back; a list holds
 * each resource once, with the union of what was asked for it.
 */
#include "fuzz.h"
#include "oci/name.h"
#include "oci/scope.h"

static const char *type_name(scope_type_t t)
{
    return t == SCOPE_REPOSITORY ? "repository" : "registry";
}

/* `sc`, parsed from `s`, is well-formed and reads back the same from its canonical form. */
static void check_scope(const scope_t *sc, const char *s, size_t len)
{
    char acts[64], buf[512];
    size_t n = strlen(sc->name);
    scope_t again;

    CHECK(n <= SCOPE_NAME_MAX && (sc->actions & ~(unsigned)ACTION_ALL) == 0);
    if (sc->type == SCOPE_REPOSITORY)
        CHECK(name_valid(sc->name, n));
    else
        CHECK(sc->type == SCOPE_REGISTRY && strcmp(sc->name, "catalog") == 0);
    /* the input is "<type>:<name>:…" */
    snprintf(buf, sizeof(buf), "%s:%s:", type_name(sc->type), sc->name);
    CHECK(len >= strlen(buf) && memcmp(s, buf, strlen(buf)) == 0);
    snprintf(buf, sizeof(buf), "%s:%s:%s", type_name(sc->type), sc->name,
             scope_actions_format(sc->actions, acts, sizeof(acts)));
    CHECK(scope_parse(&again, buf, strlen(buf)) == 0);
    CHECK(again.type == sc->type && strcmp(again.name, sc->name) == 0 && again.actions == sc->actions);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    scope_t one, list[16];
    size_t cap = size != 0 ? data[0] % 17 : 0;
    const char *s = (const char *)data;

    if (scope_parse(&one, s, size) == 0)
        check_scope(&one, s, size);

    /* the list, and each of its items on its own */
    size_t n = scope_parse_list(list, cap, s, size);
    CHECK(n <= cap);
    for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < i; ++j)
            CHECK(list[i].type != list[j].type || strcmp(list[i].name, list[j].name) != 0);
    unsigned seen[16] = {0};
    for (size_t i = 0; i < size;) {
        const char *sp = memchr(s + i, ' ', size - i);
        size_t end = sp != NULL ? (size_t)(sp - s) : size, k;
        if (end > i && scope_parse(&one, s + i, end - i) == 0) {
            check_scope(&one, s + i, end - i);
            for (k = 0; k < n; ++k)
                if (list[k].type == one.type && strcmp(list[k].name, one.name) == 0)
                    break;
            CHECK(k < n || n == cap); /* only a full list drops a resource */
            if (k < n)
                seen[k] |= one.actions;
        }
        i = end + 1;
    }
    for (size_t k = 0; k < n; ++k)
        CHECK(seen[k] == list[k].actions);

    /* formatting actions into any buffer: NUL-terminated, whole names only, in order */
    unsigned actions = size != 0 ? data[size - 1] : 0;
    for (size_t len = 0; len < 24; ++len) {
        char buf[24];
        memset(buf, 'X', sizeof(buf));
        CHECK(scope_actions_format(actions, buf, len) == buf);
        if (len == 0)
            continue;
        CHECK(memchr(buf, '\0', len) != NULL);
        scope_t sc;
        char full[64];
        snprintf(full, sizeof(full), "registry:catalog:%s", buf);
        CHECK(scope_parse(&sc, full, strlen(full)) == 0 && (sc.actions & ~actions) == 0);
        CHECK(strlen(buf) == 0 || sc.actions != 0);
    }
    return 0;
}
