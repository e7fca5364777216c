/* Unit tests for src/oci/scope.c: the scope strings registry clients send. */
#include <stdlib.h>
#include <string.h>
#include "oci/scope.h"
#include "tap.h"

/* Parse from an exact-size heap copy so that ASan catches any read past the end. */
static int parse(scope_t *out, const char *s)
{
    size_t len = strlen(s);
    char *copy = malloc(len != 0 ? len : 1);
    int r;

    memcpy(copy, s, len);
    memset(out, 0x5a, sizeof(*out));
    r = scope_parse(out, copy, len);
    free(copy);
    return r;
}

static size_t parse_list(scope_t *out, size_t cap, const char *s)
{
    size_t len = strlen(s), n;
    char *copy = malloc(len != 0 ? len : 1);

    memcpy(copy, s, len);
    n = scope_parse_list(out, cap, copy, len);
    free(copy);
    return n;
}

static int is(const scope_t *sc, scope_type_t type, const char *name, unsigned actions)
{
    return sc->type == type && strcmp(sc->name, name) == 0 && sc->actions == actions;
}

static void test_forms(void)
{
    scope_t sc;

    ok(parse(&sc, "repository:library/alpine:pull") == 0 && is(&sc, SCOPE_REPOSITORY, "library/alpine", ACTION_PULL),
       "repository:library/alpine:pull");
    ok(parse(&sc, "repository:a/b:pull,push") == 0 && is(&sc, SCOPE_REPOSITORY, "a/b", ACTION_PULL | ACTION_PUSH),
       "pull,push");
    ok(parse(&sc, "repository:a/b:*") == 0 && is(&sc, SCOPE_REPOSITORY, "a/b", ACTION_ALL), "* is all actions");
    ok(parse(&sc, "repository:a/b:push,pull,delete") == 0 && is(&sc, SCOPE_REPOSITORY, "a/b", ACTION_ALL),
       "push,pull,delete in any order");
    ok(parse(&sc, "repository:a/b:delete") == 0 && is(&sc, SCOPE_REPOSITORY, "a/b", ACTION_DELETE), "delete alone");
    ok(parse(&sc, "registry:catalog:*") == 0 && is(&sc, SCOPE_REGISTRY, "catalog", ACTION_ALL), "registry:catalog:*");
    ok(parse(&sc, "registry:catalog:pull") == 0 && is(&sc, SCOPE_REGISTRY, "catalog", ACTION_PULL),
       "registry:catalog:pull keeps its action");
    ok(parse(&sc, "repository:a/b:") == 0 && is(&sc, SCOPE_REPOSITORY, "a/b", 0), "no actions: valid, actions 0");
    ok(parse(&sc, "repository:a/b:pull,frobnicate") == 0 && is(&sc, SCOPE_REPOSITORY, "a/b", ACTION_PULL),
       "unknown action ignored");
    ok(parse(&sc, "repository:a/b:frobnicate") == 0 && is(&sc, SCOPE_REPOSITORY, "a/b", 0), "only unknown actions: 0");
    ok(parse(&sc, "repository:a/b:pull,,push,") == 0 && is(&sc, SCOPE_REPOSITORY, "a/b", ACTION_PULL | ACTION_PUSH),
       "empty action items ignored");
    ok(parse(&sc, "repository:a/b:PULL") == 0 && is(&sc, SCOPE_REPOSITORY, "a/b", 0), "actions are case-sensitive");
    ok(parse(&sc, "repository:a/b:pull ") == 0 && is(&sc, SCOPE_REPOSITORY, "a/b", 0),
       "\"pull \" is not an action (lists are split before)");
    ok(parse(&sc, "repository:a:pull") == 0 && is(&sc, SCOPE_REPOSITORY, "a", ACTION_PULL), "one-component name");
    ok(parse(&sc, "repository:my-org/sub.dir/img_x:pull") == 0 &&
           is(&sc, SCOPE_REPOSITORY, "my-org/sub.dir/img_x", ACTION_PULL),
       "name with separators");
}

static void test_refused(void)
{
    scope_t sc;
    char longname[300], buf[320];

    ok(parse(&sc, "repository:A/b:pull") == -1, "upper-case name refused");
    ok(parse(&sc, "repository:a/../b:pull") == -1, "a/../b refused");
    ok(parse(&sc, "repository:../a:pull") == -1, "../a refused");
    ok(parse(&sc, "repository:a//b:pull") == -1, "a//b refused");
    ok(parse(&sc, "repository(plugin):x:pull") == -1, "repository(plugin) refused");
    ok(parse(&sc, "repository:a/b:c:pull") == -1, "colon in the name (split at first and last) refused");
    ok(parse(&sc, "repository:host:5000/a:pull") == -1, "host:port prefix refused");
    ok(parse(&sc, "repository:localhost/a::pull") == -1, "double colon refused");
    ok(parse(&sc, "repository::pull") == -1, "empty name refused");
    ok(parse(&sc, "repository:a/b") == -1, "no actions part (one colon) refused");
    ok(parse(&sc, "repository") == -1, "type only refused");
    ok(parse(&sc, "") == -1, "empty string refused");
    ok(parse(&sc, ":") == -1, "\":\" refused");
    ok(parse(&sc, "::") == -1, "\"::\" refused");
    ok(parse(&sc, ":a/b:pull") == -1, "empty type refused");
    ok(parse(&sc, "Repository:a/b:pull") == -1, "type is case-sensitive");
    ok(parse(&sc, "registry:catalogue:*") == -1, "registry:<not catalog> refused");
    ok(parse(&sc, "registry::*") == -1, "registry with empty name refused");
    ok(parse(&sc, "blob:a/b:pull") == -1, "unknown type refused");
    ok(scope_parse(&sc, "repository:a/b:pull\0x", 21) == 0 && is(&sc, SCOPE_REPOSITORY, "a/b", 0),
       "NUL inside an action: not an action");

    memset(longname, 'a', 255);
    longname[255] = '\0';
    snprintf(buf, sizeof(buf), "repository:%s:pull", longname);
    ok(parse(&sc, buf) == 0 && strlen(sc.name) == 255 && sc.actions == ACTION_PULL, "255-character name accepted");
    memset(longname, 'a', 256);
    longname[256] = '\0';
    snprintf(buf, sizeof(buf), "repository:%s:pull", longname);
    ok(parse(&sc, buf) == -1, "256-character name refused");
    ok(scope_parse(&sc, "repository:a\0b:pull", 19) == -1, "NUL inside the name refused");
}

