#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "auth/limiter.h"
#include "auth/password.h"
#include "http/auth.h"
#include "mirror/mirror.h"
#include "oci/name.h"
#include "http/work.h"
#include "util/log.h"
#include "util/status.h"
#include "util/time.h"

#define CACHE_SLOTS 128

static struct {
    access_policy_t policy;
    token_keys_t keys;
    unsigned char hmac_key[32]; /* keys the credential cache: an HMAC of the credentials, never the password */
    limiter_t *limiter;
} auth;

struct auth_thread {
    int64_t generation; /* the auth generation the caches were filled at */
    struct {
        unsigned char key[32];
        int64_t until; /* seconds; 0 = empty */
        auth_principal_t who;
    } creds[CACHE_SLOTS], tokens[CACHE_SLOTS];
};

int auth_init(char **err)
{
    char path[4096];
    auth.policy.mode = (access_mode_t)access_mode_from_name(berth.cfg.mode);
    auth.policy.private_default_pull = berth.cfg.auth_private_default_pull;
    metastore_new_repos_public = access_new_repo_public(auth.policy.mode);
    if (RAND_bytes(auth.hmac_key, sizeof(auth.hmac_key)) != 1) {
        *err = strdup("no randomness");
        return -1;
    }
    if (berth.cfg.auth_key != NULL)
        snprintf(path, sizeof(path), "%s", berth.cfg.auth_key);
    else
        snprintf(path, sizeof(path), "%s/keys/token.pem", berth.cfg.storage_root);
    if (token_keys_init(&auth.keys, path, berth.cfg.auth_issuer, berth.cfg.auth_service, err) != 0)
        return -1;
    if (berth.cfg.auth_external_keys != NULL &&
        token_keys_add_external(&auth.keys, berth.cfg.auth_external_keys,
                                berth.cfg.auth_external_issuer ? berth.cfg.auth_external_issuer : berth.cfg.auth_issuer, err) != 0)
        return -1;
    auth.limiter = limiter_new(berth.cfg.auth_login_failures, berth.cfg.auth_login_backoff_ms);
    return 0;
}

void auth_dispose(void)
{
    token_keys_dispose(&auth.keys);
    limiter_free(auth.limiter);
    auth.limiter = NULL;
}

access_mode_t auth_mode(void)
{
    return auth.policy.mode;
}

const token_keys_t *auth_keys(void)
{
    return &auth.keys;
}

const access_policy_t *auth_policy(void)
{
    return &auth.policy;
}

auth_thread_t *auth_thread_new(void)
{
    return calloc(1, sizeof(auth_thread_t));
}

void auth_thread_free(auth_thread_t *t)
{
    free(t);
}

static void hmac(unsigned char *out, const void *a, size_t alen, const void *b, size_t blen)
{
    unsigned char buf[1024];
    size_t n = 0;
    /* length-prefix the first part so that ("ab","c") and ("a","bc") differ */
    n += (size_t)snprintf((char *)buf, sizeof(buf), "%zu:", alen);
    if (n + alen + blen > sizeof(buf)) {
        alen = alen > 256 ? 256 : alen;
        blen = sizeof(buf) - n - alen;
    }
    memcpy(buf + n, a, alen);
    memcpy(buf + n + alen, b, blen);
    unsigned len = 32;
    HMAC(EVP_sha256(), auth.hmac_key, sizeof(auth.hmac_key), buf, n + alen + blen, out, &len);
    OPENSSL_cleanse(buf, sizeof(buf));
}

/* Drop the caches when anything that can take rights away has changed (also a CLI run in another process). */
static void check_generation(thread_ctx_t *tc)
{
    int64_t g = accounts_generation(tc->db);
    if (g != tc->auth->generation) {
        memset(tc->auth->creds, 0, sizeof(tc->auth->creds));
        memset(tc->auth->tokens, 0, sizeof(tc->auth->tokens));
        tc->auth->generation = g;
    }
}

/* ---- failed-login rate limit, per (account, client address) ---- */

