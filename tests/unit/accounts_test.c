/* The account store against a temporary database: accounts, teams, repository facts, tokens, generations. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>
#include "auth/password.h"
#include "auth/admin.h"
#include "store/accounts.h"
#include "store/db.h"
#include "store/metastore.h"
#include "util/status.h"
#include "tap.h"

static char root[256];
static metastore_t *m;

static int64_t id_of(const char *name)
{
    account_t a;
    int64_t id = -1;
    if (accounts_get(m, name, &a) == 0)
        id = a.id;
    account_dispose(&a);
    return id;
}

static int64_t account_gen(const char *name)
{
    account_t a;
    int64_t g = -1;
    if (accounts_get(m, name, &a) == 0)
        g = a.generation;
    account_dispose(&a);
    return g;
}

static int64_t count(const char *sql)
{
    sqlite3_stmt *s;
    int64_t n = -1;
    if (sqlite3_prepare_v2(db_handle(m), sql, -1, &s, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return n;
}

static accounts_repo_facts_t facts(const char *who, const char *repo)
{
    accounts_repo_facts_t f;
    memset(&f, 0xff, sizeof(f));
    int64_t id = who ? id_of(who) : 0;
    if (accounts_repo_facts(m, id, repo, &f) != 0)
        f.exists = -1;
    return f;
}

/* ns_actions and granted of `who` on `repo` as "ns/granted" */
static int facts_are(const char *who, const char *repo, unsigned ns, unsigned granted)
{
    accounts_repo_facts_t f = facts(who, repo);
    if (f.ns_actions != ns || f.granted != granted) {
        printf("# %s on %s: ns %u granted %u (expected %u %u)\n", who ? who : "anonymous", repo, f.ns_actions,
               f.granted, ns, granted);
        return 0;
    }
    return 1;
}

static void test_names(void)
{
    const char *good[] = {"a", "alice", "a.b", "a_b", "a__b", "a-b", "a---b", "a1", "0", "x.y-z_w", NULL};
    const char *bad[] = {"", "Alice", "a/b", "-a", "a-", "a___b", "a..b", "a_", ".a", "a b", "a:b", "a*", NULL};
    for (int i = 0; good[i]; ++i)
        ok(accounts_name_valid(good[i]), "name %s is valid", good[i]);
    for (int i = 0; bad[i]; ++i)
        ok(!accounts_name_valid(bad[i]), "name '%s' is invalid", bad[i]);
    char long_name[70];
    memset(long_name, 'a', sizeof(long_name));
    long_name[64] = '\0';
    ok(accounts_name_valid(long_name), "64 characters are allowed");
    long_name[64] = 'a';
    long_name[65] = '\0';
    ok(!accounts_name_valid(long_name), "65 are not");
    ok(!accounts_name_valid(NULL), "NULL is not a name");

    ok(accounts_pattern_valid("*") && accounts_pattern_valid("acme/*") && accounts_pattern_valid("acme/app") &&
           accounts_pattern_valid("a/b/*") && accounts_pattern_valid("solo"),
       "grant patterns: *, ns/*, names");
    ok(!accounts_pattern_valid("") && !accounts_pattern_valid("/*") && !accounts_pattern_valid("acme*") &&
           !accounts_pattern_valid("acme/**") && !accounts_pattern_valid("*/x") && !accounts_pattern_valid("Acme/*") &&
           !accounts_pattern_valid("acme/") && !accounts_pattern_valid(NULL),
       "malformed patterns are refused");
}

