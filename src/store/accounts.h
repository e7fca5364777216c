/*
 * Accounts in SQLite (schema/002_accounts.sql): users, organisations with teams, site administrators,
 * repository visibility and grants, access tokens (personal or robot), refresh tokens.
 *
 * Reads take any metastore connection; writes (functions marked "write") run inside metastore_write on the
 * writer thread, or on the CLI's own connection inside its BEGIN IMMEDIATE transaction. Each write is atomic by
 * itself (a savepoint inside the caller's transaction, else its own BEGIN IMMEDIATE). Every write that can take
 * rights away (disable, password change, user delete, token revoke, team member or grant removal, a grant
 * narrowed, administrator rights removed, visibility to private) bumps the global auth generation
 * (accounts_generation) so that caches of verified tokens and credentials notice.
 * Every statement stays prepared on the connection that ran it (store/db.h). On a connection with the read cache
 * (metastore_enable_cache), accounts_repo_facts is cached per (account, repository); accounts_generation is remembered
 * on any connection. Both cost no query while nothing is written, and are read again after any commit, also one by
 * another process (the CLI).
 * Writes given an invalid name, pattern or scope return BERTH_ERROR (logged): callers validate first with
 * accounts_name_valid / accounts_pattern_valid / accounts_scope_valid.
 * In comments here "ns/…" stands for the pattern ns, slash, star (which a C comment cannot hold).
 */
#ifndef BERTH_STORE_ACCOUNTS_H
#define BERTH_STORE_ACCOUNTS_H

#include <stdint.h>
#include "oci/scope.h"
#include "store/metastore.h"

typedef enum { ACCOUNT_USER = 0, ACCOUNT_ORG = 1, ACCOUNT_ROBOT = 2 } account_kind_t;

#define ACCOUNT_NAME_MAX 64 /* account names: one repository path component ([a-z0-9]+ with . _ __ - separators) */

typedef struct {
    int64_t id;
    char name[ACCOUNT_NAME_MAX + 1];
    account_kind_t kind;
    int admin, disabled;
    int64_t generation;  /* bumped when the account is disabled or its password changes */
    char *password_hash; /* malloc'd; NULL for organisations, robots, or accounts without a password */
} account_t;

void account_dispose(account_t *a);

/** What is known about one repository, from the caller's point of view. */
typedef struct {
    int exists;          /* the repository exists */
    int is_public;       /* its visibility is public */
    unsigned ns_actions; /* from namespace ownership: the caller's own namespace (ACTION_ALL) or an organisation's
                            namespace through a team (the team's permission); 0 otherwise */
    unsigned granted;    /* from explicit grants on the repository or a pattern covering it (direct or via teams) */
} accounts_repo_facts_t;

/** 1 if `name` is a valid account/organisation/team name (a single repository path component, ≤ 64). */
int accounts_name_valid(const char *name);

/** The account `name` (any kind): 0, BERTH_ENOTFOUND, BERTH_ERROR. */
int accounts_get(metastore_t *m, const char *name, account_t *out);
int accounts_get_by_id(metastore_t *m, int64_t id, account_t *out);

/** The global auth generation: a number that grows with every write that can take rights away; BERTH_ERROR. */
int64_t accounts_generation(metastore_t *m);

/* ---- access tokens: "berth_<id>_<secret>"; the secret is 32 random bytes (base64url), stored as its SHA-256 ---- */

typedef struct {
    int64_t id;
    int64_t account_id; /* the user (personal token) or robot it acts as */
    char name[128];
    /* space-separated scopes; names may end in "/" plus a star or be a star ("repository:acme/…:pull") */
    char scope[512];
    int64_t expires_at; /* 0: never */
    int revoked;
    int64_t created_at;
} access_token_t;

/**
 * Check a presented access-token secret (the whole "berth_<id>_<secret>" string): 0 with *out filled when it
 * exists, matches (constant-time), is not revoked, not expired at `now` and its account is not disabled;
 * BERTH_ENOTFOUND otherwise (BERTH_ERROR if the database fails).
 */
