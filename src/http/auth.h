/*
 * Authentication and authorization of requests: who is calling (anonymous, Basic credentials — a password or
 * an access token — or a Bearer token from /token), and whether the policy (auth/access.h) lets them do what
 * the request needs. Refusals are 401 challenges that tell docker, podman and skopeo where to get a token:
 *   WWW-Authenticate: Bearer realm="<base>/token",service="<service>",scope="repository:<name>:<actions>"
 * never 403 or 404, so that clients fetch the next token; a repository the caller may not pull answers
 * exactly as one that does not exist.
 *
 * Verified Bearer tokens and passwords are cached per event loop; the caches are dropped whenever the global
 * auth generation (store/accounts.h) moves, so a disabled account or revoked access token stops at once.
 */
#ifndef BERTH_HTTP_AUTH_H
#define BERTH_HTTP_AUTH_H

#include "auth/access.h"
#include "auth/token.h"
#include "http/api.h"
#include "store/accounts.h"

/** Who is calling; lives in the request's pool. */
typedef struct auth_principal {
    int authenticated;
    int64_t account_id;
    int64_t generation;     /* the account's, when authenticated */
    char name[ACCOUNT_NAME_MAX + 1];
    int admin;
    int bearer;             /* authenticated by a Bearer token: `claims` says what it may do */
    token_claims_t claims;
    int via_token;          /* Basic with an access token: `token` limits what it may do */
    access_token_t token;
} auth_principal_t;

/** Set up keys and policy from `cfg`; creates the signing key at first start. 0, or -1 with *err (malloc'd). */
int auth_init(const config_t *cfg, char **err);
void auth_dispose(void);

/** The mode berth runs in, and the token keys (for /token). */
access_mode_t auth_mode(void);
const token_keys_t *auth_keys(void);
const access_policy_t *auth_policy(void);

/**
 * Authenticate the request, check that the caller may perform `actions` on repository `r->name` (with no name:
 * for /v2/ any authenticated caller, for the catalog the catalog scope), then call `then(r)` with r->who set —
 * or answer 401 (challenge), 429 (too many failed logins) itself. May finish asynchronously (password checks
 * run on workers).
 */
void auth_require(route_t *r, unsigned actions, int catalog, void (*then)(route_t *r));

/** The actions `who` may perform on `repo` now (for mount sources). Loop thread only. */
unsigned auth_actions(thread_ctx_t *tc, const auth_principal_t *who, const char *repo);

/**
 * The actions the policy gives the account behind `who` on `repo`, whatever a Bearer token says: what the token
 * service grants, and what the catalog lists. Loop thread only.
 */
unsigned auth_policy_actions(thread_ctx_t *tc, const auth_principal_t *who, const char *repo);

/** Whether the policy lets the account behind `who` list the catalog (registry:catalog:*). */
int auth_policy_catalog(const auth_principal_t *who);

/** Answer 401 UNAUTHORIZED with a Bearer challenge for `scope` (NULL: none); `insufficient` adds error=. */
void auth_challenge(h2o_req_t *req, const char *scope, int insufficient);

/**
 * Check a user name and password (or access-token secret) as the token endpoint needs it: like the Basic path
 * of auth_require, rate-limited and cached; calls `done(req, who, status)` where status is 0 (who filled), 401 or
 * 429 (already answered). Anonymous when user is NULL.
 */
void auth_login(h2o_req_t *req, const char *user, const char *password, void *ctx,
                void (*done)(h2o_req_t *req, auth_principal_t *who, void *ctx, int status));

/** Decode the base64 part of "Basic …" into `user` and `password` (pool strings). 0, or -1 if malformed. */
int auth_parse_basic(h2o_req_t *req, const char *v, size_t len, char **user, char **password);

/** Each loop's caches of verified credentials, made and freed with the loop. */
extern const server_hooks_t auth_hooks;

/** Per-thread caches: set up and drop with the thread. */
typedef struct auth_thread auth_thread_t;
auth_thread_t *auth_thread_new(void);
void auth_thread_free(auth_thread_t *t);

#endif
