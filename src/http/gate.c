#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "auth/limiter.h"
#include "http/conns.h"
#include "http/gate.h"
#include "http/parse.h"
#include "oci/name.h"
#include "store/audit.h"
#include "http/work.h"
#include "util/status.h"

/* this loop's caches of verified credentials (made and freed by the loop hooks below) */
static __thread auth_cache_t *cache;

/* The address the rate limiter keys on: the peer's, or behind a trusted proxy what it says the client's is. */
static void client_addr(void *ctx, char *buf, size_t len)
{
    h2o_req_t *req = ctx;
    struct sockaddr_storage ss;
    char peer[INET6_ADDRSTRLEN];
    socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    conns_addr_format((struct sockaddr *)&ss, sl, peer, sizeof(peer));
    size_t xl = 0;
    const char *xff = req_header(req, "x-forwarded-for", &xl);
    limiter_client_addr(buf, len, peer, xff, xl, berth.cfg.auth_trusted_proxies);
}

void gate_actor(h2o_req_t *req, const auth_principal_t *who, gate_actor_t *out)
{
    if (who != NULL && who->authenticated && who->name[0] != '\0')
        snprintf(out->name, sizeof(out->name), "%s", who->name);
    else if (who != NULL && who->bearer && who->claims.sub[0] != '\0') /* an external issuer's subject */
        snprintf(out->name, sizeof(out->name), "%.*s", ACCOUNT_NAME_MAX, who->claims.sub);
    else
        snprintf(out->name, sizeof(out->name), "anonymous");
    out->token_id = who == NULL ? 0 : who->via_token ? who->token.id : who->bearer ? who->claims.token_id : 0;
    client_addr(req, out->addr, sizeof(out->addr));
}

/* A failed login, for the audit log: queued (no write of its own), a burst folded into one row with a count. The
 * name as presented, cut to an account name's length and to printable characters. */
static void audit_failure(h2o_req_t *req, const char *user, const char *why)
{
    char name[ACCOUNT_NAME_MAX + 1], addr[64];
    size_t i = 0;
    for (; user != NULL && user[i] != '\0' && i < ACCOUNT_NAME_MAX; ++i)
        name[i] = user[i] > ' ' && user[i] < 0x7f ? user[i] : '?';
    name[i] = '\0';
    client_addr(req, addr, sizeof(addr));
    audit_record_t r = {.actor = i ? name : "anonymous", .action = "login.failed", .address = addr, .detail = why};
    audit_queue(&r);
}

static void too_many(h2o_req_t *req, int64_t wait_ms)
{
    res_headerf(req, "retry-after", "%lld", (long long)((wait_ms + 999) / 1000));
    res_error(req, ERR_TOOMANYREQUESTS, "too many failed logins; retry later", NULL);
}

/* ---- logins: passwords on workers, access tokens at once ---- */

typedef struct {
    work_t super;
    auth_check_t *check;
    char user[ACCOUNT_NAME_MAX + 1];
    void *ctx;
    void (*done)(h2o_req_t *req, auth_principal_t *who, void *ctx, int status);
} login_t;

static void login_run(work_t *w)
{
    auth_check_run(((login_t *)w)->check);
}

static void login_done(work_t *w)
{
    login_t *l = (login_t *)w;
    h2o_req_t *req = w->req;
    auth_principal_t who;
    int ok = auth_check_finish(l->check, req != NULL ? cache : NULL, &who);
    if (req != NULL) {
        if (ok) {
            auth_principal_t *p = h2o_mem_alloc_pool(&req->pool, sizeof(*p));
            *p = who;
            l->done(req, p, l->ctx, 0);
        } else {
            audit_failure(req, l->user, "wrong password or unknown user");
            gate_challenge(req, NULL, 0);
            l->done(req, NULL, l->ctx, 401);
        }
    }
    free(l);
}

void gate_login(h2o_req_t *req, const char *user, const char *password, void *ctx,
                void (*done)(h2o_req_t *req, auth_principal_t *who, void *ctx, int status))
{
    thread_ctx_t *tc = thread_ctx_of(req);
    auth_principal_t *who = h2o_mem_alloc_pool(&req->pool, sizeof(*who));
    int64_t wait = 0;
    auth_check_t *check = NULL;
    switch (auth_basic(cache, tc->db, user, password, client_addr, req, who, &wait, &check)) {
    case AUTH_OK:
        done(req, who, ctx, 0);
        break;
    case AUTH_DENIED:
        audit_failure(req, user, "wrong access token");
        gate_challenge(req, NULL, 0);
        done(req, NULL, ctx, 401);
        break;
    case AUTH_LIMITED:
        audit_failure(req, user, "refused: too many failed logins");
        too_many(req, wait);
        done(req, NULL, ctx, 429);
        break;
    case AUTH_CHECK: {
        login_t *l = calloc(1, sizeof(*l));
        l->check = check;
        snprintf(l->user, sizeof(l->user), "%.*s", ACCOUNT_NAME_MAX, user != NULL ? user : "");
        l->ctx = ctx;
        l->done = done;
        work_submit_to(WORK_CPU, req, &l->super, login_run, login_done);
        break;
    }
    }
}