int accounts_token_check(metastore_t *m, const char *presented, int64_t now, access_token_t *out);
/** 1 if access token `id` is still usable at `now` (not revoked, not expired, its account not disabled). */
int accounts_token_usable(metastore_t *m, int64_t id, int64_t now);
/** Access token `id` if usable at `now` (as accounts_token_usable): 0 with *out filled, or BERTH_ENOTFOUND. */
int accounts_token_get(metastore_t *m, int64_t id, int64_t now, access_token_t *out);
/**
 * The actions an access token's scope allows on repository `repo` (patterns: exact name, "ns/…" for anything
 * under ns/, "*" for everything), or for SCOPE_REGISTRY (repo "catalog" or NULL) what "registry:catalog:…"
 * entries give. Entries that do not parse give nothing.
 */
unsigned accounts_token_scope_actions(const access_token_t *t, scope_type_t type, const char *repo);

/* ---- facts for the policy ---- */

/**
 * Fill *out for `account_id` (0 = anonymous) and repository `repo`: existence and visibility; ns_actions (the
 * first path component is the account's own name -> ACTION_ALL; an organisation in one of whose teams the
 * account is -> the union of those teams' permissions); granted (grants to the account or its teams whose
 * pattern covers `repo`). Never fails on a missing repository (exists = 0). 0 or BERTH_ERROR.
 */
int accounts_repo_facts(metastore_t *m, int64_t account_id, const char *repo, accounts_repo_facts_t *out);

/* ---- refresh tokens (offline_token / OAuth2 refresh_token grant): opaque secrets, stored as SHA-256 ---- */

typedef struct {
    int64_t id;
    int64_t account_id;
    char client[65]; /* who it was issued to (the token request's client_id or User-Agent), "" if unknown */
    int64_t created_at, last_used_at, expires_at; /* last_used_at 0: never used */
} refresh_token_t;

/** write: store refresh token `secret` for the account, issued to `client` (NULL: ""), valid until `expires_at`. */
int accounts_refresh_add(metastore_t *m, int64_t account_id, const char *secret, const char *client,
                         int64_t expires_at);
/** The account of a valid refresh token at `now` (not expired, not revoked, account not disabled): 0 with
 * *account_id and its id in *refresh_id (unless NULL), or BERTH_ENOTFOUND. A password change deletes the account's
 * refresh tokens. */
int accounts_refresh_check(metastore_t *m, const char *secret, int64_t now, int64_t *account_id, int64_t *refresh_id);
/** 1 if refresh token `id` exists (not revoked) and is unexpired at `now`, else 0. */
int accounts_refresh_usable(metastore_t *m, int64_t id, int64_t now);
/** write: refresh token `id` was used at `now`. */
int accounts_refresh_used(metastore_t *m, int64_t id, int64_t now);
/** Call `cb` for every refresh token (of account `owner` unless NULL), by id: the count, BERTH_ENOTFOUND (no such
 * account) or BERTH_ERROR. */
int accounts_refresh_list(metastore_t *m, const char *owner,
                          void (*cb)(void *ctx, const refresh_token_t *t, const char *owner_name), void *ctx);
/** write: revoke (delete) refresh token `id` and bump the global generation; BERTH_ENOTFOUND if there is none. */
int accounts_refresh_revoke(metastore_t *m, int64_t id);

/* ---- administration (all writes; used by the CLI, and by serve for the first admin) ---- */

/*
 * Results: 0; BERTH_ENOTFOUND when a named account, team, grant or token does not exist (or is not of the kind the
 * function needs: users for passwords and administrator rights, users or robots for delete, disable, team
 * membership, grants and tokens, organisations for teams); BERTH_EEXISTS for a taken name; BERTH_ERROR.
 */