/* The address the rate limiter keys on: the peer's, or behind a trusted proxy what it says the client's is. */
static void client_addr(h2o_req_t *req, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    char peer[INET6_ADDRSTRLEN] = "";
    socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    if (sl != 0 && ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, peer, sizeof(peer));
    else if (sl != 0 && ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, peer, sizeof(peer));
    size_t xl = 0;
    const char *xff = req_header(req, "x-forwarded-for", &xl);
    limiter_client_addr(buf, len, peer, xff, xl, berth.cfg.auth_trusted_proxies);
}

static void too_many(h2o_req_t *req, int64_t wait_ms)
{
    res_headerf(req, "retry-after", "%lld", (long long)((wait_ms + 999) / 1000));
    res_error(req, ERR_TOOMANYREQUESTS, "too many failed logins; retry later", NULL);
}

/* ---- logins: passwords on workers, access tokens at once ---- */

typedef struct {
    work_t super;
    char *password;
    char *hash;
    int ok;
    unsigned char cache_key[32], limit_key[32];
    auth_principal_t who;
    void *ctx;
    void (*done)(h2o_req_t *req, auth_principal_t *who, void *ctx, int status);
} login_t;

static void fill_principal(auth_principal_t *who, const account_t *a)
{
    who->authenticated = 1;
    who->account_id = a->id;
    who->generation = a->generation;
    snprintf(who->name, sizeof(who->name), "%s", a->name);
    who->admin = a->admin;
}

static void login_run(work_t *w)
{
    login_t *l = (login_t *)w;
    l->ok = password_verify(l->password, l->hash) && l->who.authenticated;
}

static void login_done(work_t *w)
{
    login_t *l = (login_t *)w;
    h2o_req_t *req = w->req;
    limiter_record(auth.limiter, l->limit_key, l->ok, (int64_t)time_mono_ms());
    if (req != NULL) {
        thread_ctx_t *tc = thread_ctx_of(req);
        if (l->ok && berth.cfg.auth_credential_cache_ttl_ms > 0) {
            unsigned s = l->cache_key[0] % CACHE_SLOTS;
            memcpy(tc->auth->creds[s].key, l->cache_key, 32);
            tc->auth->creds[s].until = time_now_s() + (int64_t)(berth.cfg.auth_credential_cache_ttl_ms / 1000);
            tc->auth->creds[s].who = l->who;
        }
        if (l->ok) {
            auth_principal_t *who = h2o_mem_alloc_pool(&req->pool, sizeof(*who));
            *who = l->who;
            l->done(req, who, l->ctx, 0);
        } else {
            auth_challenge(req, NULL, 0);
            l->done(req, NULL, l->ctx, 401);
        }
    }
    OPENSSL_cleanse(l->password, strlen(l->password));
    free(l->password);
    free(l->hash);
    free(l);
}

