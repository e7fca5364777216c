/*
 * Who is calling (src/auth/principal.c) against a temporary database, without a server: Basic logins with passwords
 * and access-token secrets, the rate limiter behind them, the per-loop caches and their invalidation by the auth
 * generation, and Bearer verification of tokens minted with auth/token.h (expired and forged ones refused).
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "auth/password.h"
#include "auth/principal.h"
#include "config/config.h"
#include "store/accounts.h"
#include "store/db.h"
#include "store/metastore.h"
#include "util/time.h"
#include "tap.h"

static char root[256];
static metastore_t *m;  /* the writer's connection (as the CLI's) */
static metastore_t *rd; /* a loop's read connection */
static auth_cache_t *cache;

static void add_user(const char *name, const char *password)
{
    char *h = password_hash(password);
    accounts_user_add(m, name, h, 0);
    free(h);
}

/* The client address auth_basic asks for: the one the test gives. */
static void fixed_addr(void *ctx, char *buf, size_t len)
{
    snprintf(buf, len, "%s", (const char *)ctx);
}

/* A write the auth generation does not see: what a stale cache entry would miss. */
static void sql(const char *stmt)
{
    char *err = NULL;
    if (sqlite3_exec(db_handle(m), stmt, NULL, NULL, &err) != SQLITE_OK) {
        printf("# %s: %s\n", stmt, err);
        sqlite3_free(err);
    }
}

static void bump_generation(void)
{
    accounts_user_set_disabled(m, "bystander", 1); /* disabling anyone moves the global generation */
    accounts_user_set_disabled(m, "bystander", 0);
}

/* A Basic password login carried through to the end, as http/gate.c does with a worker in between. */
static auth_status_t login(const char *user, const char *password, const char *client, int cached,
                           auth_principal_t *who)
{
    int64_t wait = -1;
    auth_check_t *check = NULL;
    auth_status_t st = auth_basic(cache, rd, user, password, fixed_addr, (void *)client, who, &wait, &check);
    if (st != AUTH_CHECK)
        return st;
    auth_check_run(check);
    return auth_check_finish(check, cached ? cache : NULL, who) ? AUTH_CHECK : AUTH_DENIED;
}

static void test_passwords(void)
{
    auth_principal_t who;
    int64_t wait = -1;
    auth_check_t *check = (auth_check_t *)&who;
    ok(auth_basic(cache, rd, NULL, NULL, fixed_addr, (void *)"10.0.0.1", &who, &wait, &check) == AUTH_OK &&
           !who.authenticated && who.account_id == 0 && !who.bearer && wait == -1 && check == (auth_check_t *)&who,
       "no user: anonymous, nothing else written");
    ok(login("alice", "wrong", "10.0.0.1", 1, &who) == AUTH_DENIED, "a wrong password: checked, refused");
    ok(login("alice", "alice-pw", "10.0.0.1", 0, &who) == AUTH_CHECK && who.authenticated &&
           strcmp(who.name, "alice") == 0 && !who.admin && !who.via_token && who.account_id > 0,
       "the right password: checked, alice");
    ok(login("alice", "alice-pw", "10.0.0.1", 1, &who) == AUTH_CHECK, "not cached when finished without a cache");
    ok(login("alice", "alice-pw", "10.0.0.1", 1, &who) == AUTH_OK && strcmp(who.name, "alice") == 0,
       "then a hit: no check, the same principal");
    ok(login("alice", "alice-pw", "10.9.9.9", 1, &who) == AUTH_OK, "the cache does not depend on the address");
    auth_cache_t *mine = cache, *other = auth_cache_new(); /* another event loop's */
    ok(auth_basic_known(other, rd, "alice", "alice-pw") && !auth_basic_known(other, rd, "alice", "alice-pw2"),
       "another loop knows the password this one verified (the connection watchdog asks its own loop)");
    cache = other;
    ok(login("alice", "alice-pw", "10.0.0.1", 1, &who) == AUTH_OK && strcmp(who.name, "alice") == 0,
       "... and logs her in without hashing it again");
    cache = mine;
    bump_generation();
    ok(!auth_basic_known(other, rd, "alice", "alice-pw") && !auth_basic_known(mine, rd, "alice", "alice-pw"),
       "the generation moved: no loop knows it any more");
    auth_cache_free(other);
    ok(login("alice", "alice-pw", "10.0.0.1", 1, &who) == AUTH_CHECK, "checked again, cached again");
    ok(login("alice", "alice-pw2", "10.0.0.1", 1, &who) == AUTH_DENIED, "another password is no hit");
    ok(login("nobody", "x", "10.0.0.1", 1, &who) == AUTH_DENIED && !who.authenticated,
       "an unknown user: checked, refused");
    accounts_org_add(m, "acme");
    ok(login("acme", "", "10.0.0.1", 1, &who) == AUTH_DENIED, "an organisation cannot log in");

    bump_generation();
    ok(login("alice", "alice-pw", "10.0.0.1", 1, &who) == AUTH_CHECK && who.authenticated,
       "the generation moved: the cache is dropped, the password checked again");
    ok(login("alice", "alice-pw", "10.0.0.1", 1, &who) == AUTH_OK, "and cached again");
    accounts_user_set_disabled(m, "alice", 1);
    ok(login("alice", "alice-pw", "10.0.0.1", 1, &who) == AUTH_DENIED && !who.authenticated,
       "alice disabled: refused at once, though her password was cached");
    accounts_user_set_disabled(m, "alice", 0);
    ok(login("alice", "alice-pw", "10.0.0.1", 1, &who) == AUTH_CHECK, "enabled again: she logs in");
}

