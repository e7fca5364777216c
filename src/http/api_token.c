/*
 * The token service of the Docker registry token protocol:
 *   GET  /token?service=&scope=…&scope=…[&offline_token=true][&client_id=]   Basic credentials or anonymous
 *   POST /token  grant_type=password|refresh_token, username, password, refresh_token, scope ("a b"), access_type,
 *                client_id
 * A refresh token remembers its client (client_id, else the first word of the User-Agent) for berth token list; an
 * access token minted from one with the refresh grant names it ("rid"), so that revoking it ends them too.
 * It grants the intersection of what was asked and what the policy allows (an empty grant is a valid answer),
 * and publishes berth's key as a JWKS at /token/jwks and /.well-known/jwks.json.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>
#include "util/secret.h"
#include "store/audit.h"
#include "http/gate.h"
#include "http/parse.h"
#include "http/work.h"
#include "util/log.h"
#include "util/status.h"

#define MAX_SCOPES TOKEN_MAX_ACCESS

typedef struct {
    scope_t scopes[MAX_SCOPES];
    size_t nscopes;
    int offline;        /* also issue a refresh token */
    int post;           /* the OAuth2 form: the answer carries `scope` */
    char *refresh;      /* the refresh token presented (refresh grant), answered back unchanged */
    int64_t refresh_id; /* its id */
    char client[65];    /* who asks: client_id, else the User-Agent's first word (for a new refresh token) */
    auth_principal_t *who;
} token_req_t;

typedef struct {
    write_work_t super;
    int64_t account_id, expires;
    char *secret;
    char *client;
    char *body;
    gate_actor_t actor;
} refresh_t;

typedef struct {
    write_work_t super;
    int64_t id, now;
    token_req_t *t;
} used_t;

/* The client of a token request, as the token list shows it: `client_id` if it is a plain word, else the
 * User-Agent's first word ("docker/27.0.3" of "docker/27.0.3 go/go1.21 …"), else "". Only [A-Za-z0-9._/:-]. */
static void client_of(h2o_req_t *req, const char *client_id, char *out, size_t len)
{
    static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/:-";
    out[0] = '\0';
    size_t n;
    if (client_id != NULL && *client_id != '\0' && strlen(client_id) < len &&
        strspn(client_id, ok) == strlen(client_id)) {
        snprintf(out, len, "%s", client_id);
        return;
    }
    const char *ua = req_header(req, "user-agent", &n);
    if (ua == NULL)
        return;
    size_t w = 0;
    while (w < n && w + 1 < len && strchr(ok, ua[w]) != NULL && ua[w] != '\0')
        ++w;
    memcpy(out, ua, w);
    out[w] = '\0';
}

static void add_scopes(token_req_t *t, const char *s)
{
    if (s != NULL && t->nscopes < MAX_SCOPES)
        t->nscopes += scope_parse_list(t->scopes + t->nscopes, MAX_SCOPES - t->nscopes, s, strlen(s));
}