static void test_accounts(void)
{
    account_t a;
    char *h = password_hash("alice-pw");
    ok(h != NULL, "hash a password");
    ok(accounts_user_add(m, "alice", h, 0) == 0, "add user alice");
    free(h);
    ok(accounts_user_add(m, "bob", NULL, 0) == 0, "add user bob without a password");
    ok(accounts_user_add(m, "root", NULL, 1) == 0, "add an administrator");
    ok(accounts_org_add(m, "acme") == 0, "add organisation acme");
    ok(accounts_robot_add(m, "ci") == 0, "add robot ci");
    ok(accounts_user_add(m, "alice", NULL, 0) == BERTH_EEXISTS, "a second alice: EEXISTS");
    ok(accounts_org_add(m, "alice") == BERTH_EEXISTS, "an organisation named like a user: EEXISTS");
    ok(accounts_robot_add(m, "acme") == BERTH_EEXISTS, "a robot named like an organisation: EEXISTS");
    ok(accounts_user_add(m, "ci", NULL, 0) == BERTH_EEXISTS, "a user named like a robot: EEXISTS");
    ok(accounts_user_add(m, "Bad/Name", NULL, 0) == BERTH_ERROR, "an invalid name is refused");
    ok(accounts_org_add(m, "-x") == BERTH_ERROR && accounts_robot_add(m, "") == BERTH_ERROR, "for every kind");

    ok(accounts_get(m, "alice", &a) == 0, "get alice");
    ok(strcmp(a.name, "alice") == 0 && a.kind == ACCOUNT_USER && !a.admin && !a.disabled && a.generation == 1,
       "her fields");
    ok(a.password_hash && strncmp(a.password_hash, "$y$", 3) == 0, "a yescrypt hash is stored");
    ok(password_verify("alice-pw", a.password_hash) && !password_verify("alice-pW", a.password_hash), "that verifies");
    int64_t alice = a.id;
    account_dispose(&a);
    ok(a.password_hash == NULL, "account_dispose frees and clears the hash");
    ok(accounts_get_by_id(m, alice, &a) == 0 && strcmp(a.name, "alice") == 0, "get by id");
    account_dispose(&a);
    ok(accounts_get(m, "nobody", &a) == BERTH_ENOTFOUND, "unknown name: ENOTFOUND");
    ok(accounts_get_by_id(m, 9999, &a) == BERTH_ENOTFOUND, "unknown id: ENOTFOUND");
    ok(accounts_get(m, "acme", &a) == 0 && a.kind == ACCOUNT_ORG && a.password_hash == NULL, "acme is an organisation");
    account_dispose(&a);
    ok(accounts_get(m, "ci", &a) == 0 && a.kind == ACCOUNT_ROBOT, "ci is a robot");
    account_dispose(&a);
    ok(accounts_get(m, "root", &a) == 0 && a.admin, "root is an administrator");
    account_dispose(&a);

    h = password_hash("bob-pw");
    ok(accounts_user_set_password(m, "bob", h) == 0, "set bob's password");
    ok(accounts_get(m, "bob", &a) == 0 && password_verify("bob-pw", a.password_hash), "it verifies");
    account_dispose(&a);
    ok(accounts_user_set_password(m, "acme", h) == BERTH_ENOTFOUND, "an organisation has no password");
    ok(accounts_user_set_password(m, "ci", h) == BERTH_ENOTFOUND, "nor a robot");
    ok(accounts_user_set_password(m, "nobody", h) == BERTH_ENOTFOUND, "nor a missing user");
    free(h);
    ok(accounts_user_set_disabled(m, "acme", 1) == BERTH_ENOTFOUND, "an organisation cannot be disabled");
    ok(accounts_user_set_admin(m, "nobody", 1) == BERTH_ENOTFOUND, "set_admin of a missing user");
    ok(accounts_user_set_admin(m, "bob", 1) == 0 && accounts_get(m, "bob", &a) == 0 && a.admin,
       "make bob administrator");
    account_dispose(&a);
    ok(accounts_user_set_admin(m, "bob", 0) == 0 && accounts_get(m, "bob", &a) == 0 && !a.admin, "and not");
    account_dispose(&a);
}

static void list_cb(void *ctx, const account_t *a)
{
    char *buf = ctx;
    strcat(buf, a->name);
    strcat(buf, a->kind == ACCOUNT_ORG ? "(o) " : a->kind == ACCOUNT_ROBOT ? "(r) " : " ");
}

static void test_list(void)
{
    char buf[512] = "";
    int n = accounts_list(m, list_cb, buf);
    ok(n == 5, "list: 5 accounts (%d)", n);
    ok(strcmp(buf, "acme(o) alice bob ci(r) root ") == 0, "ordered by name, with kinds: %s", buf);
}

static void test_teams(void)
{
    const char *users[] = {"carol", "dave", "erin", "frank", NULL};
    for (int i = 0; users[i]; ++i)
        accounts_user_add(m, users[i], NULL, 0);
    ok(accounts_team_add(m, "acme", "readers", ACTION_PULL) == 0, "team acme/readers (pull)");
    ok(accounts_team_add(m, "acme", "writers", ACTION_PULL | ACTION_PUSH) == 0, "team acme/writers (pull, push)");
    ok(accounts_team_add(m, "acme", "deleters", ACTION_DELETE) == 0, "team acme/deleters (delete)");
    ok(accounts_team_add(m, "acme", "readers", ACTION_ALL) == BERTH_EEXISTS, "the same team twice: EEXISTS");
    ok(accounts_team_add(m, "alice", "x", ACTION_PULL) == BERTH_ENOTFOUND, "a user has no teams");
    ok(accounts_team_add(m, "nope", "x", ACTION_PULL) == BERTH_ENOTFOUND, "nor a missing organisation");
    ok(accounts_team_add(m, "acme", "Bad", ACTION_PULL) == BERTH_ERROR, "an invalid team name is refused");
    ok(accounts_team_member(m, "acme", "readers", "carol", 1) == 0, "carol joins readers");
    ok(accounts_team_member(m, "acme", "readers", "carol", 1) == 0, "again: no error");
    ok(accounts_team_member(m, "acme", "writers", "dave", 1) == 0, "dave joins writers");
    ok(accounts_team_member(m, "acme", "deleters", "erin", 1) == 0, "erin joins deleters");
    ok(accounts_team_member(m, "acme", "readers", "frank", 1) == 0 &&
           accounts_team_member(m, "acme", "deleters", "frank", 1) == 0,
       "frank joins readers and deleters");
    ok(accounts_team_member(m, "acme", "writers", "ci", 1) == 0, "a robot can be a member");
    ok(accounts_team_member(m, "acme", "nope", "carol", 1) == BERTH_ENOTFOUND, "a missing team: ENOTFOUND");
    ok(accounts_team_member(m, "nope", "readers", "carol", 1) == BERTH_ENOTFOUND, "a missing organisation: ENOTFOUND");
    ok(accounts_team_member(m, "acme", "readers", "nobody", 1) == BERTH_ENOTFOUND, "a missing user: ENOTFOUND");
    ok(accounts_team_member(m, "acme", "readers", "acme", 1) == BERTH_ENOTFOUND, "an organisation cannot be a member");
    ok(accounts_team_member(m, "acme", "writers", "carol", 0) == BERTH_ENOTFOUND, "removing a non-member: ENOTFOUND");
    ok(count("SELECT count(*) FROM team_member") == 6, "6 memberships");
}

