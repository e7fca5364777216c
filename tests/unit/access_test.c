/* The policy as a table: mode x principal x repository facts -> allowed actions. */
#include "auth/access.h"
#include "tap.h"

#define P ACTION_PULL
#define PU (ACTION_PULL | ACTION_PUSH)
#define ALL ACTION_ALL

static const struct row {
    access_mode_t mode;
    int authenticated, admin;
    unsigned scope_limit;
    int exists, is_public;
    unsigned ns_actions, granted;
    unsigned expect;
    const char *what;
} rows[] = {
    /* open: everything, for everyone */
    {MODE_OPEN, 0, 0, ALL, 0, 0, 0, 0, ALL, "open: anonymous may do everything"},
    {MODE_OPEN, 1, 0, P, 1, 0, 0, 0, ALL, "open: even a narrow token scope does not matter"},
    /* private */
    {MODE_PRIVATE, 0, 0, ALL, 1, 1, 0, 0, 0, "private: anonymous gets nothing, even of a public repository"},
    {MODE_PRIVATE, 1, 0, ALL, 1, 0, 0, 0, P, "private: an account pulls by default"},
    {MODE_PRIVATE, 1, 0, ALL, 0, 0, ALL, 0, P, "private: namespaces own nothing"},
    {MODE_PRIVATE, 1, 0, ALL, 0, 0, 0, PU, PU, "private: a grant gives push"},
    {MODE_PRIVATE, 1, 0, P, 0, 0, 0, PU, P, "private: a pull-only access token cannot push despite the grant"},
    {MODE_PRIVATE, 1, 1, ALL, 0, 0, 0, 0, ALL, "private: an administrator may do everything"},
    {MODE_PRIVATE, 1, 1, P, 1, 0, 0, 0, P, "private: an administrator's pull token pulls only"},
    /* public */
    {MODE_PUBLIC, 0, 0, ALL, 1, 1, 0, 0, P, "public: anonymous pulls a public repository"},
    {MODE_PUBLIC, 0, 0, ALL, 1, 0, 0, 0, 0, "public: anonymous gets nothing of a private one"},
    {MODE_PUBLIC, 0, 0, ALL, 0, 1, 0, 0, 0, "public: nor of one that does not exist"},
    {MODE_PUBLIC, 1, 0, ALL, 1, 1, 0, 0, P, "public: an account pulls another's public repository"},
    {MODE_PUBLIC, 1, 0, ALL, 0, 0, ALL, 0, ALL, "public: an account does everything in its namespace"},
    {MODE_PUBLIC, 1, 0, ALL, 1, 1, PU, 0, PU, "public: an organisation team with write pushes"},
    {MODE_PUBLIC, 1, 0, ALL, 1, 0, 0, 0, 0, "public: another's private repository stays closed"},
    /* cloud */
    {MODE_CLOUD, 0, 0, ALL, 1, 1, 0, 0, P, "cloud: anonymous pulls what an owner made public"},
    {MODE_CLOUD, 0, 0, ALL, 1, 0, 0, 0, 0, "cloud: anonymous gets nothing private"},
    {MODE_CLOUD, 1, 0, ALL, 1, 0, 0, 0, 0, "cloud: tenants are apart"},
    {MODE_CLOUD, 1, 0, ALL, 1, 0, 0, P, P, "cloud: a pull grant opens a private repository"},
    {MODE_CLOUD, 1, 0, ALL, 1, 0, ALL, 0, ALL, "cloud: the owner does everything"},
    {MODE_CLOUD, 1, 0, P, 1, 0, ALL, 0, P, "cloud: the owner's robot token with pull scope only pulls"},
    {MODE_CLOUD, 1, 1, ALL, 1, 0, 0, 0, ALL, "cloud: administrators see every tenant"},
};

int main(void)
{
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); ++i) {
        const struct row *r = &rows[i];
        access_policy_t pol = {r->mode, 1};
        access_principal_t who = {r->authenticated, r->admin, r->scope_limit};
        access_repo_t repo = {r->exists, r->is_public, r->ns_actions, r->granted};
        unsigned got = access_allowed(&pol, &who, &repo);
        ok(got == r->expect, "%s (got %u, want %u)", r->what, got, r->expect);
    }
    access_policy_t nopull = {MODE_PRIVATE, 0};
    access_principal_t user = {1, 0, ALL}, anon = {0, 0, ALL};
    access_repo_t plain = {1, 0, 0, 0};
    ok(access_allowed(&nopull, &user, &plain) == 0, "private without default pull: nothing without a grant");
    ok(!access_catalog_allowed(&nopull, &anon) && access_catalog_allowed(&nopull, &user),
       "private catalog needs an account");
    access_policy_t pub = {MODE_PUBLIC, 1};
    ok(access_catalog_allowed(&pub, &anon), "public catalog is open (filtered by pull rights)");
    ok(access_new_repo_public(MODE_PUBLIC) && access_new_repo_public(MODE_OPEN) &&
           !access_new_repo_public(MODE_CLOUD) && !access_new_repo_public(MODE_PRIVATE),
       "new repositories start public in public and open modes only");
    ok(access_mode_from_name("cloud") == MODE_CLOUD && access_mode_from_name("Cloud") == -1, "mode names");
    return tap_done();
}
