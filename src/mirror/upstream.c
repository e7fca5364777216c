#define CURL_DISABLE_TYPECHECK /* the calls go through C below, not curl's macros */
#include <ctype.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include "mirror/challenge.h"
#include "mirror/upstream.h"
#include "util/log.h"

#define TOKENS 32 /* cached upstream tokens per mirror, one per repository scope */
#define TOKEN_MAX (64 * 1024)

struct upstream {
    char *base;     /* "https://registry-1.docker.io", no trailing slash */
    char *username; /* NULL: anonymous */
    char *password;
    long timeout_ms;
    int tls_verify;
    char *ca_file; /* NULL: the system's */
    char *agent;   /* User-Agent */
    pthread_mutex_t mu;
    struct {
        char *scope; /* "repository:library/alpine:pull" */
        char *token; /* NULL: use Basic credentials */
        time_t until;
    } tokens[TOKENS];
    unsigned next; /* the slot to replace when all are taken */
};

/* One transfer's state, for curl's callbacks. */
typedef struct {
    CURL *c;
    const upstream_sink_t *sink;
    upstream_resp_t *resp;
    int state; /* 0 no body yet, 1 a 2xx body going to the sink, 2 an error body, 3 the sink aborted */
    size_t errlen;
    char challenge[1024];     /* WWW-Authenticate of a 401 */
    const upstream_req_t *rq; /* the body to send, if any */
    uint64_t sent;
} xfer_t;

/*
 * libcurl is opened when the first mirror is set up, not linked: with its TLS, Kerberos and LDAP libraries it
 * would add about 3.5 MiB to the resident size of every berth, mirror or not.
 */
static struct {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *c);
    void (*easy_reset)(CURL *c);
    CURLcode (*easy_setopt)(CURL *c, CURLoption opt, ...);
    CURLcode (*easy_perform)(CURL *c);
    CURLcode (*easy_getinfo)(CURL *c, CURLINFO info, ...);
    const char *(*easy_strerror)(CURLcode rc);
    char *(*easy_escape)(CURL *c, const char *s, int len);
    void (*free)(void *p);
    struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
    void (*slist_free_all)(struct curl_slist *l);
} C;

static pthread_key_t curl_key;

static void free_handle(void *c)
{
    C.easy_cleanup(c);
}

static int loaded; /* atomic: C is filled */
static pthread_mutex_t load_mu = PTHREAD_MUTEX_INITIALIZER;

static int load(void)
{
    void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        log_error("mirrors need libcurl (Debian package libcurl4): %s", dlerror());
        return -1;
    }
    static const char *const names[] = {"curl_global_init",  "curl_easy_init",     "curl_easy_cleanup",
                                        "curl_easy_reset",   "curl_easy_setopt",   "curl_easy_perform",
                                        "curl_easy_getinfo", "curl_easy_strerror", "curl_easy_escape",
                                        "curl_free",         "curl_slist_append",  "curl_slist_free_all"};
    void **slots = (void **)&C;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); ++i) {
        if ((slots[i] = dlsym(lib, names[i])) == NULL) {
            log_error("libcurl.so.4 lacks %s", names[i]);
            memset(&C, 0, sizeof(C));
            return -1;
        }
    }
    C.global_init(CURL_GLOBAL_DEFAULT);
    pthread_key_create(&curl_key, free_handle);
    return 0;
}

/* Thread-safe: the mirrors call it at start-up, the external keys' refresher and the webhooks' threads when they
 * first need it; a failure is tried again on the next call. */
int upstream_global_init(void)
{
    if (__atomic_load_n(&loaded, __ATOMIC_ACQUIRE))
        return 0;
    pthread_mutex_lock(&load_mu);
    int rc = 0;
    if (!__atomic_load_n(&loaded, __ATOMIC_RELAXED) && (rc = load()) == 0)
        __atomic_store_n(&loaded, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&load_mu);
    return rc;
}

/* This thread's handle: kept for the thread's life so that its connections to the upstream are reused. */
static CURL *handle(void)
{
    CURL *c = pthread_getspecific(curl_key);
    if (c == NULL && (c = C.easy_init()) != NULL)
        pthread_setspecific(curl_key, c);
    return c;
}