static void test_facts(void)
{
    const char *repos[] = {"alice/app", "acme/app", "acme/a/b", "other/x", "other/y/z", "otherx/a",
                           "other",     "pub/lib",  "a_b/c",    "axb/c",   NULL};
    for (int i = 0; repos[i]; ++i)
        accounts_repo_set_public(m, repos[i], 0);
    ok(count("SELECT count(*) FROM repository") == 10, "repositories created by set_public");

    accounts_repo_facts_t f = facts("alice", "alice/app");
    ok(f.exists == 1 && f.is_public == 0 && f.ns_actions == ACTION_ALL && f.granted == 0, "own namespace: everything");
    ok(facts_are("bob", "alice/app", 0, 0), "another user's namespace: nothing");
    f = facts("alice", "alice/missing");
    ok(f.exists == 0 && f.is_public == 0 && f.ns_actions == ACTION_ALL,
       "own namespace, missing repository: exists 0, ns all");
    f = facts("alice", "alice");
    ok(f.exists == 0 && f.ns_actions == ACTION_ALL, "a one-component name is in the namespace of that name");

    ok(facts_are("carol", "acme/app", ACTION_PULL, 0), "org via team readers: pull");
    ok(facts_are("dave", "acme/app", ACTION_PULL | ACTION_PUSH, 0), "org via team writers: pull, push");
    ok(facts_are("erin", "acme/a/b", ACTION_DELETE, 0), "org via team deleters: delete (deep names too)");
    ok(facts_are("frank", "acme/app", ACTION_PULL | ACTION_DELETE, 0), "two teams: the union");
    ok(facts_are("ci", "acme/app", ACTION_PULL | ACTION_PUSH, 0), "a robot member: its team's permission");
    ok(facts_are("bob", "acme/app", 0, 0), "not a member: nothing");
    ok(facts_are("carol", "acmex/app", 0, 0), "another namespace with the org's name as prefix: nothing");
    f = facts("carol", "acme/missing");
    ok(f.exists == 0 && f.ns_actions == ACTION_PULL, "org namespace, missing repository: exists 0, team permission");

    ok(accounts_grant(m, "other/x", "bob", ACTION_PULL) == 0, "grant other/x pull to bob");
    ok(facts_are("bob", "other/x", 0, ACTION_PULL), "exact grant");
    ok(facts_are("bob", "other/y/z", 0, 0), "covers only that repository");
    ok(facts_are("alice", "other/x", 0, 0), "and only bob");
    ok(accounts_grant(m, "other/*", "carol", ACTION_PUSH) == 0, "grant other/* push to carol");
    ok(facts_are("carol", "other/x", 0, ACTION_PUSH) && facts_are("carol", "other/y/z", 0, ACTION_PUSH),
       "ns/* covers ns/...");
    ok(facts_are("carol", "otherx/a", 0, 0), "not otherx/...");
    ok(facts_are("carol", "other", 0, 0), "nor ns itself");
    ok(accounts_grant(m, "*", "ci", ACTION_PULL) == 0, "grant * pull to robot ci");
    ok(facts_are("ci", "pub/lib", 0, ACTION_PULL) && facts_are("ci", "alice/app", 0, ACTION_PULL),
       "* covers everything");
    f = facts("ci", "no/such");
    ok(f.exists == 0 && f.granted == ACTION_PULL, "missing repositories too");
    ok(accounts_grant(m, "pub/*", "acme/writers", ACTION_DELETE) == 0, "grant pub/* delete to team acme/writers");
    ok(facts_are("dave", "pub/lib", 0, ACTION_DELETE), "a team grant reaches its members");
    ok(facts_are("ci", "pub/lib", 0, ACTION_PULL | ACTION_DELETE), "grants add up (direct and team)");
    ok(facts_are("carol", "pub/lib", 0, 0), "not other teams' members");
    ok(accounts_grant(m, "other/x", "bob", ACTION_PUSH) == 0, "another grant to bob on other/x replaces the first");
    ok(facts_are("bob", "other/x", 0, ACTION_PUSH), "push now, not pull");
    ok(count("SELECT count(*) FROM repo_grant WHERE pattern = 'other/x'") == 1, "one row");
    ok(accounts_grant(m, "a_b/*", "erin", ACTION_PULL) == 0, "grant a_b/* to erin");
    ok(facts_are("erin", "a_b/c", 0, ACTION_PULL) && facts_are("erin", "axb/c", 0, 0), "'_' is not a wildcard");
    ok(accounts_grant(m, "*", "acme", ACTION_PULL) == BERTH_ENOTFOUND, "an organisation is no grantee");
    ok(accounts_grant(m, "*", "nobody", ACTION_PULL) == BERTH_ENOTFOUND, "a missing user: ENOTFOUND");
    ok(accounts_grant(m, "*", "acme/nope", ACTION_PULL) == BERTH_ENOTFOUND, "a missing team: ENOTFOUND");
    ok(accounts_grant(m, "bad//x", "bob", ACTION_PULL) == BERTH_ERROR, "an invalid pattern is refused");
    ok(accounts_grant_revoke(m, "other/y/z", "bob") == BERTH_ENOTFOUND, "revoking a missing grant: ENOTFOUND");

    f = facts(NULL, "alice/app");
    ok(f.exists == 1 && f.ns_actions == 0 && f.granted == 0, "anonymous: no namespace, no grants");
    f = facts(NULL, "no/such");
    ok(f.exists == 0 && f.is_public == 0 && f.ns_actions == 0 && f.granted == 0, "anonymous, missing repository");

    ok(accounts_repo_set_public(m, "pub/lib", 1) == 0, "make pub/lib public");
    f = facts(NULL, "pub/lib");
    ok(f.exists && f.is_public, "it is public");
    ok(accounts_repo_set_public(m, "new/repo", 1) == 0 && facts(NULL, "new/repo").is_public,
       "a new repository record, public");
    ok(accounts_repo_set_public(m, "Bad/Repo", 1) == BERTH_ERROR, "an invalid repository name is refused");
}