/* one address trying many names (password spraying) backs off too, and a success there does not reset it */
static void test_spraying(void)
{
    auth_principal_t who;
    int64_t wait = 0;
    auth_check_t *check = NULL;
    char name[32];
    for (int i = 0; i < 6; ++i) {
        snprintf(name, sizeof(name), "spray%d", i);
        ok(login(name, "guess", "10.9.9.9", 0, &who) == AUTH_DENIED, "10.9.9.9 tries name %s: refused", name);
    }
    bump_generation();
    auth_status_t st = auth_basic(cache, rd, "alice", "alice-pw", fixed_addr, (void *)"10.9.9.9", &who, &wait, &check);
    ok(st == AUTH_LIMITED && wait > 50000 && wait <= 60000,
       "after 6 failures (the per-address budget) the address waits, whatever the name (%lld ms)", (long long)wait);
    ok(login("alice", "alice-pw", "10.9.9.8", 0, &who) == AUTH_CHECK, "another address is not limited");

    for (int i = 0; i < 5; ++i) {
        snprintf(name, sizeof(name), "other%d", i);
        ok(login(name, "guess", "10.9.9.7", 0, &who) == AUTH_DENIED, "10.9.9.7 tries name %s: refused", name);
    }
    ok(login("alice", "alice-pw", "10.9.9.7", 0, &who) == AUTH_CHECK, "a good login from it still works");
    ok(login("other9", "guess", "10.9.9.7", 0, &who) == AUTH_DENIED, "a sixth bad name");
    st = auth_basic(cache, rd, "alice", "alice-pw", fixed_addr, (void *)"10.9.9.7", &who, &wait, &check);
    ok(st == AUTH_LIMITED, "limited: the success between did not reset the address's count");
}

static void test_limits(void)
{
    auth_principal_t who;
    int64_t wait = 0;
    auth_check_t *check = NULL;
    add_user("carol", "carol-pw");
    ok(login("carol", "bad1", "10.0.0.7", 1, &who) == AUTH_DENIED, "carol fails once");
    ok(login("carol", "bad2", "10.0.0.7", 1, &who) == AUTH_DENIED, "carol fails twice (the limit)");
    auth_status_t st = auth_basic(cache, rd, "carol", "carol-pw", fixed_addr, (void *)"10.0.0.7", &who, &wait, &check);
    ok(st == AUTH_LIMITED && wait > 50000 && wait <= 60000, "then she must wait the backoff, even with her password");
    ok(login("carol", "carol-pw", "10.0.0.8", 1, &who) == AUTH_CHECK, "from another address she logs in");
    ok(login("dave", "x", "10.0.0.7", 1, &who) == AUTH_DENIED, "another name from the same address is not limited");
    ok(login("alice", "alice-pw", "10.0.0.7", 1, &who) == AUTH_OK, "a cached login is not limited either");

    add_user("erin", "erin-pw");
    ok(login("erin", "bad1", "10.0.0.7", 1, &who) == AUTH_DENIED, "erin fails once");
    ok(login("erin", "erin-pw", "10.0.0.7", 1, &who) == AUTH_CHECK, "then succeeds");
    ok(login("erin", "bad2", "10.0.0.7", 1, &who) == AUTH_DENIED, "and fails once more");
    bump_generation(); /* her password is cached: make it checked, and so rate-limited */
    ok(login("erin", "erin-pw", "10.0.0.7", 0, &who) == AUTH_CHECK, "not limited: the success reset her count");
}