void auth_login(h2o_req_t *req, const char *user, const char *password, void *ctx,
                void (*done)(h2o_req_t *req, auth_principal_t *who, void *ctx, int status))
{
    thread_ctx_t *tc = thread_ctx_of(req);
    auth_principal_t *who = h2o_mem_alloc_pool(&req->pool, sizeof(*who));
    memset(who, 0, sizeof(*who));
    if (user == NULL) {
        done(req, who, ctx, 0);
        return;
    }
    check_generation(tc);
    /* an access token: a high-entropy secret, checked at once */
    if (strncmp(password, "berth_", 6) == 0) {
        access_token_t t;
        account_t a = {0};
        if (accounts_token_check(tc->db, password, time_now_s(), &t) == 0 && accounts_get_by_id(tc->db, t.account_id, &a) == 0 &&
            !a.disabled && strcmp(a.name, user) == 0) {
            fill_principal(who, &a);
            who->via_token = 1;
            who->token = t;
            account_dispose(&a);
            done(req, who, ctx, 0);
            return;
        }
        account_dispose(&a);
        /* a wrong 256-bit secret cannot be guessed, so it does not count as a failed login; passwords may not
         * begin with "berth_" (the CLI refuses them), so there is nothing else to check */
        auth_challenge(req, NULL, 0);
        done(req, NULL, ctx, 401);
        return;
    }
    unsigned char ck[32], lk[32];
    char addr[64];
    hmac(ck, user, strlen(user), password, strlen(password));
    unsigned s = ck[0] % CACHE_SLOTS;
    if (tc->auth->creds[s].until > time_now_s() && memcmp(tc->auth->creds[s].key, ck, 32) == 0) {
        *who = tc->auth->creds[s].who;
        done(req, who, ctx, 0);
        return;
    }
    client_addr(req, addr, sizeof(addr));
    hmac(lk, user, strlen(user), addr, strlen(addr));
    int64_t wait = limiter_wait(auth.limiter, lk, (int64_t)time_mono_ms());
    if (wait > 0) {
        too_many(req, wait);
        done(req, NULL, ctx, 429);
        return;
    }
    login_t *l = calloc(1, sizeof(*l));
    account_t a = {0};
    if (accounts_get(tc->db, user, &a) == 0 && !a.disabled && a.kind == ACCOUNT_USER && a.password_hash != NULL) {
        l->hash = strdup(a.password_hash);
        fill_principal(&l->who, &a);
    }
    account_dispose(&a);
    /* an unknown user costs a hash too, so that timing does not tell which names exist */
    if (l->hash == NULL)
        l->hash = strdup("$y$j9T$0123456789abcdefghijk.$0123456789abcdefghijklmnopqrstuvwxyzABCDE");
    l->password = strdup(password);
    memcpy(l->cache_key, ck, 32);
    memcpy(l->limit_key, lk, 32);
    l->ctx = ctx;
    l->done = done;
    work_submit_to(WORK_CPU, req, &l->super, login_run, login_done);
}

/* ---- Bearer tokens ---- */

/* Verify a Bearer token (cached per thread until the auth generation moves). 0 with *who filled, or -1. */
static int verify_bearer(thread_ctx_t *tc, const char *tok, size_t len, auth_principal_t *who)
{
    unsigned char key[32];
    char err[128];
    int64_t now = time_now_s();
    check_generation(tc);
    hmac(key, "bearer", 6, tok, len);
    unsigned s = key[0] % CACHE_SLOTS;
    if (tc->auth->tokens[s].until > now && memcmp(tc->auth->tokens[s].key, key, 32) == 0) {
        *who = tc->auth->tokens[s].who;
        return 0;
    }
    memset(who, 0, sizeof(*who));
    if (token_verify(&auth.keys, tok, len, now, &who->claims, err, sizeof(err)) != 0) {
        log_debug("bearer token refused: %s", err);
        return -1;
    }
    who->bearer = 1;
    if (who->claims.sub[0] != '\0' && !who->claims.external) {
        /* berth's own token for an account: the account must still be enabled, at the generation it was issued
         * at, and the access token it came from still usable */
        account_t a = {0};
        int rc = accounts_get(tc->db, who->claims.sub, &a);
        int usable = rc == 0 && !a.disabled && a.generation == who->claims.generation;
        if (usable && who->claims.token_id != 0) {
            /* issued from an access token: that token's scope and expiry still bound what this one may do */
            usable = accounts_token_get(tc->db, who->claims.token_id, now, &who->token) == 0 &&
                     who->token.account_id == a.id;
            who->via_token = usable;
        }
        if (usable)
            fill_principal(who, &a);
        account_dispose(&a);
        if (!usable) {
            log_debug("bearer token of %s refused: account disabled, changed or token revoked", who->claims.sub);
            return -1;
        }
    } else if (who->claims.sub[0] != '\0') {
        who->authenticated = 1; /* an external issuer's subject: what it may do is in the token */
        snprintf(who->name, sizeof(who->name), "%.*s", (int)sizeof(who->name) - 1, who->claims.sub);
    }
    memcpy(tc->auth->tokens[s].key, key, 32);
    int64_t until = who->claims.exp < now + 300 ? who->claims.exp : now + 300;
    if (who->via_token && who->token.expires_at != 0 && who->token.expires_at < until)
        until = who->token.expires_at; /* an access token's expiry bumps no generation */
    tc->auth->tokens[s].until = until;
    tc->auth->tokens[s].who = *who;
    return 0;
}