upstream_t *upstream_open(const upstream_opts_t *o)
{
    upstream_t *u = calloc(1, sizeof(*u));
    u->base = strdup(o->base);
    if (o->username != NULL && *o->username != '\0') {
        u->username = strdup(o->username);
        u->password = strdup(o->password ? o->password : "");
    }
    u->timeout_ms = (long)o->timeout_ms;
    u->tls_verify = o->tls_verify;
    u->ca_file = o->ca_file != NULL && *o->ca_file != '\0' ? strdup(o->ca_file) : NULL;
    if (asprintf(&u->agent, "%s/%s", o->agent ? o->agent : "berth", PACKAGE_VERSION) < 0)
        u->agent = NULL;
    pthread_mutex_init(&u->mu, NULL);
    return u;
}

upstream_t *upstream_new(const config_mirror_t *cfg)
{
    upstream_opts_t o = {cfg->upstream, cfg->username, cfg->password, cfg->timeout_ms, 1, NULL, "berth-mirror"};
    return upstream_open(&o);
}

static void forget_token(upstream_t *u, unsigned i)
{
    free(u->tokens[i].scope);
    if (u->tokens[i].token != NULL)
        explicit_bzero(u->tokens[i].token, strlen(u->tokens[i].token));
    free(u->tokens[i].token);
    u->tokens[i].scope = u->tokens[i].token = NULL;
}

void upstream_free(upstream_t *u)
{
    if (u == NULL)
        return;
    for (unsigned i = 0; i < TOKENS; ++i)
        forget_token(u, i);
    free(u->base);
    free(u->ca_file);
    free(u->agent);
    free(u->username);
    if (u->password != NULL)
        explicit_bzero(u->password, strlen(u->password));
    free(u->password);
    pthread_mutex_destroy(&u->mu);
    free(u);
}

/* ---- the token cache ---- */

/* 1 and a malloc'd copy of the token in *token (NULL: Basic) if `scope` has a live entry, else 0. */
static int cached_token(upstream_t *u, const char *scope, char **token)
{
    int found = 0;
    time_t now = time(NULL);
    pthread_mutex_lock(&u->mu);
    for (unsigned i = 0; i < TOKENS; ++i) {
        if (u->tokens[i].scope != NULL && strcmp(u->tokens[i].scope, scope) == 0) {
            if (u->tokens[i].until > now) {
                *token = u->tokens[i].token ? strdup(u->tokens[i].token) : NULL;
                found = 1;
            } else {
                forget_token(u, i);
            }
            break;
        }
    }
    pthread_mutex_unlock(&u->mu);
    return found;
}

static void cache_token(upstream_t *u, const char *scope, const char *token, time_t until)
{
    pthread_mutex_lock(&u->mu);
    unsigned slot = TOKENS;
    for (unsigned i = 0; i < TOKENS && slot == TOKENS; ++i)
        if (u->tokens[i].scope != NULL && strcmp(u->tokens[i].scope, scope) == 0)
            slot = i;
    for (unsigned i = 0; i < TOKENS && slot == TOKENS; ++i)
        if (u->tokens[i].scope == NULL)
            slot = i;
    if (slot == TOKENS)
        slot = u->next++ % TOKENS;
    forget_token(u, slot);
    u->tokens[slot].scope = strdup(scope);
    u->tokens[slot].token = token ? strdup(token) : NULL;
    u->tokens[slot].until = until;
    pthread_mutex_unlock(&u->mu);
}

/* ---- curl callbacks ---- */

/* Copy a header's value (trimmed) into buf. */
static void header_value(const char *v, size_t len, char *buf, size_t size)
{
    while (len > 0 && (*v == ' ' || *v == '\t'))
        ++v, --len;
    while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
        --len;
    if (len >= size)
        len = size - 1;
    memcpy(buf, v, len);
    buf[len] = '\0';
}

static size_t on_header(char *buf, size_t size, size_t n, void *p)
{
    xfer_t *x = p;
    size_t len = size * n;
    if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        /* a new response (after a redirect or a 100): forget the previous one's headers */
        upstream_resp_t *r = x->resp;
        r->content_type[0] = r->digest[0] = r->retry_after[0] = r->link[0] = r->location[0] = x->challenge[0] = '\0';
        r->length = -1;
        return len;
    }
    const char *colon = memchr(buf, ':', len);
    if (colon == NULL)
        return len;
    size_t nlen = (size_t)(colon - buf), vlen = len - nlen - 1;
    char num[32];
