/*
 * The access decision (src/auth/decide.c) against a temporary database: principals (anonymous, accounts, an
 * administrator, an access token, Bearer tokens) × repository facts from the store (ownership, teams, grants,
 * visibility, a mirror's repositories) × modes. The pure policy's table is tests/unit/access_test.c; this checks
 * that the facts are gathered for the right account and that tokens bound what the policy gives.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "auth/decide.h"
#include "auth/password.h"
#include "auth/principal.h"
#include "config/config.h"
#include "store/accounts.h"
#include "store/metastore.h"
#include "tap.h"

static char root[256];
static metastore_t *m;
static auth_principal_t anon, alice, bob, admin, alice_tok, bearer_alice, bearer_anon;
static int mirror_calls;

static auth_principal_t account(const char *name)
{
    auth_principal_t p;
    account_t a = {0};
    memset(&p, 0, sizeof(p));
    if (accounts_get(m, name, &a) == 0) {
        p.authenticated = 1;
        p.account_id = a.id;
        p.generation = a.generation;
        p.admin = a.admin;
        snprintf(p.name, sizeof(p.name), "%s", a.name);
    }
    account_dispose(&a);
    return p;
}

static void grant(auth_principal_t *p, scope_type_t type, const char *name, unsigned actions)
{
    scope_t *s = &p->claims.access[p->claims.naccess++];
    s->type = type;
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->actions = actions;
}

static int hub_mirror(const char *repo)
{
    ++mirror_calls;
    return strncmp(repo, "hub/", 4) == 0;
}

static void setup(void)
{
    char *h = password_hash("pw");
    accounts_user_add(m, "alice", h, 0);
    accounts_user_add(m, "bob", h, 0);
    accounts_user_add(m, "admin", h, 1);
    free(h);
    accounts_org_add(m, "acme");
    accounts_team_add(m, "acme", "devs", ACTION_PULL | ACTION_PUSH);
    accounts_team_member(m, "acme", "devs", "bob", 1);
    const char *private_repos[] = {"alice/app", "acme/site", "shared/x", "bob/secret"};
    for (size_t i = 0; i < sizeof(private_repos) / sizeof(*private_repos); ++i)
        accounts_repo_set_public(m, private_repos[i], 0);
    accounts_repo_set_public(m, "alice/pub", 1);
    accounts_grant(m, "shared/x", "bob", ACTION_PULL);
    anon = (auth_principal_t){0};
    alice = account("alice");
    bob = account("bob");
    admin = account("admin");
    alice_tok = alice;
    alice_tok.via_token = 1;
    snprintf(alice_tok.token.scope, sizeof(alice_tok.token.scope), "repository:alice/app:pull");
    bearer_alice = alice;
    bearer_alice.bearer = 1;
    grant(&bearer_alice, SCOPE_REPOSITORY, "alice/pub", ACTION_PULL);
    bearer_anon = anon;
    bearer_anon.bearer = 1;
    grant(&bearer_anon, SCOPE_REPOSITORY, "alice/pub", ACTION_PULL);
    grant(&bearer_anon, SCOPE_REGISTRY, "catalog", ACTION_ALL);
}

static void set_mode(access_mode_t mode, int default_pull, int (*mirror)(const char *))
{
    access_policy_t p = {mode, default_pull};
    auth_decide_init(&p, mirror);
}

/* auth_policy_actions of `who` on `repo` is `want` */
static int policy_is(const char *label, const auth_principal_t *who, const char *repo, unsigned want)
{
    unsigned got = auth_policy_actions(m, who, repo);
    if (got != want)
        printf("# %s on %s: %u, expected %u\n", label, repo, got, want);
    return got == want;
}

