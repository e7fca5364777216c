/*
 * Who is calling: anonymous, Basic credentials (a password or an access-token secret) or a Bearer token from the
 * token service; and the process-wide auth state set up from the configuration (token keys, the failed-login rate
 * limiter, the credential cache's lifetime). Nothing here speaks HTTP: the caller extracts the credentials and the
 * client's address, runs the slow password check where it likes (a worker), and turns the results into answers.
 *
 * Verified Bearer tokens and passwords are cached per event loop (auth_cache_t); its entries are stale whenever the
 * global auth generation (store/accounts.h) moves, so a disabled account or a revoked access token stops at once.
 * A cache belongs to one thread; everything else here is thread-safe once auth_init() has returned.
 */
#ifndef BERTH_AUTH_PRINCIPAL_H
#define BERTH_AUTH_PRINCIPAL_H

#include <stddef.h>
#include <stdint.h>
#include "auth/access.h"
#include "auth/token.h"
#include "config/config.h"
#include "store/accounts.h"
#include "store/metastore.h"

/** Who is calling; a plain value (no pointers), which the caller keeps where it likes (e.g. a request's pool). */
typedef struct auth_principal {
    int authenticated;
    int64_t account_id;
    int64_t generation; /* the account's, when authenticated */
    char name[ACCOUNT_NAME_MAX + 1];
    int admin;
    int bearer; /* authenticated by a Bearer token: `claims` says what it may do */
    token_claims_t claims;
    int via_token; /* Basic with an access token: `token` limits what it may do */
    access_token_t token;
} auth_principal_t;

/**
 * Set up the auth module from `cfg` (copied from; `cfg` may go away afterwards): the mode and policy (also for
 * auth/decide.h, with `mirror_creates`, which may be NULL), the token keys (creating berth's signing key at first
 * start, adding an external issuer's), the rate limiter, and whether new repositories start public. Call once
 * before any loop starts. 0, or -1 with a malloc'd message in *err (the caller frees it; nothing stays allocated).
 */
int auth_init(const config_t *cfg, int (*mirror_creates)(const char *repo), char **err);

/**
 * How auth.external_keys at an http(s):// URL is fetched (berth serve gives the mirrors' HTTP client; without one
 * a URL cannot be read): 0 with the malloc'd document in *data (*len bytes), or -1 with the reason in `err`. Set it
 * before auth_init(). It runs on the thread that reads the keys again every auth.external_keys_refresh.
 */
typedef int (*auth_fetch_fn)(const char *url, char **data, size_t *len, char *err, size_t errlen);
void auth_set_fetcher(auth_fetch_fn fn);

/** Free what auth_init() set up (keys, rate limiter); after the loops have stopped. auth_init() may follow. */
void auth_dispose(void);

/** The token keys, for the token service (signing) and the JWKS. Owned by the module until auth_dispose(). */
const token_keys_t *auth_keys(void);

/** One event loop's caches of verified credentials and Bearer tokens (opaque; about 1.4 MB). */
typedef struct auth_cache auth_cache_t;

/** A new, empty cache for one thread; the caller frees it with auth_cache_free(). */
auth_cache_t *auth_cache_new(void);

/** Wipe and free `cache` (NULL is harmless), on its thread or after that thread has ended. */
void auth_cache_free(auth_cache_t *cache);

/** What auth_basic() found. */
typedef enum {
    AUTH_OK = 0,  /* *who is filled */
    AUTH_DENIED,  /* wrong credentials (answer a challenge) */
    AUTH_LIMITED, /* too many failed logins: *wait_ms still to wait (answer 429) */
    AUTH_CHECK    /* a password to check: *check is set, see auth_check_run() */
} auth_status_t;

/** The kinds of failed logins /metrics counts. */
typedef enum {
    AUTH_FAIL_PASSWORD,     /* a wrong password (or unknown or disabled user), after its check */
    AUTH_FAIL_ACCESS_TOKEN, /* a wrong access-token secret as a password */
    AUTH_FAIL_BEARER,       /* a Bearer token that does not verify, or whose account or access token changed */
    AUTH_FAIL_KINDS
} auth_fail_t;

/** Failed logins by kind, and logins refused by the rate limiter (429), since start. */
typedef struct {
    uint64_t failures[AUTH_FAIL_KINDS];
    uint64_t limited;
} auth_stats_t;

/** Read the counters (thread-safe). */
void auth_stats(auth_stats_t *out);

/** A password check in flight: made by auth_basic(), run by auth_check_run(), freed by auth_check_finish(). */
typedef struct auth_check auth_check_t;

/** Writes the caller's client address (see limiter_client_addr()) into `buf` of `len` bytes. */
typedef void (*auth_client_fn)(void *ctx, char *buf, size_t len);

/**
 * Resolve Basic credentials `user` and `password`, with `client(client_ctx, …)` giving the client's address when
 * the rate limiter needs it (not for an access token or a cached password), with this thread's `cache` and store connection `db`.
 * `user` NULL is an anonymous caller: AUTH_OK with *who zeroed. An access-token secret ("berth_…") is checked at
 * once: AUTH_OK or AUTH_DENIED (a wrong 256-bit secret is not counted as a failed login). A password found in the
 * cache gives AUTH_OK; a client over its failed logins AUTH_LIMITED; else AUTH_CHECK with a check that holds a copy
 * of the password and the hash to compare (a dummy one for an unknown or disabled user, so that timing does not tell
 * which names exist). *who is always written; *wait_ms and *check only for their result.
 */
auth_status_t auth_basic(auth_cache_t *cache, metastore_t *db, const char *user, const char *password,
                         auth_client_fn client, void *client_ctx, auth_principal_t *who, int64_t *wait_ms,
                         auth_check_t **check);

/** Compare the password with its hash: slow (tens of ms, MiB of memory) and thread-safe, for a worker thread. */
void auth_check_run(auth_check_t *check);

/**
 * On the thread that made `check`, after auth_check_run(): count the outcome with the rate limiter, remember a match
 * in `cache` (NULL: nowhere) for auth.credential_cache_ttl. 1 with *who filled if the password matched an enabled
 * user, else 0. Wipes the password and frees `check`.
 */
int auth_check_finish(auth_check_t *check, auth_cache_t *cache, auth_principal_t *who);

/**
 * Verify Bearer token `jwt` (`len` bytes): signed by berth or a trusted external issuer and unexpired; a token of
 * berth's for an account also needs the account enabled at the generation the token was issued at, and the access
 * token it came from (if any) still usable. Cached in `cache` until the token or its access token expires, at most
 * 5 minutes. 0 with *who filled (bearer set), or -1.
 */
int auth_bearer(auth_cache_t *cache, metastore_t *db, const char *jwt, size_t len, auth_principal_t *who);

/**
 * Whether Basic credentials are known good without hashing a password: an access token that logs in, or a
 * password `cache` remembers. 0 says only "not known" (the password may still be right).
 */
int auth_basic_known(auth_cache_t *cache, metastore_t *db, const char *user, const char *password);

#endif