static void test_scopes(void)
{
    ok(accounts_scope_valid("repository:acme/*:pull"), "scope acme/* pull");
    ok(accounts_scope_valid("repository:*:pull,push  repository:alice/app:*  registry:catalog:*"), "several entries");
    ok(!accounts_scope_valid(""), "empty scope");
    ok(!accounts_scope_valid("   "), "blank scope");
    ok(!accounts_scope_valid("repository:acme/*"), "no actions");
    ok(!accounts_scope_valid("repository:acme/*:"), "empty actions");
    ok(!accounts_scope_valid("repository:acme/*:fly"), "unknown action");
    ok(!accounts_scope_valid("repository:acme/*:pull,fly"), "one unknown action");
    ok(!accounts_scope_valid("repo:acme:pull"), "unknown type");
    ok(!accounts_scope_valid("registry:other:*"), "registry but not catalog");
    ok(!accounts_scope_valid("repository:*/x:pull") && !accounts_scope_valid("repository:acme/**:pull"),
       "bad patterns");
    ok(!accounts_scope_valid("repository:host:5000/a:pull"), "a host:port is no pattern");
    char big[600];
    memset(big, 'a', sizeof(big));
    memcpy(big, "repository:", 11);
    memcpy(big + sizeof(big) - 6, ":pull", 6);
    ok(!accounts_scope_valid(big), "a scope that would not fit access_token_t");

    access_token_t t = {0};
    snprintf(t.scope, sizeof(t.scope),
             "repository:acme/*:pull,push repository:alice/app:* registry:catalog:* "
             "repository:Bad/x:pull bogus repository:acme/app:delete");
    ok(accounts_token_scope_actions(&t, SCOPE_REPOSITORY, "acme/app") == ACTION_ALL, "ns/* and exact entries add up");
    ok(accounts_token_scope_actions(&t, SCOPE_REPOSITORY, "acme/x/y") == (ACTION_PULL | ACTION_PUSH),
       "ns/* covers depth");
    ok(accounts_token_scope_actions(&t, SCOPE_REPOSITORY, "acme") == 0, "not ns itself");
    ok(accounts_token_scope_actions(&t, SCOPE_REPOSITORY, "acmex/a") == 0, "not a longer ns");
    ok(accounts_token_scope_actions(&t, SCOPE_REPOSITORY, "alice/app") == ACTION_ALL, "* actions");
    ok(accounts_token_scope_actions(&t, SCOPE_REPOSITORY, "alice/other") == 0, "exact means exact");
    ok(accounts_token_scope_actions(&t, SCOPE_REGISTRY, "catalog") == ACTION_ALL, "registry:catalog:*");
    ok(accounts_token_scope_actions(&t, SCOPE_REGISTRY, NULL) == ACTION_ALL, "registry with NULL name");
    ok(accounts_token_scope_actions(&t, SCOPE_REPOSITORY, "catalog") == 0, "the catalog entry is no repository");
    ok(accounts_token_scope_actions(&t, SCOPE_REPOSITORY, NULL) == 0, "repository NULL: nothing");
    snprintf(t.scope, sizeof(t.scope), "repository:*:pull");
    ok(accounts_token_scope_actions(&t, SCOPE_REPOSITORY, "x/y/z") == ACTION_PULL, "* covers everything");
    ok(accounts_token_scope_actions(&t, SCOPE_REGISTRY, "catalog") == 0, "but not the catalog");
    snprintf(t.scope, sizeof(t.scope), "repository:acme/app:pull,bogus,push");
    ok(accounts_token_scope_actions(&t, SCOPE_REPOSITORY, "acme/app") == (ACTION_PULL | ACTION_PUSH),
       "unknown actions ignored");
}

static int list_n;
static void token_cb(void *ctx, const access_token_t *t, const char *owner)
{
    ++list_n;
    if (ctx)
        snprintf(ctx, 256, "%s:%s", owner, t->name);
}