static void test_list(void)
{
    scope_t sc[8];
    size_t n;

    n = parse_list(sc, 8, "repository:a/b:pull");
    ok(n == 1 && is(&sc[0], SCOPE_REPOSITORY, "a/b", ACTION_PULL), "list of one");
    n = parse_list(sc, 8, "repository:a/b:pull,push registry:catalog:*");
    ok(n == 2 && is(&sc[0], SCOPE_REPOSITORY, "a/b", 3) && is(&sc[1], SCOPE_REGISTRY, "catalog", ACTION_ALL),
       "two scopes, single space");
    n = parse_list(sc, 8, "   repository:a/b:pull     repository:c/d:push  ");
    ok(n == 2 && is(&sc[0], SCOPE_REPOSITORY, "a/b", ACTION_PULL) && is(&sc[1], SCOPE_REPOSITORY, "c/d", ACTION_PUSH),
       "multiple, leading and trailing spaces");
    n = parse_list(sc, 8, "repository:A/b:pull repository:c/d:pull bogus repository(plugin):x:pull");
    ok(n == 1 && is(&sc[0], SCOPE_REPOSITORY, "c/d", ACTION_PULL), "invalid entries skipped");
    n = parse_list(sc, 8, "repository:a/b:pull repository:a/b:push registry:catalog:*");
    ok(n == 2 && is(&sc[0], SCOPE_REPOSITORY, "a/b", ACTION_PULL | ACTION_PUSH), "same repository merged");
    n = parse_list(sc, 2, "repository:a:pull repository:b:pull repository:c:pull repository:a:push");
    ok(n == 2 && is(&sc[0], SCOPE_REPOSITORY, "a", ACTION_PULL | ACTION_PUSH) &&
           is(&sc[1], SCOPE_REPOSITORY, "b", ACTION_PULL),
       "capacity respected (merge still applies to stored entries)");
    ok(parse_list(sc, 8, "") == 0, "empty list");
    ok(parse_list(sc, 8, "     ") == 0, "spaces only");
    ok(parse_list(sc, 0, "repository:a/b:pull") == 0, "capacity 0");
    n = parse_list(sc, 8, "repository:a/b: repository:a/b:pull");
    ok(n == 1 && is(&sc[0], SCOPE_REPOSITORY, "a/b", ACTION_PULL), "empty-action scope then a real one");
}

static void test_actions(void)
{
    char buf[32], small[8];

    ok(strcmp(scope_actions_format(0, buf, sizeof(buf)), "") == 0, "format 0 -> \"\"");
    ok(strcmp(scope_actions_format(ACTION_ALL, buf, sizeof(buf)), "pull,push,delete") == 0, "format all");
    ok(strcmp(scope_actions_format(ACTION_DELETE | ACTION_PULL, buf, sizeof(buf)), "pull,delete") == 0,
       "format pull|delete");
    ok(strcmp(scope_actions_format(ACTION_PUSH, buf, sizeof(buf)), "push") == 0, "format push");
    ok(strcmp(scope_actions_format(ACTION_ALL | 64, buf, sizeof(buf)), "pull,push,delete") == 0,
       "unknown bits not formatted");
    ok(strcmp(scope_actions_format(ACTION_ALL, small, sizeof(small)), "pull") == 0, "small buffer: whole names only");
    ok(strcmp(scope_actions_format(ACTION_ALL, buf, 17), "pull,push,delete") == 0, "exact-size buffer");
    ok(strcmp(scope_actions_format(ACTION_ALL, buf, 16), "pull,push") == 0, "one byte short");
    buf[0] = 'x';
    ok(scope_actions_format(ACTION_ALL, buf, 0) == buf && buf[0] == 'x', "len 0 writes nothing");

    ok(scope_action_parse("pull", 4) == ACTION_PULL, "parse pull");
    ok(scope_action_parse("push", 4) == ACTION_PUSH, "parse push");
    ok(scope_action_parse("delete", 6) == ACTION_DELETE, "parse delete");
    ok(scope_action_parse("*", 1) == ACTION_ALL, "parse *");
    ok(scope_action_parse("pul", 3) == 0, "parse pul");
    ok(scope_action_parse("pullx", 5) == 0, "parse pullx");
    ok(scope_action_parse("pull", 3) == 0, "length is respected");
    ok(scope_action_parse("", 0) == 0, "parse empty");
}

int main(void)
{
    test_forms();
    test_refused();
    test_list();
    test_actions();
    return tap_done();
}