static void test_access_tokens(void)
{
    auth_principal_t who;
    int64_t wait = 0;
    auth_check_t *check = NULL;
    char *secret = NULL;
    ok(accounts_token_create(m, "alice", "ci", "repository:alice/*:pull", 0, &secret) == 0 && secret != NULL,
       "alice makes an access token");
    ok(auth_basic(cache, rd, "alice", secret, fixed_addr, (void *)"10.0.0.3", &who, &wait, &check) == AUTH_OK &&
           who.authenticated && who.via_token && who.token.account_id == who.account_id &&
           strcmp(who.name, "alice") == 0,
       "her secret as the password: at once, limited by the token");
    int64_t tid = who.token.id;
    ok(auth_basic(cache, rd, "bob", secret, fixed_addr, (void *)"10.0.0.3", &who, &wait, &check) == AUTH_DENIED &&
           !who.authenticated,
       "under another name: refused");
    char wrong[256];
    snprintf(wrong, sizeof(wrong), "%.*sx", (int)strlen(secret) - 1, secret);
    for (int i = 0; i < 5; ++i)
        ok(auth_basic(cache, rd, "alice", wrong, fixed_addr, (void *)"10.0.0.3", &who, &wait, &check) == AUTH_DENIED,
           "a wrong secret: refused");
    bump_generation(); /* her password is cached: make it checked, and so rate-limited */
    ok(login("alice", "alice-pw", "10.0.0.3", 1, &who) == AUTH_CHECK, "wrong secrets are not failed logins");
    accounts_token_revoke(m, tid);
    ok(auth_basic(cache, rd, "alice", secret, fixed_addr, (void *)"10.0.0.3", &who, &wait, &check) == AUTH_DENIED,
       "revoked: refused at once");
    free(secret);
}

static char *mint(const token_keys_t *keys, const char *sub, int64_t generation, int64_t token_id, int64_t at,
                  int64_t ttl)
{
    token_claims_t c;
    memset(&c, 0, sizeof(c));
    snprintf(c.sub, sizeof(c.sub), "%s", sub);
    c.generation = generation;
    c.token_id = token_id;
    c.naccess = 1;
    c.access[0].type = SCOPE_REPOSITORY;
    snprintf(c.access[0].name, sizeof(c.access[0].name), "alice/app");
    c.access[0].actions = ACTION_PULL | ACTION_PUSH;
    return token_issue(keys, &c, at, ttl);
}

static int bearer(const char *jwt, auth_principal_t *who)
{
    return jwt == NULL ? -2 : auth_bearer(cache, rd, jwt, strlen(jwt), who);
}