static void test_tokens(void)
{
    char *secret = NULL, *s2 = NULL, *s3 = NULL, *s4 = NULL;
    access_token_t t;
    int64_t now = (int64_t)time(NULL);

    ok(accounts_token_create(m, "alice", "laptop", "repository:acme/*:pull registry:catalog:*", 0, &secret) == 0,
       "create a token for alice");
    ok(secret && strncmp(secret, "berth_", 6) == 0, "presented form berth_<id>_<secret>");
    char *us = secret ? strchr(secret + 6, '_') : NULL;
    ok(us && strlen(us + 1) == 43, "the secret part is 32 bytes base64url (43 characters)");
    ok(count("SELECT count(*) FROM access_token WHERE length(secret_sha256) = 64") == 1, "its SHA-256 is stored (hex)");
    if (us) {
        char q[256];
        snprintf(q, sizeof(q),
                 "SELECT count(*) FROM access_token WHERE secret_sha256 LIKE '%%%s%%' OR scope LIKE '%%%s%%'", us + 1,
                 us + 1);
        ok(count(q) == 0, "not the secret itself");
    }
    ok(accounts_token_check(m, secret, now, &t) == 0, "the right secret checks");
    ok(t.account_id == id_of("alice") && strcmp(t.name, "laptop") == 0 && t.expires_at == 0 && !t.revoked &&
           strstr(t.scope, "acme/*") != NULL && t.created_at > 0,
       "with the token's fields");
    ok(accounts_token_scope_actions(&t, SCOPE_REPOSITORY, "acme/app") == ACTION_PULL, "its scope");
    int64_t tid = t.id;

    char *wrong = strdup(secret);
    wrong[strlen(wrong) - 1] = wrong[strlen(wrong) - 1] == 'A' ? 'B' : 'A';
    ok(accounts_token_check(m, wrong, now, &t) == BERTH_ENOTFOUND, "a wrong secret does not");
    snprintf(wrong, strlen(secret) + 1, "berth_%lld%s", (long long)tid + 1, us);
    ok(accounts_token_check(m, wrong, now, &t) == BERTH_ENOTFOUND, "the secret with another id does not");
    free(wrong);
    const char *malformed[] = {"",
                               "berth_",
                               "berth_1",
                               "berth_1_",
                               "berth_x_y",
                               "berth_01_abc",
                               "berth_-1_abc",
                               "berth_99999999999999999999_abc",
                               "ghp_abc",
                               "Berth_1_abc",
                               NULL};
    int all = 1;
    for (int i = 0; malformed[i]; ++i)
        all &= accounts_token_check(m, malformed[i], now, &t) == BERTH_ENOTFOUND;
    ok(all, "malformed presented tokens: ENOTFOUND");
    ok(accounts_token_check(m, NULL, now, &t) == BERTH_ENOTFOUND, "NULL: ENOTFOUND");
    ok(accounts_token_usable(m, tid, now), "usable");

    ok(accounts_token_create(m, "ci", "deploy", "repository:*:pull", now + 10, &s2) == 0,
       "a robot token expiring in 10 s");
    ok(accounts_token_check(m, s2, now + 9, &t) == 0 && accounts_token_usable(m, t.id, now + 9), "valid before expiry");
    int64_t t2 = t.id;
    ok(accounts_token_check(m, s2, now + 10, &t) == BERTH_ENOTFOUND, "expired at expires_at");
    ok(!accounts_token_usable(m, t2, now + 10), "not usable then either");

    ok(accounts_token_create(m, "acme", "x", "repository:*:pull", 0, &s3) == BERTH_ENOTFOUND && s3 == NULL,
       "an organisation has no tokens");
    ok(accounts_token_create(m, "nobody", "x", "repository:*:pull", 0, &s3) == BERTH_ENOTFOUND, "a missing owner");
    ok(accounts_token_create(m, "alice", "x", "repository:acme/*:fly", 0, &s3) == BERTH_ERROR && s3 == NULL,
       "an invalid scope is refused");
    ok(accounts_token_create(m, "alice", "", "repository:*:pull", 0, &s3) == BERTH_ERROR, "an empty name is refused");
    ok(accounts_token_create(m, "alice", "x", "repository:*:pull", -1, &s3) == BERTH_ERROR,
       "a negative expiry is refused");

    int64_t g = accounts_generation(m);
    ok(accounts_token_revoke(m, tid) == 0, "revoke alice's token");
    ok(accounts_generation(m) > g, "revoking bumps the generation");
    ok(accounts_token_check(m, secret, now, &t) == BERTH_ENOTFOUND && !accounts_token_usable(m, tid, now),
       "revoked: refused");
    ok(accounts_token_revoke(m, 99999) == BERTH_ENOTFOUND, "revoking a missing token: ENOTFOUND");

    ok(accounts_token_create(m, "bob", "b", "repository:other/*:pull", 0, &s3) == 0, "a token for bob");
    ok(accounts_token_check(m, s3, now, &t) == 0, "it checks");
    int64_t t3 = t.id;
    ok(accounts_user_set_disabled(m, "bob", 1) == 0, "disable bob");
    ok(accounts_token_check(m, s3, now, &t) == BERTH_ENOTFOUND && !accounts_token_usable(m, t3, now),
       "his token is refused");
    ok(accounts_user_set_disabled(m, "bob", 0) == 0, "enable bob");
    ok(accounts_token_check(m, s3, now, &t) == 0 && accounts_token_usable(m, t3, now), "his token works again");

    char last[256] = "";
    list_n = 0;
    ok(accounts_token_list(m, NULL, token_cb, last) == 3 && list_n == 3, "list all: 3 tokens");
    ok(strcmp(last, "bob:b") == 0, "ordered by id, with the owner's name");
    list_n = 0;
    ok(accounts_token_list(m, "ci", token_cb, NULL) == 1 && list_n == 1, "list ci's: 1");
    ok(accounts_token_list(m, "root", token_cb, NULL) == 0, "root has none");
    ok(accounts_token_list(m, "nobody", token_cb, NULL) == BERTH_ENOTFOUND, "a missing owner: ENOTFOUND");

    ok(accounts_token_create(m, "frank", "f", "repository:*:pull", 0, &s4) == 0, "a token for frank");
    ok(accounts_user_delete(m, "frank") == 0, "delete frank");
    ok(accounts_token_check(m, s4, now, &t) == BERTH_ENOTFOUND, "his token is gone");
    ok(count("SELECT count(*) FROM team_member tm JOIN account a ON a.id = tm.account_id WHERE a.name = 'frank'") ==
               0 &&
           count("SELECT count(*) FROM access_token WHERE name = 'f'") == 0,
       "with his memberships and tokens");
    ok(accounts_user_delete(m, "frank") == BERTH_ENOTFOUND, "deleting again: ENOTFOUND");
    ok(accounts_user_delete(m, "acme") == BERTH_ENOTFOUND, "an organisation is not deleted as a user");

    free(secret);
    free(s2);
    free(s3);
    free(s4);
}