void gate_challenge(h2o_req_t *req, const char *scope, int insufficient)
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
    gate_then_t then;
    gate_then_t (*route)(route_t *r, gate_then_t then); /* NULL, or the step before authorization */
} pending_t;

static void decide(h2o_req_t *req, auth_principal_t *who, void *ctx, int status)
{
    pending_t *p = ctx;
    route_t *r = p->r;
    if (status != 0)
        return; /* already answered */
    r->who = who;
    if (p->route != NULL && (p->then = p->route(r, p->then)) == NULL)
        return; /* answered */
    char scope[512] = "";
    if (r->name != NULL) {
        char acts[64];
        snprintf(scope, sizeof(scope), "repository:%s:%s", r->name,
                 scope_actions_format(p->actions, acts, sizeof(acts)));
    } else if (p->catalog) {
        snprintf(scope, sizeof(scope), "registry:catalog:*");
    }
    if (!auth_allows(r->tc->db, who, r->name, p->actions, p->catalog)) {
        gate_challenge(req, scope[0] ? scope : NULL, p->presented);
        return;
    }
    p->then(r);
}

static void require(route_t *r, unsigned actions, int catalog, gate_then_t (*route)(route_t *r, gate_then_t then),
                    gate_then_t then)
{
    h2o_req_t *req = r->req;
    static auth_principal_t open_principal;
    if (auth_mode() == MODE_OPEN) {
        r->who = &open_principal;
        if (route == NULL || (then = route(r, then)) != NULL)
            then(r);
        return;
    }
    pending_t *p = h2o_mem_alloc_pool(&req->pool, sizeof(*p));
    *p = (pending_t){r, actions, catalog, 0, then, route};
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
        if (auth_bearer(cache, r->tc->db, az + 7, len - 7, who) != 0) {
            gate_challenge(req, NULL, 0);
            return;
        }
        decide(req, who, p, 0);
        return;
    }
    char *user, *pass;
    if (len > 6 && strncasecmp(az, "Basic ", 6) == 0 && parse_basic(&req->pool, az + 6, len - 6, &user, &pass) == 0) {
        gate_login(req, user, pass, p, decide);
        return;
    }
    gate_challenge(req, NULL, 0);
}

void gate_require(route_t *r, unsigned actions, int catalog, void (*then)(route_t *r))
{
    require(r, actions, catalog, NULL, then);
}

void gate_require_routed(route_t *r, unsigned actions, gate_then_t (*route)(route_t *r, gate_then_t then),
                         gate_then_t then)
{
    require(r, actions, 0, route, then);
}

int gate_head_authenticated(thread_ctx_t *tc, const char *head, size_t len)
{
    h2o_iovec_t az;
    if (auth_mode() == MODE_OPEN)
        return 1;
    if (!parse_head_header(head, len, "authorization", &az))
        return 0;
    if (az.len > 7 && strncasecmp(az.base, "Bearer ", 7) == 0) {
        auth_principal_t who;
        return auth_bearer(cache, tc->db, az.base + 7, az.len - 7, &who) == 0 && who.authenticated;
    }
    int known = 0;
    if (az.len > 6 && strncasecmp(az.base, "Basic ", 6) == 0) {
        h2o_mem_pool_t pool;
        h2o_mem_init_pool(&pool);
        char *user, *pass;
        if (parse_basic(&pool, az.base + 6, az.len - 6, &user, &pass) == 0) {
            known = auth_basic_known(cache, tc->db, user, pass);
            OPENSSL_cleanse(pass, strlen(pass));
        }
        h2o_mem_clear_pool(&pool);
    }
    return known;
}

static void on_loop_init(thread_ctx_t *tc)
{
    cache = auth_cache_new();
}

static void on_loop_dispose(thread_ctx_t *tc)
{
    auth_cache_free(cache);
    cache = NULL;
}

const server_hooks_t gate_hooks = {.loop_init = on_loop_init, .loop_dispose = on_loop_dispose};