/* ---- decisions ---- */

static int catalog_allowed(const auth_principal_t *who)
{
    if (auth.policy.mode == MODE_OPEN)
        return 1;
    if (who->bearer)
        return token_claims_actions(&who->claims, SCOPE_REGISTRY, "catalog") != 0;
    return auth_policy_catalog(who);
}

unsigned auth_policy_actions(thread_ctx_t *tc, const auth_principal_t *who, const char *repo)
{
    access_repo_t facts;
    if (auth.policy.mode == MODE_OPEN)
        return ACTION_ALL;
    if (accounts_repo_facts(tc->db, who->authenticated ? who->account_id : 0, repo, &facts) != 0)
        return 0;
    if (!facts.exists && nmirrors != 0) {
        /* a repository a mirror will create on the first pull is as public as the ones it created */
        char local[NAME_MAX_LEN + 1], up[NAME_MAX_LEN + 1];
        if (mirror_select(repo, NULL, local, up) != NULL && strcmp(local, repo) == 0)
            facts.exists = facts.is_public = 1;
    }
    access_principal_t p = {who->authenticated, who->admin, ACTION_ALL};
    if (who->via_token)
        p.scope_limit = accounts_token_scope_actions(&who->token, SCOPE_REPOSITORY, repo);
    return access_allowed(&auth.policy, &p, &facts);
}

unsigned auth_actions(thread_ctx_t *tc, const auth_principal_t *who, const char *repo)
{
    if (auth.policy.mode == MODE_OPEN)
        return ACTION_ALL;
    if (who->bearer)
        return token_claims_actions(&who->claims, SCOPE_REPOSITORY, repo);
    return auth_policy_actions(tc, who, repo);
}

int auth_policy_catalog(const auth_principal_t *who)
{
    if (auth.policy.mode == MODE_OPEN)
        return 1;
    access_principal_t p = {who->authenticated, who->admin, ACTION_ALL};
    if (who->via_token)
        p.scope_limit = accounts_token_scope_actions(&who->token, SCOPE_REGISTRY, "catalog");
    return access_catalog_allowed(&auth.policy, &p) && p.scope_limit != 0;
}

void auth_challenge(h2o_req_t *req, const char *scope, int insufficient)
{
    char realm[1024];
    if (berth.cfg.external_url != NULL && *berth.cfg.external_url != '\0') {
        size_t n = strlen(berth.cfg.external_url);
        while (n > 0 && berth.cfg.external_url[n - 1] == '/')
            --n;
        snprintf(realm, sizeof(realm), "%.*s/token", (int)n, berth.cfg.external_url);
    } else {
        /* the Host header names the realm: only host[:port] characters, or a client could be sent elsewhere */
        const char *host = req->authority.base;
        size_t hlen = req->authority.len;
        for (size_t i = 0; i < hlen; ++i)
            if (!isalnum((unsigned char)host[i]) && strchr(".-:[]", host[i]) == NULL)
                hlen = 0;
        if (hlen == 0 || hlen > 255) {
            host = berth.cfg.http_addr;
            hlen = strlen(host);
        }
        snprintf(realm, sizeof(realm), "%s://%.*s/token", req->scheme == &H2O_URL_SCHEME_HTTPS ? "https" : "http",
                 (int)hlen, host);
    }
    char value[2048];
    int n = snprintf(value, sizeof(value), "Bearer realm=\"%s\",service=\"%s\"", realm, berth.cfg.auth_service);
    if (scope != NULL)
        n += snprintf(value + n, sizeof(value) - n, ",scope=\"%s\"", scope);
    if (insufficient)
        snprintf(value + n, sizeof(value) - n, ",error=\"insufficient_scope\"");
    res_header(req, "www-authenticate", value);
    res_error(req, ERR_UNAUTHORIZED, NULL, NULL);
}