struct refresh_seen_ctx {
    refresh_token_t *seen;
    size_t *n;
};

static void refresh_seen(void *ctx, const refresh_token_t *t, const char *owner)
{
    struct refresh_seen_ctx *c = ctx;
    if (*c->n < 4 && strcmp(owner, "alice") == 0)
        c->seen[(*c->n)++] = *t;
}

static void test_refresh(void)
{
    int64_t now = (int64_t)time(NULL), id = 0, alice = id_of("alice");
    ok(accounts_refresh_add(m, alice, "refresh-secret-1", "docker", now + 100) == 0, "store a refresh token");
    ok(count("SELECT count(*) FROM refresh_token WHERE secret_sha256 = 'refresh-secret-1'") == 0, "as its hash");
    ok(accounts_refresh_check(m, "refresh-secret-1", now, &id, NULL) == 0 && id == alice, "it checks, for alice");
    ok(accounts_refresh_check(m, "refresh-secret-2", now, &id, NULL) == BERTH_ENOTFOUND, "another secret does not");
    ok(accounts_refresh_check(m, "", now, &id, NULL) == BERTH_ENOTFOUND &&
           accounts_refresh_check(m, NULL, now, &id, NULL) == BERTH_ENOTFOUND,
       "nor empty or NULL");
    ok(accounts_refresh_check(m, "refresh-secret-1", now + 100, &id, NULL) == BERTH_ENOTFOUND, "expired at expires_at");
    accounts_user_set_disabled(m, "alice", 1);
    ok(accounts_refresh_check(m, "refresh-secret-1", now, &id, NULL) == BERTH_ENOTFOUND,
       "refused while alice is disabled");
    accounts_user_set_disabled(m, "alice", 0);
    ok(accounts_refresh_check(m, "refresh-secret-1", now, &id, NULL) == 0, "accepted once enabled");
    int64_t rid = 0;
    ok(accounts_refresh_check(m, "refresh-secret-1", now, &id, &rid) == 0 && rid > 0, "... with its id");
    ok(accounts_refresh_usable(m, rid, now) && !accounts_refresh_usable(m, rid, now + 100) &&
           !accounts_refresh_usable(m, rid + 1000, now),
       "usable by id while unexpired; an unknown id is not");
    ok(accounts_refresh_used(m, rid, now - 5) == 0 &&
           count("SELECT count(*) FROM refresh_token WHERE last_used_at = strftime('%s','now') - 5 OR "
                 "last_used_at BETWEEN strftime('%s','now') - 7 AND strftime('%s','now') - 3") == 1,
       "its use is recorded");
    ok(accounts_refresh_add(m, alice, "refresh-other", NULL, now + 100) == 0, "store a second one");
    refresh_token_t seen[4];
    size_t nseen = 0;
    ok(accounts_refresh_list(m, "alice", refresh_seen, &(struct refresh_seen_ctx){seen, &nseen}) == 2 && nseen == 2 &&
           seen[0].id == rid && strcmp(seen[0].client, "docker") == 0 && seen[0].created_at >= now - 1 &&
           seen[0].expires_at == now + 100 && seen[1].client[0] == '\0' && seen[1].last_used_at == 0,
       "listed for alice: id, client, created, last used, expiry");
    ok(accounts_refresh_list(m, "nobody", refresh_seen, &(struct refresh_seen_ctx){seen, &nseen}) == BERTH_ENOTFOUND,
       "listing a missing account: BERTH_ENOTFOUND");
    int64_t g0 = accounts_generation(m);
    ok(accounts_refresh_revoke(m, seen[1].id) == 0 && accounts_generation(m) > g0, "revoke one: the generation moves");
    ok(accounts_refresh_check(m, "refresh-other", now, &id, NULL) == BERTH_ENOTFOUND &&
           !accounts_refresh_usable(m, seen[1].id, now) && accounts_refresh_usable(m, rid, now),
       "it no longer checks, the other still does");
    ok(accounts_refresh_revoke(m, seen[1].id) == BERTH_ENOTFOUND, "revoking it again: BERTH_ENOTFOUND");
    ok(accounts_refresh_add(m, alice, "refresh-old", NULL, now - 1) == 0, "store an already expired one");
    ok(accounts_refresh_add(m, alice, "refresh-secret-3", NULL, now + 100) == 0, "store another");
    ok(count("SELECT count(*) FROM refresh_token") == 2, "adding removed the expired one");
    char *h = password_hash("alice-new");
    ok(accounts_user_set_password(m, "alice", h) == 0, "change alice's password");
    free(h);
    ok(accounts_refresh_check(m, "refresh-secret-1", now, &id, NULL) == BERTH_ENOTFOUND &&
           count("SELECT count(*) FROM refresh_token") == 0,
       "her refresh tokens are gone");
}