#define IS(s) (nlen == sizeof(s) - 1 && strncasecmp(buf, s, nlen) == 0)
    if (IS("content-type"))
        header_value(colon + 1, vlen, x->resp->content_type, sizeof(x->resp->content_type));
    else if (IS("docker-content-digest"))
        header_value(colon + 1, vlen, x->resp->digest, sizeof(x->resp->digest));
    else if (IS("retry-after"))
        header_value(colon + 1, vlen, x->resp->retry_after, sizeof(x->resp->retry_after));
    else if (IS("link") && vlen < sizeof(x->resp->link))
        header_value(colon + 1, vlen, x->resp->link, sizeof(x->resp->link));
    else if (IS("location") && vlen < sizeof(x->resp->location))
        header_value(colon + 1, vlen, x->resp->location, sizeof(x->resp->location));
    else if (IS("www-authenticate"))
        header_value(colon + 1, vlen, x->challenge, sizeof(x->challenge));
    else if (IS("content-length")) {
        header_value(colon + 1, vlen, num, sizeof(num));
        char *end;
        long long v = strtoll(num, &end, 10);
        x->resp->length = *num != '\0' && *end == '\0' && v >= 0 ? v : -1;
    }
#undef IS
    return len;
}

static int start_body(xfer_t *x)
{
    C.easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &x->resp->status);
    if (x->resp->status / 100 != 2) {
        x->state = 2;
        return 0;
    }
    x->state = 1;
    if (x->sink != NULL && x->sink->start != NULL && x->sink->start(x->sink->ctx, x->resp) != 0) {
        x->state = 3;
        return -1;
    }
    return 0;
}

static size_t on_body(char *buf, size_t size, size_t n, void *p)
{
    xfer_t *x = p;
    size_t len = size * n;
    if (x->state == 0 && start_body(x) != 0)
        return 0;
    if (x->state == 1) {
        if (x->sink != NULL && x->sink->data != NULL && x->sink->data(x->sink->ctx, buf, len) != 0) {
            x->state = 3;
            return 0;
        }
    } else if (x->state == 2) {
        /* the start of an error body, printable, for the log */
        for (size_t i = 0; i < len && x->errlen + 1 < sizeof(x->resp->error); ++i)
            x->resp->error[x->errlen++] = isprint((unsigned char)buf[i]) ? buf[i] : ' ';
        x->resp->error[x->errlen] = '\0';
    }
    return len;
}

/* The request's body, from its file or memory. */
static size_t on_read(char *buf, size_t size, size_t n, void *p)
{
    xfer_t *x = p;
    const upstream_req_t *rq = x->rq;
    if (rq->stop != NULL && __atomic_load_n(rq->stop, __ATOMIC_RELAXED))
        return CURL_READFUNC_ABORT;
    size_t want = size * n;
    if (want > rq->len - x->sent)
        want = (size_t)(rq->len - x->sent);
    if (want == 0)
        return 0;
    if (rq->fd < 0) {
        memcpy(buf, (const char *)rq->mem + x->sent, want);
    } else {
        ssize_t got = pread(rq->fd, buf, want, (off_t)(rq->off + x->sent));
        if (got <= 0)
            return CURL_READFUNC_ABORT; /* the file is shorter than it was: a failed transfer, not a short blob */
        want = (size_t)got;
    }
    x->sent += want;
    return want;
}

static int on_progress(void *p, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    const xfer_t *x = p;
    return x->rq != NULL && x->rq->stop != NULL && __atomic_load_n(x->rq->stop, __ATOMIC_RELAXED);
}

/* ---- requests ---- */