/** write: add a user (password_hash may be NULL). BERTH_EEXISTS if the name is taken (by any kind). */
int accounts_user_add(metastore_t *m, const char *name, const char *password_hash, int admin);
/** write: delete a user or robot with its tokens, memberships and grants; bumps the generation. */
int accounts_user_delete(metastore_t *m, const char *name);
/** write: bumps the account's and the global generation, and deletes the user's refresh tokens. */
int accounts_user_set_password(metastore_t *m, const char *name, const char *password_hash);
/** write: (user or robot) disabling bumps the account's and the global generation; enabling bumps nothing. */
int accounts_user_set_disabled(metastore_t *m, const char *name, int disabled);
/** write: removing administrator rights bumps the account's and the global generation. */
int accounts_user_set_admin(metastore_t *m, const char *name, int admin);
/** Call `cb` for every account, ordered by name (a->password_hash valid during the call only). The count, or
 * BERTH_ERROR. */
int accounts_list(metastore_t *m, void (*cb)(void *ctx, const account_t *a), void *ctx);

int accounts_org_add(metastore_t *m, const char *name);
int accounts_robot_add(metastore_t *m, const char *name);
/**
 * write: add team `team` to organisation `org` with `permission` (ACTION_* bits on all the organisation's
 * repositories).
 */
int accounts_team_add(metastore_t *m, const char *org, const char *team, unsigned permission);
/** 1 if team `team` of organisation `org` exists, 0 if not, BERTH_ERROR (for precise messages in the CLI). */
int accounts_team_exists(metastore_t *m, const char *org, const char *team);
/** write: add (idempotent) or remove (BERTH_ENOTFOUND if not a member; bumps the generation) a user or robot. */
int accounts_team_member(metastore_t *m, const char *org, const char *team, const char *user, int add);

/** write: make `repo` public or private (creating the repository record if it does not exist yet); private bumps
 * the generation. */
int accounts_repo_set_public(metastore_t *m, const char *repo, int is_public);
/**
 * write: grant `actions` on `pattern` (a repository name, "ns/…", or "*") to a user or robot ("name") or a team
 * ("org/team"), replacing the actions of an existing grant of the same pattern to the same grantee (a narrower
 * one bumps the generation). actions 0 is accounts_grant_revoke, which removes the grant (BERTH_ENOTFOUND if
 * there is none) and bumps the generation.
 */
int accounts_grant(metastore_t *m, const char *pattern, const char *grantee, unsigned actions);
int accounts_grant_revoke(metastore_t *m, const char *pattern, const char *grantee);

/**
 * write: create an access token for account `owner` (user or robot) named `name` with `scope` and expiry
 * (`expires_at` 0: never). The presented secret ("berth_<id>_<secret>") is returned malloc'd in *secret — shown
 * once, never stored. `scope` must pass accounts_scope_valid, `name` be 1 to 127 bytes.
 */
int accounts_token_create(metastore_t *m, const char *owner, const char *name, const char *scope, int64_t expires_at,
                          char **secret);
int accounts_token_revoke(metastore_t *m, int64_t id); /* bumps the generation; BERTH_ENOTFOUND */
/** Every token (or `owner`'s: BERTH_ENOTFOUND if no such account) ordered by id; the count, or BERTH_ERROR. */
int accounts_token_list(metastore_t *m, const char *owner /* NULL: all */,
                        void (*cb)(void *ctx, const access_token_t *t, const char *owner_name), void *ctx);

/* ---- validation (no I/O) ---- */

/** 1 if `pattern` is a grant pattern: a repository name, "<repository name>/…", or "*". */
int accounts_pattern_valid(const char *pattern);
/**
 * 1 if `scope` is a non-empty space-separated list of "repository:<pattern>:<actions>" and
 * "registry:catalog:<actions>" entries, every action known (pull, push, delete, *), shorter than
 * access_token_t.scope.
 */
int accounts_scope_valid(const char *scope);

#endif