static void test_public(void)
{
    set_mode(MODE_PUBLIC, 1, NULL);
    ok(auth_mode() == MODE_PUBLIC && auth_policy()->mode == MODE_PUBLIC, "public: the mode is kept");
    ok(policy_is("anonymous", &anon, "alice/pub", ACTION_PULL), "public: anonymous pulls a public repository");
    ok(policy_is("anonymous", &anon, "alice/app", 0), "public: not a private one");
    ok(policy_is("anonymous", &anon, "nope/none", 0), "public: nor one that does not exist");
    ok(policy_is("alice", &alice, "alice/app", ACTION_ALL), "public: alice owns her namespace");
    ok(policy_is("alice", &alice, "alice/new", ACTION_ALL), "public: also repositories not made yet");
    ok(policy_is("alice", &alice, "acme/site", 0), "public: not an organisation's she is not in");
    ok(policy_is("bob", &bob, "acme/site", ACTION_PULL | ACTION_PUSH), "public: bob, through his team");
    ok(policy_is("bob", &bob, "shared/x", ACTION_PULL), "public: bob, through a grant");
    ok(policy_is("alice", &alice, "shared/x", 0), "public: a grant is bob's only");
    ok(policy_is("alice", &alice, "bob/secret", 0), "public: another's private repository");
    ok(policy_is("admin", &admin, "bob/secret", ACTION_ALL), "public: the administrator does everything");
    ok(policy_is("alice's token", &alice_tok, "alice/app", ACTION_PULL),
       "public: an access token bounds what alice may");
    ok(policy_is("alice's token", &alice_tok, "alice/pub", 0), "public: nothing outside its scope, even public");
    ok(auth_actions(m, &alice_tok, "alice/app") == ACTION_PULL, "public: auth_actions agrees for an access token");

    ok(policy_is("alice's bearer", &bearer_alice, "alice/app", ACTION_ALL),
       "public: the policy for a Bearer caller is her account's, whatever the token says");
    ok(auth_actions(m, &bearer_alice, "alice/app") == 0, "public: but a Bearer token acts only as it grants");
    ok(auth_actions(m, &bearer_alice, "alice/pub") == ACTION_PULL, "public: what it grants, it may");
    ok(auth_actions(m, &bearer_anon, "alice/pub") == ACTION_PULL, "public: an anonymous token's grant too");

    ok(auth_allows(m, &alice, "alice/app", ACTION_PULL | ACTION_PUSH, 0), "public: a push of alice's is allowed");
    ok(!auth_allows(m, &anon, "alice/pub", ACTION_PULL | ACTION_PUSH, 0), "public: anonymous may not push");
    ok(auth_allows(m, &anon, "alice/pub", ACTION_PULL, 0), "public: but pull");
    ok(!auth_allows(m, &bearer_alice, "alice/app", ACTION_PULL, 0),
       "public: a request beyond a Bearer grant is refused");
    ok(!auth_allows(m, &anon, NULL, 0, 0), "public: /v2/ wants credentials");
    ok(auth_allows(m, &alice, NULL, 0, 0) && auth_allows(m, &bearer_anon, NULL, 0, 0),
       "public: an account or any Bearer token opens /v2/");
    ok(auth_allows(m, &anon, NULL, 0, 1), "public: anonymous lists the catalog");
    ok(auth_policy_catalog(&anon) && auth_policy_catalog(&alice), "public: the policy lets everyone list");
    ok(!auth_policy_catalog(&alice_tok), "public: not an access token without the catalog scope");
    ok(!auth_allows(m, &bearer_alice, NULL, 0, 1), "public: nor a Bearer token without registry:catalog");
    ok(auth_allows(m, &bearer_anon, NULL, 0, 1), "public: a Bearer token with it lists");
    alice_tok.token.scope[0] = '\0';
    snprintf(alice_tok.token.scope, sizeof(alice_tok.token.scope), "repository:alice/app:pull registry:catalog:*");
    ok(auth_policy_catalog(&alice_tok), "public: an access token with registry:catalog:* lists");
    snprintf(alice_tok.token.scope, sizeof(alice_tok.token.scope), "repository:alice/app:pull");
}

static void test_private(void)
{
    set_mode(MODE_PRIVATE, 1, NULL);
    ok(policy_is("anonymous", &anon, "alice/pub", 0), "private: anonymous nothing, even public");
    ok(policy_is("alice", &alice, "acme/site", ACTION_PULL), "private: every account pulls everything");
    ok(policy_is("alice", &alice, "alice/app", ACTION_PULL), "private: a namespace owns nothing");
    ok(policy_is("bob", &bob, "shared/x", ACTION_PULL), "private: grants count");
    ok(policy_is("admin", &admin, "acme/site", ACTION_ALL), "private: the administrator does everything");
    ok(!auth_allows(m, &anon, NULL, 0, 1) && auth_allows(m, &alice, NULL, 0, 1),
       "private: the catalog is for accounts only");
    ok(!auth_allows(m, &bearer_anon, NULL, 0, 0), "private: an anonymous Bearer token opens nothing, not even /v2/");
    ok(auth_allows(m, &bearer_alice, NULL, 0, 0), "private: an account's Bearer token opens /v2/");
    set_mode(MODE_PRIVATE, 0, NULL);
    ok(policy_is("alice", &alice, "acme/site", 0), "private without default pull: alice nothing");
    ok(policy_is("bob", &bob, "shared/x", ACTION_PULL), "private without default pull: bob's grant stays");
    ok(policy_is("bob", &bob, "acme/site", 0), "private: a team's organisation is no namespace to own either");
}

