/*
 * The access decision for a caller (auth/principal.h) on a request: gathers the facts about the repository from the
 * store and asks the pure policy (auth/access.h), or, for a Bearer token, reads what the token grants. "Not allowed"
 * is the caller's to turn into a challenge. Thread-safe once auth_decide_init() has returned (each thread passes its
 * own store connection).
 */
#ifndef BERTH_AUTH_DECIDE_H
#define BERTH_AUTH_DECIDE_H

#include "auth/access.h"
#include "auth/principal.h"
#include "store/metastore.h"

/**
 * Decide under `policy` (copied). `mirror_creates(repo)` (NULL: no mirrors) says whether a pull-through mirror
 * creates `repo` under that very name on its first pull: such a repository is as public as the ones it created.
 * auth_init() calls this with the configured policy; tests call it directly.
 */
void auth_decide_init(const access_policy_t *policy, int (*mirror_creates)(const char *repo));

/** The mode berth runs in, and the whole policy (owned by the module). */
access_mode_t auth_mode(void);
const access_policy_t *auth_policy(void);

/**
 * The actions the policy gives the account behind `who` on `repo`, whatever a Bearer token says: what the token
 * service grants, and what the catalog lists. `db` is this thread's store connection; 0 if the store fails.
 */
unsigned auth_policy_actions(metastore_t *db, const auth_principal_t *who, const char *repo);

/** The actions `who` may perform on `repo` now: a Bearer token's grant, else auth_policy_actions(). */
unsigned auth_actions(metastore_t *db, const auth_principal_t *who, const char *repo);

/** Whether the policy lets the account behind `who` list the catalog (registry:catalog:*), within its access token. */
int auth_policy_catalog(const auth_principal_t *who);

/**
 * Whether `who` may make a request: all of `actions` on repository `repo`; with `repo` NULL, listing the catalog
 * when `catalog`, else the base endpoint /v2/ (any authenticated caller; an anonymous Bearer token except in private
 * mode; everyone in open mode). 1 if allowed.
 */
int auth_allows(metastore_t *db, const auth_principal_t *who, const char *repo, unsigned actions, int catalog);

#endif