/* One request; `bearer` (or Basic credentials when `basic`) authorizes it. 0 if answered, -1 if not. */
static int perform(upstream_t *u, xfer_t *x, const char *method, const char *url, const char *accept,
                   const char *bearer, int basic, int whole_timeout)
{
    CURL *c = handle();
    char errbuf[CURL_ERROR_SIZE] = "", line[TOKEN_MAX + 32];
    struct curl_slist *hdrs = NULL;
    if (c == NULL) {
        snprintf(x->resp->error, sizeof(x->resp->error), "cannot create an HTTP client");
        return -1;
    }
    C.easy_reset(c);
    x->c = c;
    x->state = 0;
    x->errlen = 0;
    x->resp->status = 0;
    x->resp->error[0] = x->resp->content_type[0] = x->resp->digest[0] = x->resp->retry_after[0] = x->resp->link[0] =
        x->resp->location[0] = x->challenge[0] = '\0';
    x->sent = 0;
    x->resp->length = -1;

    C.easy_setopt(c, CURLOPT_URL, url);
    if (strcmp(method, "HEAD") == 0) {
        C.easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0 && x->rq != NULL) {
        C.easy_setopt(c, CURLOPT_UPLOAD, 1L);
        C.easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        C.easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->rq->len);
        C.easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        C.easy_setopt(c, CURLOPT_READDATA, x);
        if (x->rq->content_type != NULL) {
            snprintf(line, sizeof(line), "Content-Type: %s", x->rq->content_type);
            hdrs = C.slist_append(hdrs, line);
        }
    }
    if (x->rq != NULL && x->rq->stop != NULL) {
        C.easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        C.easy_setopt(c, CURLOPT_XFERINFODATA, x);
        C.easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    }
    if (!u->tls_verify) {
        C.easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        C.easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (u->ca_file != NULL)
        C.easy_setopt(c, CURLOPT_CAINFO, u->ca_file);
    C.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    C.easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L); /* Docker Hub sends blobs from a CDN */
    C.easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    C.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    C.easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    C.easy_setopt(c, CURLOPT_USERAGENT, u->agent != NULL ? u->agent : "berth-mirror/" PACKAGE_VERSION);
    C.easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, u->timeout_ms);
    if (whole_timeout) {
        C.easy_setopt(c, CURLOPT_TIMEOUT_MS, u->timeout_ms);
    } else { /* a blob may take long; a stalled one may not */
        C.easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
        C.easy_setopt(c, CURLOPT_LOW_SPEED_TIME, u->timeout_ms / 1000 > 0 ? u->timeout_ms / 1000 : 1L);
    }
    C.easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    C.easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    C.easy_setopt(c, CURLOPT_HEADERDATA, x);
    C.easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    C.easy_setopt(c, CURLOPT_WRITEDATA, x);
    if (accept != NULL) {
        snprintf(line, sizeof(line), "Accept: %s", accept);
        hdrs = C.slist_append(hdrs, line);
    }
    if (bearer != NULL) {
        /* curl sends custom headers to redirect targets on other hosts only with CURLOPT_UNRESTRICTED_AUTH */
        snprintf(line, sizeof(line), "Authorization: Bearer %s", bearer);
        hdrs = C.slist_append(hdrs, line);
        explicit_bzero(line, sizeof(line));
    } else if (basic && u->username != NULL) {
        C.easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        C.easy_setopt(c, CURLOPT_USERNAME, u->username);
        C.easy_setopt(c, CURLOPT_PASSWORD, u->password);
    }
    C.easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    CURLcode rc = C.easy_perform(c);
    C.easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    C.slist_free_all(hdrs); /* it held the token: its strings are freed, and the stack copy is wiped */
    if (rc == CURLE_OK && x->state == 0)
        start_body(x); /* HEAD, or an empty body */
    if (rc != CURLE_OK) {
        if (x->state != 3)
            snprintf(x->resp->error, sizeof(x->resp->error), "%s", *errbuf ? errbuf : C.easy_strerror(rc));
        else
            snprintf(x->resp->error, sizeof(x->resp->error), "transfer aborted");
        if (x->state != 1)
            x->resp->status = 0; /* no usable answer */
        return -1;
    }
    return 0;
}

typedef struct {
    char *buf;
    size_t len;
} membuf_t;

static int mem_data(void *ctx, const void *p, size_t n)
{
    membuf_t *m = ctx;
    if (m->len + n > TOKEN_MAX)
        return -1;
    memcpy(m->buf + m->len, p, n);
    m->len += n;
    return 0;
}

