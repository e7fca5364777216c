/*
 * The gate every registry request passes: authentication and authorization, the HTTP side: the credentials a request
 * presents (Authorization: Basic or Bearer), the client's address, the slow password check on the worker pool, and
 * the answers. Who the caller is and what they may do are the auth module's (auth/principal.h, auth/decide.h).
 * Refusals are 401 challenges that tell docker, podman and skopeo where to get a token:
 *   WWW-Authenticate: Bearer realm="<base>/token",service="<service>",scope="repository:<name>:<actions>"
 * never 403 or 404, so that clients fetch the next token; a repository the caller may not pull answers
 * exactly as one that does not exist.
 */
#ifndef BERTH_HTTP_GATE_H
#define BERTH_HTTP_GATE_H

#include "auth/access.h"
#include "auth/decide.h"
#include "auth/principal.h"
#include "auth/token.h"
#include "http/api.h"
#include "store/accounts.h"

/**
 * Authenticate the request, check that the caller may perform `actions` on repository `r->name` (with no name:
 * for /v2/ any authenticated caller, for the catalog the catalog scope), then call `then(r)` with r->who set (in
 * the request's pool) — or answer 401 (challenge), 429 (too many failed logins) itself. May finish asynchronously
 * (password checks run on workers).
 */
void gate_require(route_t *r, unsigned actions, int catalog, void (*then)(route_t *r));

/** What gate_require calls once the caller may go on. */
typedef void (*gate_then_t)(route_t *r);

/**
 * As gate_require for repository `r->name`, with a step between authentication and authorization:
 * `route(r, then)` (r->who set) may change r->name to the repository the request reaches, and returns the handler
 * to call once the caller is found allowed there (`then`, or another), or NULL when it answered itself. So a name
 * tells an unauthenticated caller nothing that the routing knows (in mode private, every name is challenged alike).
 */
void gate_require_routed(route_t *r, unsigned actions, gate_then_t (*route)(route_t *r, gate_then_t then),
                         gate_then_t then);

/** Who did something, for the audit log (store/audit.h) and webhooks: the account, or "anonymous"; the access token
 * it used (0: none); the client address the rate limiter uses (behind trusted proxies). */
typedef struct {
    char name[ACCOUNT_NAME_MAX + 1];
    int64_t token_id;
    char addr[64];
} gate_actor_t;
/** Fill `out` for request `req` with caller `who` (NULL: anonymous). */
void gate_actor(h2o_req_t *req, const auth_principal_t *who, gate_actor_t *out);

/** Answer 401 UNAUTHORIZED with a Bearer challenge for `scope` (NULL: none); `insufficient` adds error=. */
void gate_challenge(h2o_req_t *req, const char *scope, int insufficient);

/**
 * Check a user name and password (or access-token secret) as the token endpoint needs it: like the Basic path
 * of gate_require, rate-limited and cached; calls `done(req, who, status)` where status is 0 (who filled, in the
 * request's pool), 401 or 429 (already answered). Anonymous when user is NULL.
 */
void gate_login(h2o_req_t *req, const char *user, const char *password, void *ctx,
                void (*done)(h2o_req_t *req, auth_principal_t *who, void *ctx, int status));

/**
 * For the connection watchdog, on the loop's thread: whether the raw HTTP/1 head `head` carries credentials known
 * good without hashing a password (a valid Bearer token, an access token, a cached password), or the mode needs
 * none. A request body from a client without them is refused before it has arrived whole.
 */
int gate_head_authenticated(thread_ctx_t *tc, const char *head, size_t len);

/** Each loop's caches of verified credentials (auth/principal.h), made and freed with the loop. */
extern const server_hooks_t gate_hooks;

#endif