static void test_bearer(void)
{
    auth_principal_t who;
    account_t a = {0};
    int64_t now = time_now_s();
    add_user("frank", "frank-pw");
    accounts_get(m, "frank", &a);
    int64_t gen = a.generation;
    account_dispose(&a);

    char *tok = mint(auth_keys(), "frank", gen, 0, now, 300);
    ok(bearer(tok, &who) == 0 && who.bearer && who.authenticated && strcmp(who.name, "frank") == 0 &&
           who.account_id > 0 && who.claims.naccess == 1 && strcmp(who.claims.access[0].name, "alice/app") == 0,
       "berth's token for frank verifies: his account, the token's grant");
    sql("UPDATE account SET disabled = 1 WHERE name = 'frank'");
    ok(bearer(tok, &who) == 0 && strcmp(who.name, "frank") == 0, "verified again from the cache (the store not asked)");
    bump_generation();
    ok(bearer(tok, &who) == -1, "the generation moved: checked again, frank is disabled");
    sql("UPDATE account SET disabled = 0 WHERE name = 'frank'");
    bump_generation();
    ok(bearer(tok, &who) == 0, "enabled again: it verifies");
    accounts_user_set_disabled(m, "frank", 1);
    ok(bearer(tok, &who) == -1, "frank disabled with the CLI: refused at once");
    accounts_user_set_disabled(m, "frank", 0);
    ok(bearer(tok, &who) == -1, "enabled again, but his generation moved: the old token stays refused");
    free(tok);

    char *stale = mint(auth_keys(), "frank", gen + 100, 0, now, 300);
    ok(bearer(stale, &who) == -1, "a token from another generation of the account: refused");
    free(stale);
    char *expired = mint(auth_keys(), "frank", gen, 0, now - 3600, 300);
    ok(bearer(expired, &who) == -1, "an expired token: refused");
    free(expired);
    char *ghost = mint(auth_keys(), "ghost", 1, 0, now, 300);
    ok(bearer(ghost, &who) == -1, "a token for an account that does not exist: refused");
    free(ghost);
    char *anon = mint(auth_keys(), "", 0, 0, now, 300);
    ok(bearer(anon, &who) == 0 && who.bearer && !who.authenticated && who.claims.naccess == 1,
       "an anonymous token: a bearer, not authenticated, with its grant");
    free(anon);

    token_keys_t other;
    char path[300], *err = NULL;
    snprintf(path, sizeof(path), "%s/other.pem", root);
    ok(token_keys_init(&other, path, "berth", "registry.test", &err) == 0, "another key with the same issuer");
    free(err);
    char *forged = mint(&other, "frank", gen, 0, now, 300);
    ok(bearer(forged, &who) == -1, "a token signed with another key: refused");
    free(forged);
    token_keys_dispose(&other);

    accounts_get(m, "frank", &a);
    gen = a.generation;
    account_dispose(&a);
    tok = mint(auth_keys(), "frank", gen, 0, now, 300);
    ok(bearer(tok, &who) == 0, "a fresh token for frank verifies");
    size_t n = strlen(tok);
    tok[n - 2] = tok[n - 2] == 'A' ? 'B' : 'A';
    ok(bearer(tok, &who) == -1, "the same with its signature altered: refused");
    tok[n - 2] = '\0';
    ok(bearer(tok, &who) == -1, "cut short: refused");
    free(tok);

    char *secret = NULL;
    accounts_token_create(m, "frank", "ci", "repository:alice/*:pull", now + 3600, &secret);
    auth_check_t *check = NULL;
    int64_t wait;
    ok(auth_basic(cache, rd, "frank", secret, fixed_addr, (void *)"10.0.0.4", &who, &wait, &check) == AUTH_OK &&
           who.via_token,
       "frank's access token");
    int64_t tid = who.token.id;
    tok = mint(auth_keys(), "frank", gen, tid, now, 300);
    ok(bearer(tok, &who) == 0 && who.via_token && who.token.id == tid && who.token.expires_at == now + 3600,
       "a token issued from it verifies, bound by the access token");
    accounts_token_revoke(m, tid);
    ok(bearer(tok, &who) == -1, "the access token revoked: refused at once");
    free(tok);
    free(secret);
}

int main(void)
{
    char path[300], *err = NULL;
    config_t cfg;
    if (tap_tmpdir(root, sizeof(root), "berth-principal") != 0 || config_load(&cfg, NULL, &err) != 0)
        return 1;
    free(cfg.storage_root);
    cfg.storage_root = strdup(root);
    free(cfg.auth_service);
    cfg.auth_service = strdup("registry.test");
    cfg.auth_login_failures = 2;
    cfg.auth_login_backoff_ms = 60000;
    cfg.auth_login_failures_per_address = 6;
    ok(auth_init(&cfg, NULL, &err) == 0, "auth_init creates the signing key under the storage root");
    free(err);
    snprintf(path, sizeof(path), "%s/berth.db", root);
    m = metastore_open(path, 1);
    rd = metastore_open(path, 0);
    cache = auth_cache_new();
    ok(m != NULL && rd != NULL && cache != NULL, "a database, a read connection, a cache");
    add_user("alice", "alice-pw");
    add_user("bystander", "b-pw");

    test_passwords();
    test_limits();
    test_spraying();
    test_access_tokens();
    test_bearer();

    auth_cache_free(cache);
    auth_dispose();
    snprintf(path, sizeof(path), "%s/keys/token.pem", root);
    ok(auth_init(&cfg, NULL, &err) == 0 && auth_keys()->own.private_pem != NULL,
       "set up again after dispose: the same key");
    auth_dispose();
    free(cfg.auth_external_keys);
    cfg.auth_external_keys = strdup("/nonexistent/keys.pem");
    ok(auth_init(&cfg, NULL, &err) == -1 && err != NULL, "an unreadable external key file fails auth_init");
    free(err);
    config_dispose(&cfg);
    metastore_close(rd);
    metastore_close(m);
    tap_rmtree(root);
    return tap_done();
}
