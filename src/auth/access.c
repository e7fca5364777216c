#include <string.h>
#include "auth/access.h"

static const char *mode_names[] = {"private", "public", "cloud", "open"};

int access_mode_from_name(const char *name)
{
    for (int i = 0; i < 4; ++i)
        if (strcmp(name, mode_names[i]) == 0)
            return i;
    return -1;
}

const char *access_mode_name(access_mode_t mode)
{
    return mode_names[mode];
}

unsigned access_allowed(const access_policy_t *policy, const access_principal_t *who, const access_repo_t *repo)
{
    unsigned allowed = 0;
    if (policy->mode == MODE_OPEN)
        return ACTION_ALL;
    if (who->admin) {
        allowed = ACTION_ALL;
    } else if (!who->authenticated) {
        if (policy->mode != MODE_PRIVATE && repo->exists && repo->is_public)
            allowed = ACTION_PULL;
    } else {
        switch (policy->mode) {
        case MODE_PRIVATE:
            allowed = (policy->private_default_pull ? ACTION_PULL : 0) | repo->granted;
            break;
        case MODE_PUBLIC:
        case MODE_CLOUD:
            allowed = repo->ns_actions | repo->granted;
            if (repo->exists && repo->is_public)
                allowed |= ACTION_PULL;
            break;
        default:
            break;
        }
    }
    return allowed & who->scope_limit;
}

int access_catalog_allowed(const access_policy_t *policy, const access_principal_t *who)
{
    return policy->mode != MODE_PRIVATE || who->authenticated;
}

int access_new_repo_public(access_mode_t mode)
{
    return mode == MODE_PUBLIC || mode == MODE_OPEN;
}