static void test_cloud_and_open(void)
{
    set_mode(MODE_CLOUD, 1, NULL);
    ok(policy_is("anonymous", &anon, "alice/pub", ACTION_PULL), "cloud: anonymous pulls a public repository");
    ok(policy_is("alice", &alice, "alice/app", ACTION_ALL), "cloud: alice owns her namespace");
    ok(policy_is("bob", &bob, "alice/app", 0), "cloud: nothing of another's private repository");
    ok(policy_is("bob", &bob, "acme/site", ACTION_PULL | ACTION_PUSH), "cloud: a team's permission");

    set_mode(MODE_OPEN, 1, NULL);
    ok(auth_policy_actions(m, &anon, "bob/secret") == ACTION_ALL && auth_actions(m, &anon, "bob/secret") == ACTION_ALL,
       "open: everything for everyone");
    ok(auth_actions(m, &bearer_alice, "alice/app") == ACTION_ALL, "open: whatever a token says");
    ok(auth_allows(m, &anon, NULL, 0, 0) && auth_allows(m, &anon, NULL, 0, 1) && auth_policy_catalog(&anon),
       "open: /v2/ and the catalog for anonymous");
}

static void test_mirror(void)
{
    set_mode(MODE_PUBLIC, 1, NULL);
    ok(policy_is("anonymous", &anon, "hub/nginx", 0), "no mirror: a repository that does not exist gives nothing");
    set_mode(MODE_PUBLIC, 1, hub_mirror);
    mirror_calls = 0;
    ok(policy_is("anonymous", &anon, "hub/nginx", ACTION_PULL), "a mirror's repository before its first pull: public");
    ok(mirror_calls == 1, "the mirror was asked");
    ok(policy_is("anonymous", &anon, "other/nginx", 0), "a name no mirror serves: nothing");
    mirror_calls = 0;
    ok(policy_is("anonymous", &anon, "alice/app", 0) && mirror_calls == 0,
       "an existing repository: its own visibility, the mirror not asked");
    set_mode(MODE_PRIVATE, 1, hub_mirror);
    ok(policy_is("anonymous", &anon, "hub/nginx", 0),
       "private: a mirror's repository is still no one's to pull anonymously");
    ok(policy_is("alice", &alice, "hub/nginx", ACTION_PULL), "private: accounts pull it");
}

static void test_init(void)
{
    config_t cfg;
    char *err = NULL;
    const char *modes[] = {"private", "public", "cloud", "open"};
    if (config_load(&cfg, NULL, &err) != 0) {
        ok(0, "config_load: %s", err);
        free(err);
        return;
    }
    free(cfg.storage_root);
    cfg.storage_root = strdup(root);
    for (int i = 0; i < 4; ++i) {
        free(cfg.mode);
        cfg.mode = strdup(modes[i]);
        cfg.auth_private_default_pull = i % 2;
        int rc = auth_init(&cfg, NULL, &err);
        ok(rc == 0 && auth_mode() == (access_mode_t)i && auth_policy()->private_default_pull == i % 2 &&
               metastore_new_repos_public == (i == 1 || i == 3),
           "auth_init, mode %s: the policy and new repositories' visibility from the configuration", modes[i]);
        if (rc != 0)
            free(err);
        auth_dispose();
    }
    config_dispose(&cfg);
}

int main(void)
{
    char path[300];
    if (tap_tmpdir(root, sizeof(root), "berth-decide") != 0)
        return 1;
    snprintf(path, sizeof(path), "%s/berth.db", root);
    m = metastore_open(path, 1);
    ok(m != NULL, "a database");
    setup();
    test_public();
    test_private();
    test_cloud_and_open();
    test_mirror();
    test_init();
    metastore_close(m);
    tap_rmtree(root);
    return tap_done();
}
