#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "auth/decide.h"
#include "auth/limiter.h"
#include "auth/password.h"
#include "auth/principal.h"
#include "util/log.h"
#include "util/cache.h"
#include "util/time.h"

#define CACHE_SLOTS 256
#define BEARER_CACHE_S 300 /* a verified Bearer token is trusted this long without asking the store again */

static struct {
    token_keys_t keys;
    limiter_t *limiter;      /* per (account, address) */
    limiter_t *addr_limiter; /* per address, whatever the account name: against password spraying */
    int64_t credential_ttl_s;
    unsigned char hmac_key[32]; /* keys the caches and the limiter: an HMAC of the credentials, never the password */
    auth_cache_t *shared;       /* passwords verified on any loop, behind the per-loop caches; under shared_lock */
    pthread_mutex_t shared_lock;
    /* the external issuer's keys, read again every auth.external_keys_refresh by the refresher thread */
    pthread_rwlock_t keys_lock; /* verifiers read auth.keys under it; the refresher swaps the external keys */
    uint64_t keys_epoch;        /* moves when the external keys change: a stamp of the caches (atomic) */
    auth_fetch_fn fetch;        /* gets an http(s) URL (set by auth_set_fetcher) */
    struct {
        char *source, *issuer;
        uint64_t every_ms;
        char *last; /* what was read last time, to skip an unchanged document */
        size_t last_len;
        int running, stop, first_done;
        pthread_t thread;
        pthread_mutex_t mu;
        pthread_cond_t cond;
    } ext;
} auth = {.shared_lock = PTHREAD_MUTEX_INITIALIZER,
          .keys_lock = PTHREAD_RWLOCK_INITIALIZER,
          .ext = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER}};

struct auth_cache {
    cache_t *entries; /* 'c' passwords and 't' Bearer tokens, keyed by an HMAC of them, stamped with the auth generation
                         plus one; the value: the principal, and num[0] the second it expires */
};

struct auth_check {
    char *password;
    char *hash;
    int ok;
    unsigned char cache_key[32], limit_key[LIMITER_KEY_LEN], addr_key[LIMITER_KEY_LEN];
    uint64_t cache_gen; /* the cache's stamp when the check began */
    auth_principal_t who;
};

void auth_set_fetcher(auth_fetch_fn fn)
{
    auth.fetch = fn;
}

static int is_url(const char *s)
{
    return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

/* Read the external keys' source again; swap the keys in if the document changed and is good (else keep them). */
static void ext_reload(void)
{
    char *data = NULL, *err = NULL, why[256] = "";
    size_t len = 0;
    if (is_url(auth.ext.source)) {
        if (auth.fetch == NULL || auth.fetch(auth.ext.source, &data, &len, why, sizeof(why)) != 0) {
            log_warn("auth.external_keys %s: cannot fetch it (%s); the keys read before stay", auth.ext.source,
                     auth.fetch == NULL ? "no HTTP client" : why);
            return;
        }
    } else {
        FILE *f = fopen(auth.ext.source, "rb");
        data = malloc(1024 * 1024 + 1);
        if (f == NULL || (len = fread(data, 1, 1024 * 1024 + 1, f)) == 0 || ferror(f) || len > 1024 * 1024) {
            log_warn("auth.external_keys %s: cannot read it; the keys read before stay", auth.ext.source);
            if (f != NULL)
                fclose(f);
            free(data);
            return;
        }
        fclose(f);
    }
    if (auth.ext.last != NULL && len == auth.ext.last_len && memcmp(data, auth.ext.last, len) == 0) {
        free(data);
        return; /* unchanged */
    }
    pthread_rwlock_wrlock(&auth.keys_lock);
    int rc = token_keys_replace_external(&auth.keys, data, len, auth.ext.source, auth.ext.issuer, &err);
    size_t n = auth.keys.nexternal;
    pthread_rwlock_unlock(&auth.keys_lock);
    if (rc != 0) {
        log_warn("auth.external_keys: %s; the keys read before stay", err);
        free(err);
        free(data);
        return;
    }
    __atomic_add_fetch(&auth.keys_epoch, 1, __ATOMIC_RELEASE); /* what the caches verified with the old keys goes */
    log_info("auth.external_keys %s: %zu key%s of issuer %s", auth.ext.source, n, n == 1 ? "" : "s", auth.ext.issuer);
    free(auth.ext.last);
    auth.ext.last = data;
    auth.ext.last_len = len;
}

static void *ext_refresher(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&auth.ext.mu);
    for (int first = 1; !auth.ext.stop; first = 0) {
        if (!first) {
            struct timespec until = time_mono_ts(time_mono_ms() + auth.ext.every_ms);
            pthread_cond_timedwait(&auth.ext.cond, &auth.ext.mu, &until);
            if (auth.ext.stop)
                break;
        }
        pthread_mutex_unlock(&auth.ext.mu);
        ext_reload();
        pthread_mutex_lock(&auth.ext.mu);
        if (first) {
            auth.ext.first_done = 1;
            pthread_cond_broadcast(&auth.ext.cond);
        }
    }
    pthread_mutex_unlock(&auth.ext.mu);
    return NULL;
}

