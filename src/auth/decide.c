#include <string.h>
#include "auth/decide.h"
#include "auth/token.h"

static struct {
    access_policy_t policy;
    int (*mirror_creates)(const char *repo);
} decide;

void auth_decide_init(const access_policy_t *policy, int (*mirror_creates)(const char *repo))
{
    decide.policy = *policy;
    decide.mirror_creates = mirror_creates;
}

access_mode_t auth_mode(void)
{
    return decide.policy.mode;
}

const access_policy_t *auth_policy(void)
{
    return &decide.policy;
}

unsigned auth_policy_actions(metastore_t *db, const auth_principal_t *who, const char *repo)
{
    access_repo_t facts;
    if (decide.policy.mode == MODE_OPEN)
        return ACTION_ALL;
    if (accounts_repo_facts(db, who->authenticated ? who->account_id : 0, repo, &facts) != 0)
        return 0;
    if (!facts.exists && decide.mirror_creates != NULL && decide.mirror_creates(repo))
        facts.exists = facts.is_public = 1; /* a mirror's repository is public before its first pull, as after it */
    access_principal_t p = {who->authenticated, who->admin, ACTION_ALL};
    if (who->via_token)
        p.scope_limit = accounts_token_scope_actions(&who->token, SCOPE_REPOSITORY, repo);
    return access_allowed(&decide.policy, &p, &facts);
}

unsigned auth_actions(metastore_t *db, const auth_principal_t *who, const char *repo)
{
    if (decide.policy.mode == MODE_OPEN)
        return ACTION_ALL;
    if (who->bearer)
        return token_claims_actions(&who->claims, SCOPE_REPOSITORY, repo);
    return auth_policy_actions(db, who, repo);
}

int auth_policy_catalog(const auth_principal_t *who)
{
    if (decide.policy.mode == MODE_OPEN)
        return 1;
    access_principal_t p = {who->authenticated, who->admin, ACTION_ALL};
    if (who->via_token)
        p.scope_limit = accounts_token_scope_actions(&who->token, SCOPE_REGISTRY, "catalog");
    return access_catalog_allowed(&decide.policy, &p) && p.scope_limit != 0;
}

static int catalog_allowed(const auth_principal_t *who)
{
    if (decide.policy.mode == MODE_OPEN)
        return 1;
    if (who->bearer)
        return token_claims_actions(&who->claims, SCOPE_REGISTRY, "catalog") != 0;
    return auth_policy_catalog(who);
}

int auth_allows(metastore_t *db, const auth_principal_t *who, const char *repo, unsigned actions, int catalog)
{
    if (repo != NULL)
        return (auth_actions(db, who, repo) & actions) == actions;
    if (catalog)
        return catalog_allowed(who);
    if (decide.policy.mode == MODE_PRIVATE && who->bearer && !who->authenticated)
        return 0; /* an anonymous token opens nothing in private mode */
    return who->authenticated || decide.policy.mode == MODE_OPEN || who->bearer;
}
