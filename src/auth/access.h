/*
 * Who may do what: a pure function of (mode, principal, facts about the repository) -> the actions allowed.
 * No I/O: the caller gathers the facts (store/accounts.h) and turns "not allowed" into a challenge. Unit-tested
 * as a table (tests/unit/access_test.c).
 */
#ifndef BERTH_AUTH_ACCESS_H
#define BERTH_AUTH_ACCESS_H

#include <stdint.h>
#include "oci/scope.h"
#include "store/accounts.h"

typedef enum { MODE_PRIVATE = 0, MODE_PUBLIC = 1, MODE_CLOUD = 2, MODE_OPEN = 3 } access_mode_t;

/** "private", "public", "cloud", "open" -> the mode, or -1. */
int access_mode_from_name(const char *name);
const char *access_mode_name(access_mode_t mode);

typedef struct {
    int authenticated;    /* 0: anonymous */
    int admin;            /* a site administrator */
    unsigned scope_limit; /* an access token's scope on this repository (ACTION_ALL when not a token) */
} access_principal_t;

/** What is known about one repository, from the caller's point of view (gathered by store/accounts.h). */
typedef accounts_repo_facts_t access_repo_t;

typedef struct {
    access_mode_t mode;
    int private_default_pull; /* mode private: every account may pull every repository (default on) */
} access_policy_t;

/**
 * The actions (ACTION_* bits) `who` may perform on the repository described by `repo` under `policy`:
 *  - open: everything, for everyone;
 *  - administrators: everything (within an access token's scope);
 *  - private: anonymous nothing; accounts pull everything when private_default_pull, plus what grants give
 *    (namespaces own nothing in this mode);
 *  - public: anonymous pulls public repositories; accounts pull public repositories, act in their own namespace
 *    and organisations' (ns_actions), plus grants;
 *  - cloud: like public, but nothing of a private repository without ownership or a grant.
 * The result is then limited by who.scope_limit.
 */
unsigned access_allowed(const access_policy_t *policy, const access_principal_t *who, const access_repo_t *repo);

/**
 * The catalog (registry:catalog:*): listing is allowed to every authenticated caller, and to anonymous callers
 * in open and public/cloud modes; the entries are still filtered by pull rights. 1 if allowed.
 */
int access_catalog_allowed(const access_policy_t *policy, const access_principal_t *who);

/** Whether a new repository starts public under this mode (public and open: yes; private and cloud: no). */
int access_new_repo_public(access_mode_t mode);

#endif