/* One right-removing (or not) write: did the global and alice's generations move? */
static void gen_case(const char *desc, int rc, int64_t g0, int64_t a0, int global, int account)
{
    int64_t g1 = accounts_generation(m), a1 = account_gen("alice");
    ok(rc == 0 && (g1 > g0) == global && (a1 > a0) == account, "%s: %s", desc,
       global ? (account ? "bumps both generations" : "bumps the generation") : "bumps nothing");
}

static void test_generations(void)
{
    char *h = password_hash("x"), *tok = NULL;
    int64_t g, a;
    access_token_t t;

#define GEN(desc, expr, global, account)                                                                               \
    do {                                                                                                               \
        g = accounts_generation(m);                                                                                    \
        a = account_gen("alice");                                                                                      \
        gen_case(desc, (expr), g, a, global, account);                                                                 \
    } while (0)

    ok(accounts_generation(m) >= 1, "the generation starts at 1 or more");
    GEN("disable", accounts_user_set_disabled(m, "alice", 1), 1, 1);
    GEN("enable", accounts_user_set_disabled(m, "alice", 0), 0, 0);
    GEN("password change", accounts_user_set_password(m, "alice", h), 1, 1);
    GEN("administrator rights removed", accounts_user_set_admin(m, "alice", 0), 1, 1);
    GEN("administrator rights given", accounts_user_set_admin(m, "alice", 1), 0, 0);
    GEN("user add", accounts_user_add(m, "gina", NULL, 0), 0, 0);
    GEN("team member add", accounts_team_member(m, "acme", "readers", "gina", 1), 0, 0);
    GEN("team member removal", accounts_team_member(m, "acme", "readers", "gina", 0), 1, 0);
    GEN("grant", accounts_grant(m, "gina/*", "alice", ACTION_PULL | ACTION_PUSH), 0, 0);
    GEN("grant widened", accounts_grant(m, "gina/*", "alice", ACTION_ALL), 0, 0);
    GEN("grant narrowed", accounts_grant(m, "gina/*", "alice", ACTION_PULL), 1, 0);
    GEN("grant revoke", accounts_grant_revoke(m, "gina/*", "alice"), 1, 0);
    accounts_grant(m, "gina/x", "alice", ACTION_PULL);
    GEN("grant with actions 0 (a revoke)", accounts_grant(m, "gina/x", "alice", 0), 1, 0);
    ok(count("SELECT count(*) FROM repo_grant WHERE pattern = 'gina/x'") == 0, "which removed it");
    GEN("visibility public", accounts_repo_set_public(m, "gina/app", 1), 0, 0);
    GEN("visibility private", accounts_repo_set_public(m, "gina/app", 0), 1, 0);
    accounts_token_create(m, "gina", "t", "repository:gina/*:pull", 0, &tok);
    accounts_token_check(m, tok, time(NULL), &t);
    GEN("token create", 0, 0, 0);
    GEN("token revoke", accounts_token_revoke(m, t.id), 1, 0);
    GEN("user delete", accounts_user_delete(m, "gina"), 1, 0);
    GEN("a failed write", accounts_user_set_disabled(m, "nobody", 1) == BERTH_ENOTFOUND ? 0 : -1, 0, 0);
#undef GEN
    free(h);
    free(tok);
}

/* Inside a caller's transaction (the CLI's BEGIN IMMEDIATE): a failed write undoes only itself. */
static void test_transactions(void)
{
    sqlite3 *db = db_handle(m);
    ok(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK, "BEGIN IMMEDIATE");
    ok(accounts_user_add(m, "hank", NULL, 0) == 0, "add hank inside it");
    ok(accounts_user_add(m, "hank", NULL, 0) == BERTH_EEXISTS, "a failing write inside it");
    ok(!sqlite3_get_autocommit(db), "the transaction is still open");
    ok(accounts_grant(m, "hank/*", "acme/nope", ACTION_PULL) == BERTH_ENOTFOUND, "another failing write");
    ok(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK, "ROLLBACK");
    ok(id_of("hank") == -1, "hank is gone with it");
    ok(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK &&
           accounts_user_add(m, "hank", NULL, 0) == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK &&
           id_of("hank") > 0,
       "committed, it stays");
}

static int writer_add(metastore_t *wm, void *arg)
{
    return accounts_user_add(wm, arg, NULL, 0);
}

static void test_writer(const char *path)
{
    metastore_writer_t *w = metastore_writer_start(path);
    ok(w != NULL, "start the writer thread");
    ok(metastore_write(w, writer_add, "ivan") == 0, "a write through the writer (its savepoint nests)");
    ok(metastore_write(w, writer_add, "ivan") == BERTH_EEXISTS, "a failing one through the writer");
    metastore_writer_stop(w);
    ok(id_of("ivan") > 0, "the first is visible on another connection");
}

static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    while (readdir(d) != NULL)
        ++n;
    closedir(d);
    return n;
}