static void iso8601(int64_t t, char *buf, size_t len)
{
    struct tm tm;
    time_t tt = (time_t)t;
    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int refresh_write(metastore_t *m, void *arg);
static void refresh_done(work_t *w);

/* With who known: grant, sign, answer (after storing a refresh token when one is asked for). */
static void issue(h2o_req_t *req, auth_principal_t *who, void *ctx, int status)
{
    token_req_t *t = ctx;
    if (status != 0)
        return; /* answered */
    thread_ctx_t *tc = thread_ctx_of(req);
    gate_actor_t actor;
    if (who->authenticated && !who->bearer) { /* a login (password, access token or refresh token), not a renewal */
        gate_actor(req, who, &actor);
        audit_record_t rec = {.actor = actor.name,
                              .token_id = actor.token_id,
                              .action = "login",
                              .address = actor.addr,
                              .detail = t->refresh != NULL ? "token service, refresh token"
                                        : who->via_token   ? "token service, access token"
                                                           : "token service, password"};
        audit_queue(&rec);
    }
    token_claims_t c;
    memset(&c, 0, sizeof(c));
    snprintf(c.sub, sizeof(c.sub), "%s", who->authenticated ? who->name : "");
    c.generation = who->generation;
    c.token_id = who->via_token ? who->token.id : 0;
    c.refresh_id = t->refresh_id;
    json_t *granted_scopes = json_array();
    for (size_t i = 0; i < t->nscopes; ++i) {
        const scope_t *s = &t->scopes[i];
        unsigned allowed;
        if (s->type == SCOPE_REGISTRY)
            allowed = strcmp(s->name, "catalog") == 0 && auth_policy_catalog(who) ? ACTION_ALL : 0;
        else
            allowed = auth_policy_actions(tc->db, who, s->name);
        unsigned got = s->actions & allowed;
        if (got == 0)
            continue;
        c.access[c.naccess] = *s;
        c.access[c.naccess].actions = got;
        c.naccess++;
        char acts[64], buf[512];
        snprintf(buf, sizeof(buf), "%s:%s:%s", s->type == SCOPE_REGISTRY ? "registry" : "repository", s->name,
                 scope_actions_format(got, acts, sizeof(acts)));
        json_array_append_new(granted_scopes, json_string(buf));
    }
    int64_t now = (int64_t)time(NULL), ttl = (int64_t)(berth.cfg.auth_token_ttl_ms / 1000);
    if (who->via_token && who->token.expires_at != 0 && who->token.expires_at - now < ttl)
        ttl = who->token.expires_at - now > 0 ? who->token.expires_at - now : 1; /* never outlive the access token */
    char *jwt = token_issue(auth_keys(), &c, now, ttl);
    if (jwt == NULL) {
        json_decref(granted_scopes);
        res_error(req, ERR_INTERNAL, "cannot sign a token", NULL);
        return;
    }
    char issued[32];
    iso8601(now, issued, sizeof(issued));
    json_t *body = json_pack("{s:s,s:s,s:I,s:s}", "token", jwt, "access_token", jwt, "expires_in", (json_int_t)ttl,
                             "issued_at", issued);
    free(jwt);
    if (t->post) {
        /* the OAuth2 answer names what was granted, space-separated */
        size_t n = json_array_size(granted_scopes), len = 0;
        char *joined = h2o_mem_alloc_pool(&req->pool, 4096);
        joined[0] = '\0';
        for (size_t i = 0; i < n && len < 3500; ++i)
            len += (size_t)snprintf(joined + len, 4096 - len, "%s%s", i ? " " : "",
                                    json_string_value(json_array_get(granted_scopes, i)));
        json_object_set_new(body, "scope", json_string(joined));
    }
    json_decref(granted_scopes);
    if (t->refresh != NULL) {
        json_object_set_new(body, "refresh_token", json_string(t->refresh));
    } else if (t->offline && who->authenticated && !who->bearer && !who->via_token) {
        /* no refresh token for a login with an access token: it would outlive the token's scope and revocation,
         * and the client can keep presenting the access token itself */
        refresh_t *r = calloc(1, sizeof(*r));
        r->account_id = who->account_id;
        r->expires = now + (int64_t)(berth.cfg.auth_refresh_ttl_ms / 1000);
        r->secret = secret_random(32);
        r->client = strdup(t->client);
        gate_actor(req, who, &r->actor);
        json_object_set_new(body, "refresh_token", json_string(r->secret));
        r->body = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        work_write(req, &r->super, refresh_write, refresh_done);
        return;
    }
    res_header(req, "cache-control", "no-store");
    res_json(req, 200, body);
}

static int refresh_write(metastore_t *m, void *arg)
{
    refresh_t *r = arg;
    int rc = accounts_refresh_add(m, r->account_id, r->secret, r->client, r->expires);
    char detail[128];
    snprintf(detail, sizeof(detail), "refresh token, client %s", r->client[0] ? r->client : "-");
    audit_record_t rec = {.actor = r->actor.name, .action = "token.create", .address = r->actor.addr, .detail = detail};
    return rc == 0 ? audit_insert(m, &rec) : rc;
}

static void refresh_done(work_t *w)
{
    refresh_t *r = (refresh_t *)w;
    if (w->req != NULL) {
        if (r->super.rc == 0) {
            res_header(w->req, "cache-control", "no-store");
            res_bytes(w->req, 200, "application/json", r->body, strlen(r->body));
        } else {
            res_error(w->req, ERR_INTERNAL, "cannot store the refresh token", NULL);
        }
    }
    OPENSSL_cleanse(r->secret, strlen(r->secret));
    free(r->secret);
    free(r->client);
    free(r->body);
    free(r);
}

/* A refresh grant: when the refresh token was last used is recorded (berth token list), then the token issued. */
static int used_write(metastore_t *m, void *arg)
{
    used_t *u = arg;
    return accounts_refresh_used(m, u->id, u->now);
}

static void used_done(work_t *w)
{
    used_t *u = (used_t *)w;
    if (w->req != NULL) {
        if (u->super.rc == 0)
            issue(w->req, u->t->who, u->t, 0);
        else
            res_error(w->req, ERR_INTERNAL, "cannot record the refresh token's use", NULL);
    }
    free(u);
}

static void token_get(h2o_req_t *req, token_req_t *t)
{
    for (int i = 0; i < MAX_SCOPES; ++i) {
        const char *s = req_query(req, "scope", i);
        if (s == NULL)
            break;
        add_scopes(t, s);
    }
    const char *off = req_query(req, "offline_token", 0);
    t->offline = off != NULL && strcmp(off, "true") == 0;
    client_of(req, req_query(req, "client_id", 0), t->client, sizeof(t->client));
    size_t len;
    const char *az = req_header(req, "authorization", &len);
    if (az == NULL) {
        gate_login(req, NULL, NULL, t, issue);
        return;
    }
    char *user = NULL, *pass = NULL;
    if (len > 6 && strncasecmp(az, "Basic ", 6) == 0)
        parse_basic(&req->pool, az + 6, len - 6, &user, &pass);
    if (user == NULL) {
        gate_challenge(req, NULL, 0);
        return;
    }
    gate_login(req, user, pass, t, issue);
}

static void token_post(h2o_req_t *req, token_req_t *t)
{
    const char *body = req->entity.base;
    size_t len = req->entity.len;
    h2o_mem_pool_t *pool = &req->pool;
    const char *grant = form_value(pool, body, len, "grant_type", 0);
    add_scopes(t, form_value(pool, body, len, "scope", 0));
    const char *access_type = form_value(pool, body, len, "access_type", 0);
    t->offline = access_type != NULL && strcmp(access_type, "offline") == 0;
    t->post = 1;
    client_of(req, form_value(pool, body, len, "client_id", 0), t->client, sizeof(t->client));
    if (grant != NULL && strcmp(grant, "password") == 0) {
        const char *user = form_value(pool, body, len, "username", 0),
                   *pass = form_value(pool, body, len, "password", 0);
        if (user == NULL || pass == NULL || *user == '\0') {
            res_error(req, ERR_UNAUTHORIZED, "username and password are required", NULL);
            return;
        }
        gate_login(req, user, pass, t, issue);
    } else if (grant != NULL && strcmp(grant, "refresh_token") == 0) {
        const char *rt = form_value(pool, body, len, "refresh_token", 0);
        int64_t account_id;
        account_t a = {0};
        thread_ctx_t *tc = thread_ctx_of(req);
        if (rt == NULL || accounts_refresh_check(tc->db, rt, (int64_t)time(NULL), &account_id, &t->refresh_id) != 0 ||
            accounts_get_by_id(tc->db, account_id, &a) != 0 || a.disabled) {
            account_dispose(&a);
            res_error(req, ERR_UNAUTHORIZED, "invalid refresh token", NULL);
            return;
        }
        auth_principal_t *who = h2o_mem_alloc_pool(pool, sizeof(*who));
        memset(who, 0, sizeof(*who));
        who->authenticated = 1;
        who->account_id = a.id;
        who->generation = a.generation;
        who->admin = a.admin;
        snprintf(who->name, sizeof(who->name), "%s", a.name);
        account_dispose(&a);
        t->refresh = (char *)rt; /* a refresh grant answers the same refresh token */
        t->who = who;
        used_t *u = calloc(1, sizeof(*u));
        u->id = t->refresh_id;
        u->now = (int64_t)time(NULL);
        u->t = t;
        work_write(req, &u->super, used_write, used_done);
    } else {
        res_error(req, ERR_UNSUPPORTED, "grant_type must be password or refresh_token", NULL);
    }
}

void api_token(h2o_req_t *req)
{
    token_req_t *t = h2o_mem_alloc_pool(&req->pool, sizeof(*t));
    memset(t, 0, sizeof(*t));
    if (method_is(req, "GET")) /* or POST: the router let nothing else through */
        token_get(req, t);
    else
        token_post(req, t);
}

void api_jwks(h2o_req_t *req)
{
    char *jwks = token_jwks(auth_keys());
    res_header(req, "cache-control", "max-age=300");
    res_bytes(req, 200, "application/json", jwks, strlen(jwks));
    free(jwks);
}