typedef struct {
    route_t *r;
    unsigned actions;
    int catalog;
    int presented; /* credentials were presented */
    void (*then)(route_t *r);
} pending_t;

static void decide(h2o_req_t *req, auth_principal_t *who, void *ctx, int status)
{
    pending_t *p = ctx;
    route_t *r = p->r;
    if (status != 0)
        return; /* already answered */
    r->who = who;
    int ok;
    char scope[512] = "";
    if (r->name != NULL) {
        ok = (auth_actions(r->tc, who, r->name) & p->actions) == p->actions;
        char acts[64];
        snprintf(scope, sizeof(scope), "repository:%s:%s", r->name, scope_actions_format(p->actions, acts, sizeof(acts)));
    } else if (p->catalog) {
        ok = catalog_allowed(who);
        snprintf(scope, sizeof(scope), "registry:catalog:*");
    } else {
        ok = who->authenticated || auth.policy.mode == MODE_OPEN || who->bearer;
        if (auth.policy.mode == MODE_PRIVATE && who->bearer && !who->authenticated)
            ok = 0; /* an anonymous token opens nothing in private mode */
    }
    if (!ok) {
        auth_challenge(req, scope[0] ? scope : NULL, p->presented);
        return;
    }
    p->then(r);
}

int auth_parse_basic(h2o_req_t *req, const char *v, size_t len, char **user, char **pass)
{
    unsigned char buf[1024];
    while (len > 0 && *v == ' ')
        ++v, --len;
    if (len == 0 || len > 1300)
        return -1;
    int n = EVP_DecodeBlock(buf, (const unsigned char *)v, (int)len);
    if (n <= 0)
        return -1;
    while (n > 0 && len > 0 && v[len - 1] == '=') /* EVP_DecodeBlock counts padding as zero bytes */
        --n, --len;
    char *s = h2o_mem_alloc_pool(&req->pool, (size_t)n + 1);
    memcpy(s, buf, (size_t)n);
    s[n] = '\0';
    OPENSSL_cleanse(buf, sizeof(buf));
    char *colon = strchr(s, ':');
    if (colon == NULL || colon == s || strlen(s) != (size_t)n)
        return -1;
    *colon = '\0';
    *user = s;
    *pass = colon + 1;
    return 0;
}

void auth_require(route_t *r, unsigned actions, int catalog, void (*then)(route_t *r))
{
    h2o_req_t *req = r->req;
    static auth_principal_t open_principal;
    if (auth.policy.mode == MODE_OPEN) {
        r->who = &open_principal;
        then(r);
        return;
    }
    pending_t *p = h2o_mem_alloc_pool(&req->pool, sizeof(*p));
    *p = (pending_t){r, actions, catalog, 0, then};
    size_t len;
    const char *az = req_header(req, "authorization", &len);
    if (az == NULL) {
        auth_principal_t *who = h2o_mem_alloc_pool(&req->pool, sizeof(*who));
        memset(who, 0, sizeof(*who));
        decide(req, who, p, 0);
        return;
    }
    p->presented = 1;
    if (len > 7 && strncasecmp(az, "Bearer ", 7) == 0) {
        auth_principal_t *who = h2o_mem_alloc_pool(&req->pool, sizeof(*who));
        if (verify_bearer(r->tc, az + 7, len - 7, who) != 0) {
            auth_challenge(req, NULL, 0);
            return;
        }
        decide(req, who, p, 0);
        return;
    }
    char *user, *pass;
    if (len > 6 && strncasecmp(az, "Basic ", 6) == 0 && auth_parse_basic(req, az + 6, len - 6, &user, &pass) == 0) {
        auth_login(req, user, pass, p, decide);
        return;
    }
    auth_challenge(req, NULL, 0);
}