/* Answer a Bearer challenge: ask its realm for a token for `scope`. 0 and the malloc'd token in *token. */
static int fetch_token(upstream_t *u, const char *challenge, const char *scope, int own_scope, char **token,
                       time_t *until, upstream_resp_t *resp)
{
    char realm[512], service[256] = "", want[512], *url = NULL;
    if (challenge_param(challenge, "realm", realm, sizeof(realm)) != 0 ||
        (strncmp(realm, "https://", 8) != 0 && strncmp(realm, "http://", 7) != 0)) {
        snprintf(resp->error, sizeof(resp->error), "the upstream's challenge has no usable realm");
        return -1;
    }
    challenge_param(challenge, "service", service, sizeof(service));
    /* the challenge names what its request needs; a replication asks for pull and push at once, so that one token
     * serves every request of a run (the token service grants what it allows of it) */
    if (own_scope || challenge_param(challenge, "scope", want, sizeof(want)) != 0)
        snprintf(want, sizeof(want), "%s", scope);
    CURL *c = handle();
    char *esc_service = C.easy_escape(c, service, 0), *esc_scope = C.easy_escape(c, want, 0);
    int n = asprintf(&url, "%s%cservice=%s&scope=%s", realm, strchr(realm, '?') ? '&' : '?', esc_service, esc_scope);
    C.free(esc_service);
    C.free(esc_scope);
    if (n < 0)
        return -1;

    membuf_t m = {malloc(TOKEN_MAX), 0};
    upstream_sink_t sink = {NULL, mem_data, &m};
    xfer_t x = {.sink = &sink, .resp = resp};
    int rc = perform(u, &x, "GET", url, "application/json", NULL, u->username != NULL, 1);
    free(url);
    if (rc == 0 && resp->status != 200) {
        snprintf(resp->error, sizeof(resp->error), "the registry's token service answered %ld", resp->status);
        rc = -1;
    }
    json_t *j = rc == 0 ? json_loadb(m.buf, m.len, 0, NULL) : NULL;
    explicit_bzero(m.buf, m.len);
    free(m.buf);
    const char *t = json_string_value(json_object_get(j, "token"));
    if (t == NULL)
        t = json_string_value(json_object_get(j, "access_token"));
    if (rc == 0 && (t == NULL || *t == '\0' || strlen(t) > TOKEN_MAX - 64)) {
        snprintf(resp->error, sizeof(resp->error), "the registry's token service sent no token");
        rc = -1;
    }
    if (rc == 0) {
        json_int_t ttl = json_integer_value(json_object_get(j, "expires_in"));
        if (ttl <= 0)
            ttl = 60; /* the token specification's default */
        *until = time(NULL) + (ttl > 20 ? ttl - 10 : ttl / 2);
        *token = strdup(t);
    }
    json_decref(j);
    return rc;
}

int upstream_get_url(const char *url, long timeout_ms, char **data, size_t *len, char *err, size_t errlen)
{
    upstream_t u = {.timeout_ms = timeout_ms, .tls_verify = 1}; /* no credentials, no tokens */
    upstream_resp_t resp;
    membuf_t m = {malloc(TOKEN_MAX), 0};
    upstream_sink_t sink = {NULL, mem_data, &m};
    xfer_t x = {.sink = &sink, .resp = &resp};
    int rc = perform(&u, &x, "GET", url, "application/json", NULL, 0, 1);
    if (rc != 0 || resp.status != 200) {
        if (rc != 0)
            snprintf(err, errlen, "%s", resp.error[0] ? resp.error : "no answer");
        else
            snprintf(err, errlen, "status %ld", resp.status);
        free(m.buf);
        return -1;
    }
    *data = m.buf;
    *len = m.len;
    return 0;
}

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p;
    (void)ctx;
    return size * n;
}