/* The request path's statements stay prepared on the connection: they must see other connections' writes, work when
 * one is already in use, and not keep metastore_close() from closing the connection. */
static void test_statement_cache(const char *path)
{
    account_t a;
    accounts_repo_facts_t f;
    int fds = open_fds();
    metastore_t *m2 = metastore_open(path, 0);
    int64_t g = accounts_generation(m2);
    ok(g > 0 && accounts_get(m2, "alice", &a) == 0 && accounts_repo_facts(m2, a.id, "alice/app", &f) == 0,
       "hot reads on a second connection");
    account_dispose(&a);
    sqlite3_stmt *kept = NULL;
    for (sqlite3_stmt *st = sqlite3_next_stmt(db_handle(m2), NULL); st; st = sqlite3_next_stmt(db_handle(m2), st))
        if (strstr(sqlite3_sql(st), "auth_generation") != NULL)
            kept = st;
    ok(kept != NULL && !sqlite3_stmt_busy(kept), "the generation statement is kept on the connection, reset");
    accounts_user_set_disabled(m, "alice", 1);
    accounts_user_set_disabled(m, "alice", 0);
    ok(accounts_generation(m2) > g, "a write on another connection is seen at once (no read transaction left open)");
    ok(kept && sqlite3_step(kept) == SQLITE_ROW && sqlite3_stmt_busy(kept), "hold the kept statement mid-way");
    ok(accounts_generation(m2) == accounts_generation(m), "the same read still works (with a one-off statement)");
    sqlite3_reset(kept);
    int n = 0;
    for (sqlite3_stmt *st = sqlite3_next_stmt(db_handle(m2), NULL); st; st = sqlite3_next_stmt(db_handle(m2), st))
        n += strstr(sqlite3_sql(st), "auth_generation") != NULL;
    ok(n == 1, "and the one-off was finalized");
    metastore_close(m2);
    ok(fds > 0 && open_fds() == fds, "metastore_close closes a connection with kept statements (%d fds)", fds);
}

static void test_ensure_admin(void)
{
    char path[300], *gen = (char *)"x";
    account_t a;
    snprintf(path, sizeof(path), "%s/admin1.db", root);
    metastore_t *m1 = metastore_open(path, 1);
    ok(admin_ensure(m1, NULL, NULL) == 0 && accounts_get(m1, "admin", &a) == BERTH_ENOTFOUND,
       "no password and nowhere to show one: no admin");
    ok(admin_ensure(m1, "", NULL) == 0 && accounts_get(m1, "admin", &a) == BERTH_ENOTFOUND,
       "an empty password is none");
    ok(admin_ensure(m1, NULL, &gen) == 1, "a generated password: created");
    ok(gen != NULL && strlen(gen) == 24, "the password is 18 random bytes (24 characters)");
    ok(accounts_get(m1, "admin", &a) == 0 && a.kind == ACCOUNT_USER && a.admin && password_verify(gen, a.password_hash),
       "admin is a user, an administrator, and the generated password verifies");
    char *first = a.password_hash ? strdup(a.password_hash) : NULL;
    account_dispose(&a);
    char *gen2 = (char *)"x";
    ok(admin_ensure(m1, "other", &gen2) == 0 && gen2 == NULL, "a second call: it existed, no password");
    ok(admin_ensure(m1, NULL, &gen2) == 0 && gen2 == NULL, "also without a password");
    ok(accounts_get(m1, "admin", &a) == 0 && first && strcmp(a.password_hash, first) == 0 &&
           password_verify(gen, a.password_hash),
       "never overwritten");
    account_dispose(&a);
    free(first);
    free(gen);
    metastore_close(m1);

    snprintf(path, sizeof(path), "%s/admin2.db", root);
    m1 = metastore_open(path, 1);
    gen = (char *)"x";
    ok(admin_ensure(m1, "s3cret", &gen) == 1 && gen == NULL, "a configured password: created, nothing generated");
    ok(accounts_get(m1, "admin", &a) == 0 && a.admin && password_verify("s3cret", a.password_hash), "it verifies");
    account_dispose(&a);
    ok(admin_ensure(m1, "changed", NULL) == 0, "again with another password: 0");
    ok(accounts_get(m1, "admin", &a) == 0 && password_verify("s3cret", a.password_hash), "the first password stays");
    account_dispose(&a);
    metastore_close(m1);

    snprintf(path, sizeof(path), "%s/admin3.db", root);
    m1 = metastore_open(path, 1);
    accounts_org_add(m1, "admin");
    ok(admin_ensure(m1, "pw", NULL) == 0, "an organisation named admin: it exists, nothing created");
    metastore_close(m1);
}

int main(void)
{
    char path[300];
    if (tap_tmpdir(root, sizeof(root), "berth-accounts") != 0)
        return 1;
    snprintf(path, sizeof(path), "%s/berth.db", root);
    m = metastore_open(path, 1);
    ok(m != NULL, "open and migrate a database");
    ok(accounts_generation(m) == 1, "the generation starts at 1");

    test_names();
    test_accounts();
    test_list();
    test_teams();
    test_facts();
    test_scopes();
    test_tokens();
    test_refresh();
    test_generations();
    test_transactions();
    test_writer(path);
    test_statement_cache(path);
    test_ensure_admin();

    metastore_close(m);
    tap_rmtree(root);
    return tap_done();
}