/* The refresher thread: its first read (an URL's first fetch) done before this returns. */
static void ext_start(const config_t *cfg, const char *issuer)
{
    auth.ext.source = strdup(cfg->auth_external_keys);
    auth.ext.issuer = strdup(issuer);
    auth.ext.every_ms = cfg->auth_external_keys_refresh_ms ? cfg->auth_external_keys_refresh_ms : 300000;
    auth.ext.stop = auth.ext.first_done = 0;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_destroy(&auth.ext.cond);
    pthread_cond_init(&auth.ext.cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&auth.ext.thread, NULL, ext_refresher, NULL) != 0) {
        log_error("auth.external_keys: cannot start the thread that reads it again");
        return;
    }
    auth.ext.running = 1;
    pthread_mutex_lock(&auth.ext.mu);
    while (!auth.ext.first_done)
        pthread_cond_wait(&auth.ext.cond, &auth.ext.mu);
    pthread_mutex_unlock(&auth.ext.mu);
}

static void ext_stop(void)
{
    if (auth.ext.running) {
        pthread_mutex_lock(&auth.ext.mu);
        auth.ext.stop = 1;
        pthread_cond_broadcast(&auth.ext.cond);
        pthread_mutex_unlock(&auth.ext.mu);
        pthread_join(auth.ext.thread, NULL);
        auth.ext.running = 0;
    }
    free(auth.ext.source);
    free(auth.ext.issuer);
    free(auth.ext.last);
    auth.ext.source = auth.ext.issuer = auth.ext.last = NULL;
    auth.ext.last_len = 0;
}

static auth_cache_t *cache_make(const char *name);

/* For /metrics: failed logins by kind, and logins refused by the rate limiter (rare: relaxed atomic adds). */
static uint64_t failures[AUTH_FAIL_KINDS], limited;