int upstream_post(const char *url, const char *const *headers, size_t nheaders, const char *body, size_t len,
                  long timeout_ms, long *status, char *err, size_t errlen)
{
    CURL *c = handle();
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;
    if (c == NULL) {
        snprintf(err, errlen, "cannot make a libcurl handle");
        return -1;
    }
    C.easy_reset(c);
    for (size_t i = 0; i < nheaders; ++i)
        hdrs = C.slist_append(hdrs, headers[i]);
    hdrs = C.slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
    C.easy_setopt(c, CURLOPT_URL, url);
    C.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    C.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    C.easy_setopt(c, CURLOPT_USERAGENT, "berth-notifications/" PACKAGE_VERSION);
    C.easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    C.easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    C.easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    C.easy_setopt(c, CURLOPT_POST, 1L);
    C.easy_setopt(c, CURLOPT_POSTFIELDS, body);
    C.easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    C.easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    C.easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = C.easy_perform(c);
    C.easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    C.slist_free_all(hdrs);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "%s", errbuf[0] ? errbuf : C.easy_strerror(rc));
        return -1;
    }
    C.easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    return 0;
}

int upstream_request(upstream_t *u, const upstream_req_t *rq, const upstream_sink_t *sink, upstream_resp_t *resp)
{
    char *url = NULL, scope[512], *token = NULL;
    int basic = 0, rc = -1;
    resp->status = 0;
    resp->error[0] = '\0';
    if (strncmp(rq->path, "http://", 7) == 0 || strncmp(rq->path, "https://", 8) == 0) {
        /* a Location: the token and the credentials go to the registry's own address only */
        size_t blen = strlen(u->base);
        if (strncmp(rq->path, u->base, blen) != 0 || rq->path[blen] != '/') {
            snprintf(resp->error, sizeof(resp->error), "the registry sent a location on another host");
            return -1;
        }
        url = strdup(rq->path);
    } else if (rq->path[0] != '/' || asprintf(&url, "%s%s", u->base, rq->path) < 0) {
        url = NULL;
    }
    if (url == NULL) {
        snprintf(resp->error, sizeof(resp->error), "bad request path");
        return -1;
    }
    if (rq->name == NULL)
        snprintf(scope, sizeof(scope), "registry:catalog:*");
    else
        snprintf(scope, sizeof(scope), "repository:%s:%s", rq->name, rq->push ? "pull,push" : "pull");
    int cached = cached_token(u, scope, &token);
    basic = cached && token == NULL;
    for (int attempt = 0; attempt < 2; ++attempt) {
        xfer_t x = {.sink = sink, .resp = resp, .rq = rq};
        rc = perform(u, &x, rq->method, url, rq->accept, token, basic, rq->whole_timeout);
        if (rc != 0 || resp->status != 401 || attempt == 1)
            break;
        /* challenged: get what it asks for, once */
        time_t until = time(NULL) + 300;
        if (token != NULL)
            explicit_bzero(token, strlen(token));
        free(token);
        token = NULL;
        char challenge[sizeof(x.challenge)];
        memcpy(challenge, x.challenge, sizeof(challenge));
        if (strncasecmp(challenge, "Bearer ", 7) == 0) {
            if (fetch_token(u, challenge + 7, scope, rq->push, &token, &until, resp) != 0) {
                log_warn("registry %s: cannot get a token for %s: %s", u->base, scope, resp->error);
                if (resp->status != 429) /* a rate limit stays one, with its Retry-After */
                    resp->status = 0;
                rc = -1;
                break;
            }
        } else if (strncasecmp(challenge, "Basic", 5) == 0 && u->username != NULL && !basic) {
            basic = 1;
        } else {
            break; /* nothing to answer with: the 401 stands */
        }
        cache_token(u, scope, token, until);
    }
    if (token != NULL)
        explicit_bzero(token, strlen(token));
    free(token);
    free(url);
    return rc;
}

int upstream_fetch(upstream_t *u, const char *method, const char *name, const char *kind, const char *ref,
                   const char *accept, int whole_timeout, const upstream_sink_t *sink, upstream_resp_t *resp)
{
    char *path = NULL;
    if (asprintf(&path, "/v2/%s/%s/%s", name, kind, ref) < 0)
        return -1;
    upstream_req_t rq = {
        .method = method, .name = name, .path = path, .accept = accept, .whole_timeout = whole_timeout, .fd = -1};
    int rc = upstream_request(u, &rq, sink, resp);
    free(path);
    return rc;
}