static void count(uint64_t *c)
{
    __atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

void auth_stats(auth_stats_t *out)
{
    for (int i = 0; i < AUTH_FAIL_KINDS; ++i)
        out->failures[i] = __atomic_load_n(&failures[i], __ATOMIC_RELAXED);
    out->limited = __atomic_load_n(&limited, __ATOMIC_RELAXED);
}

int auth_init(const config_t *cfg, int (*mirror_creates)(const char *repo), char **err)
{
    char path[4096];
    access_policy_t policy = {(access_mode_t)access_mode_from_name(cfg->mode), cfg->auth_private_default_pull};
    auth_decide_init(&policy, mirror_creates);
    metastore_new_repos_public = access_new_repo_public(policy.mode);
    auth.credential_ttl_s = (int64_t)(cfg->auth_credential_cache_ttl_ms / 1000);
    if (RAND_bytes(auth.hmac_key, sizeof(auth.hmac_key)) != 1) {
        *err = strdup("no randomness");
        return -1;
    }
    if (cfg->auth_key != NULL)
        snprintf(path, sizeof(path), "%s", cfg->auth_key);
    else
        snprintf(path, sizeof(path), "%s/keys/token.pem", cfg->storage_root);
    if (token_keys_init(&auth.keys, path, cfg->auth_issuer, cfg->auth_service, err) != 0)
        return -1;
    const char *ext_issuer = cfg->auth_external_issuer ? cfg->auth_external_issuer : cfg->auth_issuer;
    /* a file must be good at start; a URL's issuer may be down for now (its keys come with a later fetch) */
    if (cfg->auth_external_keys != NULL && !is_url(cfg->auth_external_keys) &&
        token_keys_add_external(&auth.keys, cfg->auth_external_keys, ext_issuer, err) != 0) {
        auth_dispose();
        return -1;
    }
    if (cfg->auth_external_keys != NULL)
        ext_start(cfg, ext_issuer);
    auth.shared = cache_make("credentials_shared");
    auth.limiter = limiter_new(cfg->auth_login_failures, cfg->auth_login_backoff_ms);
    auth.addr_limiter = limiter_new(cfg->auth_login_failures_per_address, cfg->auth_login_backoff_ms);
    return 0;
}

void auth_dispose(void)
{
    ext_stop();
    token_keys_dispose(&auth.keys);
    limiter_free(auth.limiter);
    limiter_free(auth.addr_limiter);
    auth_cache_free(auth.shared);
    OPENSSL_cleanse(&auth, offsetof(typeof(auth), shared_lock));
    auth.shared = NULL;
}

const token_keys_t *auth_keys(void)
{
    return &auth.keys;
}

/* A cache of credentials, its lookups counted under `name` for /metrics. */
static auth_cache_t *cache_make(const char *name)
{
    auth_cache_t *cache = calloc(1, sizeof(*cache));
    if (cache != NULL && (cache->entries = cache_new(CACHE_SLOTS, sizeof(auth_principal_t))) == NULL) {
        free(cache);
        cache = NULL;
    }
    if (cache != NULL)
        cache_count(cache->entries, name);
    return cache;
}

auth_cache_t *auth_cache_new(void)
{
    return cache_make("credentials");
}

void auth_cache_free(auth_cache_t *cache)
{
    if (cache != NULL)
        cache_free(cache->entries); /* wipes what it held: HMACs of passwords */
    free(cache);
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

/* The stamp of cache entries: the auth generation, which moves with anything that can take rights away (also a CLI
 * run in another process), plus one; 0 (do not cache) when the store cannot say. */
static uint64_t cache_gen(metastore_t *db)
{
    int64_t g = accounts_generation(db); /* no query while nothing was written */
    /* and the external keys' epoch above: a token verified with a key rotated out is verified again */
    return g < 0 ? 0 : ((uint64_t)g + 1) + (__atomic_load_n(&auth.keys_epoch, __ATOMIC_ACQUIRE) << 40);
}

/* 1 with *who filled (and *until, the second it expires, unless NULL) if `key` of `kind` is cached at `gen` and
 * unexpired at `now`. */
static int cached(auth_cache_t *cache, char kind, const unsigned char *key, uint64_t gen, int64_t now,
                  auth_principal_t *who, int64_t *until)
{
    char hex[65];
    if (cache == NULL || gen == 0)
        return 0;
    for (int i = 0; i < 32; ++i)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    cache_key_t k = cache_key(kind, hex, "");
    const cache_value_t *v = cache_get(cache->entries, gen, &k);
    if (v == NULL || v->num[0] <= now)
        return 0;
    memcpy(who, v->data, sizeof(*who));
    if (until != NULL)
        *until = v->num[0];
    return 1;
}

static void cache_keep(auth_cache_t *cache, char kind, const unsigned char *key, uint64_t gen, int64_t until,
                       const auth_principal_t *who);

/* A password known good at `gen`: in this loop's `cache`, else in the shared one (a client's connections land on
 * any loop; without this each loop would hash the password again, and the connection watchdog, which asks only
 * its own loop, would cut an upload whose password another loop verified). Found in the shared one, it is copied
 * into `cache`. */
static int password_cached(auth_cache_t *cache, const unsigned char *key, uint64_t gen, auth_principal_t *who)
{
    int64_t now = time_now_s();
    int64_t until;
    if (cached(cache, 'c', key, gen, now, who, NULL))
        return 1;
    pthread_mutex_lock(&auth.shared_lock);
    int found = cached(auth.shared, 'c', key, gen, now, who, &until);
    pthread_mutex_unlock(&auth.shared_lock);
    if (found)
        cache_keep(cache, 'c', key, gen, until, who);
    return found;
}

static void cache_keep(auth_cache_t *cache, char kind, const unsigned char *key, uint64_t gen, int64_t until,
                       const auth_principal_t *who)
{
    char hex[65];
    auth_principal_t *copy;
    cache_value_t *v;
    if (cache == NULL || gen == 0 || (copy = malloc(sizeof(*copy))) == NULL)
        return;
    for (int i = 0; i < 32; ++i)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    cache_key_t k = cache_key(kind, hex, "");
    *copy = *who;
    if ((v = cache_put(cache->entries, gen, &k, copy, sizeof(*copy))) == NULL) {
        free(copy);
        return;
    }
    v->num[0] = until;
}

static void fill_principal(auth_principal_t *who, const account_t *a)
{
    who->authenticated = 1;
    who->account_id = a->id;
    who->generation = a->generation;
    snprintf(who->name, sizeof(who->name), "%s", a->name);
    who->admin = a->admin;
}

/* An access-token secret presented as the password of `user`: 0 with *who filled, or -1. */
static int access_token_login(metastore_t *db, const char *user, const char *secret, auth_principal_t *who)
{
    access_token_t t;
    account_t a = {0};
    int rc = -1;
    if (accounts_token_check(db, secret, time_now_s(), &t) == 0 && accounts_get_by_id(db, t.account_id, &a) == 0 &&
        !a.disabled && strcmp(a.name, user) == 0) {
        fill_principal(who, &a);
        who->via_token = 1;
        who->token = t;
        rc = 0;
    }
    account_dispose(&a);
    return rc;
}

/* The check of `password` against the hash of `user` (or a dummy hash): always made, so that timing says nothing. */
static auth_check_t *check_new(metastore_t *db, const char *user, const char *password)
{
    auth_check_t *c = calloc(1, sizeof(*c));
    account_t a = {0};
    if (accounts_get(db, user, &a) == 0 && !a.disabled && a.kind == ACCOUNT_USER && a.password_hash != NULL) {
        c->hash = strdup(a.password_hash);
        fill_principal(&c->who, &a);
    }
    account_dispose(&a);
    /* an unknown user costs a hash too, so that timing does not tell which names exist */
    if (c->hash == NULL)
        c->hash = strdup("$y$j9T$0123456789abcdefghijk.$0123456789abcdefghijklmnopqrstuvwxyzABCDE");
    c->password = strdup(password);
    return c;
}

auth_status_t auth_basic(auth_cache_t *cache, metastore_t *db, const char *user, const char *password,
                         auth_client_fn client, void *client_ctx, auth_principal_t *who, int64_t *wait_ms,
                         auth_check_t **check)
{
    memset(who, 0, sizeof(*who));
    if (user == NULL)
        return AUTH_OK;
    uint64_t gen = cache_gen(db);
    /* an access token: a high-entropy secret, checked at once. A wrong one cannot be guessed, so it does not count
     * as a failed login; passwords may not begin with "berth_" (the CLI refuses them): nothing else to check */
    if (strncmp(password, "berth_", 6) == 0) {
        if (access_token_login(db, user, password, who) == 0)
            return AUTH_OK;
        count(&failures[AUTH_FAIL_ACCESS_TOKEN]);
        return AUTH_DENIED;
    }
    unsigned char ck[32], lk[LIMITER_KEY_LEN], ak[LIMITER_KEY_LEN];
    hmac(ck, user, strlen(user), password, strlen(password));
    if (password_cached(cache, ck, gen, who))
        return AUTH_OK;
    char addr[64] = "";
    client(client_ctx, addr, sizeof(addr)); /* only now: a cached password needs no address */
    hmac(lk, user, strlen(user), addr, strlen(addr));
    hmac(ak, "", 1, addr, strlen(addr)); /* "\0": no user name */
    int64_t now = (int64_t)time_mono_ms(), by_addr = limiter_wait(auth.addr_limiter, ak, now);
    *wait_ms = limiter_wait(auth.limiter, lk, now);
    if (by_addr > *wait_ms)
        *wait_ms = by_addr;
    if (*wait_ms > 0) {
        count(&limited);
        return AUTH_LIMITED;
    }
    *check = check_new(db, user, password);
    memcpy((*check)->cache_key, ck, sizeof(ck));
    memcpy((*check)->limit_key, lk, sizeof(lk));
    memcpy((*check)->addr_key, ak, sizeof(ak));
    (*check)->cache_gen = gen;
    return AUTH_CHECK;
}

int auth_basic_known(auth_cache_t *cache, metastore_t *db, const char *user, const char *password)
{
    auth_principal_t who;
    if (strncmp(password, "berth_", 6) == 0)
        return access_token_login(db, user, password, &who) == 0;
    unsigned char ck[32];
    hmac(ck, user, strlen(user), password, strlen(password));
    return password_cached(cache, ck, cache_gen(db), &who);
}

void auth_check_run(auth_check_t *check)
{
    check->ok = password_verify(check->password, check->hash) && check->who.authenticated;
}

int auth_check_finish(auth_check_t *check, auth_cache_t *cache, auth_principal_t *who)
{
    int ok = check->ok;
    limiter_record(auth.limiter, check->limit_key, ok, (int64_t)time_mono_ms());
    if (!ok) /* a success does not restore an address's budget: one good account must not reset a spray */
        limiter_record(auth.addr_limiter, check->addr_key, 0, (int64_t)time_mono_ms());
    if (ok && cache != NULL && auth.credential_ttl_s > 0) {
        int64_t until = time_now_s() + auth.credential_ttl_s;
        cache_keep(cache, 'c', check->cache_key, check->cache_gen, until, &check->who);
        pthread_mutex_lock(&auth.shared_lock);
        cache_keep(auth.shared, 'c', check->cache_key, check->cache_gen, until, &check->who);
        pthread_mutex_unlock(&auth.shared_lock);
    }
    if (ok)
        *who = check->who;
    else
        count(&failures[AUTH_FAIL_PASSWORD]);
    OPENSSL_cleanse(check->password, strlen(check->password));
    free(check->password);
    free(check->hash);
    OPENSSL_cleanse(check, sizeof(*check));
    free(check);
    return ok;
}

/*
 * berth's own token for an account: the account must still be enabled, at the generation it was issued at, and the
 * access token or refresh token it came from still usable. 0 with *who completed, or -1.
 */
static int bearer_account(metastore_t *db, int64_t now, auth_principal_t *who)
{
    account_t a = {0};
    int rc = accounts_get(db, who->claims.sub, &a);
    int usable = rc == 0 && !a.disabled && a.generation == who->claims.generation;
    if (usable && who->claims.token_id != 0) {
        /* issued from an access token: that token's scope and expiry still bound what this one may do */
        usable = accounts_token_get(db, who->claims.token_id, now, &who->token) == 0 && who->token.account_id == a.id;
        who->via_token = usable;
    }
    /* minted from a refresh token: that one must not have been revoked (berth token revoke rID) */
    if (usable && who->claims.refresh_id != 0)
        usable = accounts_refresh_usable(db, who->claims.refresh_id, now);
    if (usable)
        fill_principal(who, &a);
    account_dispose(&a);
    if (!usable) {
        log_debug("bearer token of %s refused: account disabled, changed or token revoked", who->claims.sub);
        return -1;
    }
    return 0;
}

int auth_bearer(auth_cache_t *cache, metastore_t *db, const char *jwt, size_t len, auth_principal_t *who)
{
    unsigned char key[32];
    char err[128];
    int64_t now = time_now_s();
    uint64_t gen = cache_gen(db);
    hmac(key, "bearer", 6, jwt, len);
    if (cached(cache, 't', key, gen, now, who, NULL))
        return 0;
    memset(who, 0, sizeof(*who));
    pthread_rwlock_rdlock(&auth.keys_lock);
    int bad = token_verify(&auth.keys, jwt, len, now, &who->claims, err, sizeof(err)) != 0;
    pthread_rwlock_unlock(&auth.keys_lock);
    if (bad) {
        log_debug("bearer token refused: %s", err);
        count(&failures[AUTH_FAIL_BEARER]);
        return -1;
    }
    who->bearer = 1;
    if (who->claims.sub[0] != '\0' && !who->claims.external) {
        if (bearer_account(db, now, who) != 0) {
            count(&failures[AUTH_FAIL_BEARER]);
            return -1;
        }
    } else if (who->claims.sub[0] != '\0') {
        who->authenticated = 1; /* an external issuer's subject: what it may do is in the token */
        snprintf(who->name, sizeof(who->name), "%.*s", (int)sizeof(who->name) - 1, who->claims.sub);
    }
    int64_t until = who->claims.exp < now + BEARER_CACHE_S ? who->claims.exp : now + BEARER_CACHE_S;
    if (who->via_token && who->token.expires_at != 0 && who->token.expires_at < until)
        until = who->token.expires_at; /* an access token's expiry bumps no generation */
    cache_keep(cache, 't', key, gen, until, who);
    return 0;
}
