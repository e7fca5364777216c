/*
 * Webhook delivery (notify.h). One thread per endpoint, each with its own read connection: it reads the events after
 * its cursor, skips those its filters leave out, sends the rest in order (distribution: up to BATCH in one envelope, as
 * distribution's queue sends what is pending; CloudEvents: one per request, structured mode), and moves its cursor on
 * a 2xx answer. A failure is retried after `backoff` `threshold` times, then with the wait doubling each time up to
 * `maxbackoff`; meanwhile events wait in the database, never in front of a request. The cursor is saved through the
 * writer thread at most every SAVE_EVERY_MS and at stop: after a crash an endpoint may get an event again (at least
 * once), never lose one.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include "notify/notify.h"
#include "store/events.h"
#include "util/log.h"
#include "util/time.h"

#define BATCH 32
#define SAVE_EVERY_MS 500
#define IDLE_POLL_MS 1000
#define NO_CLIENT_WAIT_MS 30000

#define MT_ENVELOPE "application/vnd.docker.distribution.events.v1+json"
#define MT_CLOUDEVENT "application/cloudevents+json"

typedef struct {
    const config_endpoint_t *cfg;
    pthread_t thread;
    int started;
    int64_t cursor, saved;
    unsigned failures;
} endpoint_t;

static struct {
    notify_post_fn post;
    endpoint_t *eps;
    size_t neps;
    unsigned actions;
    const char *db_path;
    metastore_writer_t *writer;
    char source_addr[300];
    char instance[40];
    char base[600]; /* CloudEvents' source */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    uint64_t kicks;
    int stopping;
    int no_client_logged;
} N = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

void notify_set_poster(notify_post_fn fn)
{
    N.post = fn;
}

unsigned notify_actions(void)
{
    return __atomic_load_n(&N.actions, __ATOMIC_RELAXED);
}

void notify_kick(void)
{
    if (notify_actions() == 0)
        return;
    pthread_mutex_lock(&N.mu);
    N.kicks++;
    pthread_cond_broadcast(&N.cond);
    pthread_mutex_unlock(&N.mu);
}

static void uuid4(char out[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
        for (size_t i = 0; i < sizeof(b); ++i)
            b[i] = (unsigned char)rand();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
             b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

int notify_repo_matches(char *const *patterns, size_t n, const char *repo)
{
    if (n == 0)
        return 1;
    size_t rlen = strlen(repo);
    for (size_t i = 0; i < n; ++i) {
        const char *p = patterns[i];
        size_t plen = strlen(p);
        if (strcmp(p, "*") == 0 || strcmp(p, repo) == 0)
            return 1;
        /* a namespace pattern: every repository under it */
        if (plen >= 2 && p[plen - 1] == '*' && p[plen - 2] == '/' && rlen > plen - 1 && strncmp(p, repo, plen - 1) == 0)
            return 1;
    }
    return 0;
}

static json_t *str_or_empty(const char *s)
{
    return json_string(s != NULL ? s : "");
}

char *notify_event_json(const notify_event_t *e)
{
    char id[37], req_id[37], ts[64], stamp[40];
    struct timespec now;
    struct tm tm;
    uuid4(id);
    uuid4(req_id);
    clock_gettime(CLOCK_REALTIME, &now);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", gmtime_r(&now.tv_sec, &tm));
    snprintf(ts, sizeof(ts), "%s.%09ldZ", stamp, now.tv_nsec);
    json_t *target = json_object();
    if (e->media_type != NULL)
        json_object_set_new(target, "mediaType", json_string(e->media_type));
    if (e->digest != NULL)
        json_object_set_new(target, "digest", json_string(e->digest));
    if (e->size >= 0) {
        json_object_set_new(target, "size", json_integer(e->size));
        json_object_set_new(target, "length", json_integer(e->size));
    }
    json_object_set_new(target, "repository", str_or_empty(e->repository));
    if (e->base != NULL && e->digest != NULL) {
        char url[2048];
        snprintf(url, sizeof(url), "%s/v2/%s/%s/%s", e->base, e->repository,
                 e->media_type != NULL && strcmp(e->media_type, "application/octet-stream") == 0 ? "blobs"
                                                                                                 : "manifests",
                 e->digest);
        json_object_set_new(target, "url", json_string(url));
    }
    if (e->tag != NULL)
        json_object_set_new(target, "tag", json_string(e->tag));
    json_t *ev = json_pack("{s:s,s:s,s:s,s:o,s:{s:s,s:s,s:s,s:s,s:s},s:{s:s},s:{s:s,s:s}}", "id", id, "timestamp", ts,
                           "action", e->action, "target", target, "request", "id", req_id, "addr",
                           e->addr ? e->addr : "", "host", e->host ? e->host : "", "method", e->method ? e->method : "",
                           "useragent", e->useragent ? e->useragent : "", "actor", "name", e->actor ? e->actor : "",
                           "source", "addr", N.source_addr, "instanceID", N.instance);
    char *out = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    return out;
}

/* ---- delivery ---- */

static unsigned action_bit(const char *a)
{
    return strcmp(a, "push") == 0     ? CONFIG_ACTION_PUSH
           : strcmp(a, "pull") == 0   ? CONFIG_ACTION_PULL
           : strcmp(a, "delete") == 0 ? CONFIG_ACTION_DELETE
                                      : 0;
}

static int wanted(const config_endpoint_t *c, const events_row_t *r)
{
    if ((c->actions & action_bit(r->action)) == 0 ||
        !notify_repo_matches(c->repositories, c->nrepositories, r->repository))
        return 0;
    for (size_t i = 0; i < c->nignored_types; ++i)
        if (strcmp(c->ignored_types[i], r->media_type) == 0)
            return 0;
    return 1;
}

typedef struct {
    endpoint_t *ep;
    char *json[BATCH];
    int n, max;
    int64_t last; /* the last event consumed (sent or skipped) */
} batch_t;

static int on_row(void *ctx, const events_row_t *r)
{
    batch_t *b = ctx;
    b->last = r->id;
    if (wanted(b->ep->cfg, r))
        b->json[b->n++] = strdup(r->json);
    return b->n == b->max;
}

/* The CloudEvents form of a distribution event (structured mode). */
static char *cloudevent(const char *json)
{
    json_t *ev = json_loads(json, 0, NULL);
    if (ev == NULL)
        return NULL;
    const char *action = json_string_value(json_object_get(ev, "action"));
    json_t *target = json_object_get(ev, "target");
    const char *repo = json_string_value(json_object_get(target, "repository"));
    const char *tag = json_string_value(json_object_get(target, "tag"));
    const char *digest = json_string_value(json_object_get(target, "digest"));
    char type[64], subject[1024];
    snprintf(type, sizeof(type), "dev.berth.registry.%s", action ? action : "event");
    snprintf(subject, sizeof(subject), "%s%s%s", repo ? repo : "",
             tag      ? ":"
             : digest ? "@"
                      : "",
             tag      ? tag
             : digest ? digest
                      : "");
    json_t *ce = json_pack("{s:s,s:O,s:s,s:s,s:s,s:O,s:s,s:O}", "specversion", "1.0", "id", json_object_get(ev, "id"),
                           "source", N.base, "type", type, "subject", subject, "time", json_object_get(ev, "timestamp"),
                           "datacontenttype", "application/json", "data", ev);
    json_decref(ev);
    if (ce == NULL)
        return NULL;
    char *out = json_dumps(ce, JSON_COMPACT);
    json_decref(ce);
    return out;
}

/* The request body of a batch: distribution's envelope, or one CloudEvent. */
static char *body_of(const endpoint_t *ep, batch_t *b)
{
    if (ep->cfg->cloudevents)
        return cloudevent(b->json[0]);
    size_t len = 16;
    for (int i = 0; i < b->n; ++i)
        len += strlen(b->json[i]) + 1;
    char *body = malloc(len), *p = body;
    p += sprintf(p, "{\"events\":[");
    for (int i = 0; i < b->n; ++i)
        p += sprintf(p, "%s%s", i ? "," : "", b->json[i]);
    sprintf(p, "]}");
    return body;
}

static int save_write(metastore_t *m, void *arg)
{
    endpoint_t *ep = arg;
    return events_cursor_set(m, ep->cfg->name, ep->cursor);
}

static void save(endpoint_t *ep)
{
    if (ep->saved == ep->cursor)
        return;
    if (metastore_write(N.writer, save_write, ep) == 0)
        ep->saved = ep->cursor;
}

/* Wait `ms` or until stopped (kicks wake it when `kickable`). 1 if stopping. */
static int pause_ms(uint64_t ms, int kickable)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&N.mu);
    uint64_t kicks = N.kicks;
    while (!N.stopping && (!kickable || N.kicks == kicks) && pthread_cond_timedwait(&N.cond, &N.mu, &until) == 0)
        ;
    int stopping = N.stopping;
    pthread_mutex_unlock(&N.mu);
    return stopping;
}

static int stopping(void)
{
    pthread_mutex_lock(&N.mu);
    int s = N.stopping;
    pthread_mutex_unlock(&N.mu);
    return s;
}

static uint64_t retry_after_ms(const endpoint_t *ep)
{
    const config_endpoint_t *c = ep->cfg;
    uint64_t ms = c->backoff_ms;
    for (unsigned i = c->threshold; i < ep->failures && ms < c->max_backoff_ms; ++i)
        ms *= 2;
    return ms < c->max_backoff_ms ? ms : c->max_backoff_ms;
}

static void *deliver_main(void *arg)
{
    endpoint_t *ep = arg;
    const config_endpoint_t *c = ep->cfg;
    const char *ctype = c->cloudevents ? "Content-Type: " MT_CLOUDEVENT : "Content-Type: " MT_ENVELOPE;
    const char **headers = calloc(c->nheaders + 2, sizeof(*headers));
    for (size_t i = 0; i < c->nheaders; ++i)
        headers[i] = c->headers[i];
    headers[c->nheaders] = ctype;
    metastore_t *m = metastore_open(N.db_path, 0);
    if (m == NULL || events_cursor(m, c->name, &ep->cursor) != 0) {
        log_error("webhook %s: cannot read its queue: no deliveries", c->name);
        goto Exit;
    }
    ep->saved = ep->cursor;
    uint64_t last_save = time_mono_ms();
    while (!stopping()) {
        batch_t b = {ep, {0}, 0, c->cloudevents ? 1 : BATCH, ep->cursor};
        int rows = events_read(m, ep->cursor, 256, on_row, &b);
        if (rows <= 0) { /* nothing waits (or the database failed: tried again) */
            save(ep);
            pause_ms(IDLE_POLL_MS, 1);
            continue;
        }
        if (b.n == 0) { /* only events this endpoint leaves out */
            ep->cursor = b.last;
            continue;
        }
        char *body = body_of(ep, &b), err[256] = "";
        long status = 0;
        int rc = body == NULL     ? -1
                 : N.post != NULL ? N.post(c->url, headers, c->nheaders + 1, body, strlen(body), (long)c->timeout_ms,
                                           &status, err, sizeof(err))
                                  : -2;
        if (body == NULL)
            snprintf(err, sizeof(err), "an event in the queue is not JSON");
        free(body);
        for (int i = 0; i < b.n; ++i)
            free(b.json[i]);
        if (rc == 0 && status >= 200 && status < 300) {
            if (ep->failures > 0)
                log_info("webhook %s: delivering again after %u failed attempts", c->name, ep->failures);
            ep->failures = 0;
            ep->cursor = b.last;
            if (time_mono_ms() - last_save >= SAVE_EVERY_MS) {
                save(ep);
                last_save = time_mono_ms();
            }
            continue;
        }
        if (rc == -2) { /* no HTTP client: the events wait */
            if (!__atomic_exchange_n(&N.no_client_logged, 1, __ATOMIC_RELAXED))
                log_error("webhooks: libcurl cannot be loaded (Debian package libcurl4): events stay queued until it "
                          "can be");
            pause_ms(NO_CLIENT_WAIT_MS, 0);
            continue;
        }
        ep->failures++;
        uint64_t wait = retry_after_ms(ep);
        if (ep->failures == 1 || ep->failures % 10 == 0) {
            if (rc == 0)
                snprintf(err, sizeof(err), "status %ld", status);
            /* the endpoint's name only: its URL and headers may hold credentials */
            log_warn("webhook %s: delivery failed (%s), attempt %u; retrying in %llu ms, the events wait in the queue",
                     c->name, err, ep->failures, (unsigned long long)wait);
        }
        pause_ms(wait, 0);
    }
    save(ep);
Exit:
    metastore_close(m);
    free(headers);
    return NULL;
}

static int setup_write(metastore_t *m, void *arg)
{
    const config_t *cfg = arg;
    const char **names = calloc(cfg->nendpoints + 1, sizeof(*names));
    size_t n = 0;
    for (size_t i = 0; i < cfg->nendpoints; ++i)
        if (!cfg->endpoints[i].disabled)
            names[n++] = cfg->endpoints[i].name;
    int rc = events_setup(m, names, n);
    free(names);
    return rc;
}

int notify_start(const config_t *cfg, const char *db_path, metastore_writer_t *w, const char *addr)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->nendpoints; ++i)
        n += !cfg->endpoints[i].disabled;
    N.db_path = db_path;
    N.writer = w;
    N.stopping = 0;
    events_set_limit(n > 0 ? cfg->notifications_queue_size : 0);
    if (metastore_write(w, setup_write, (void *)cfg) != 0) {
        log_error("webhooks: cannot set up the queue");
        return -1;
    }
    if (n == 0)
        return 0;
    char host[256] = "localhost";
    gethostname(host, sizeof(host) - 1);
    const char *port = strrchr(addr, ':');
    snprintf(N.source_addr, sizeof(N.source_addr), "%s%s", host, port ? port : "");
    uuid4(N.instance);
    if (cfg->external_url != NULL && *cfg->external_url != '\0')
        snprintf(N.base, sizeof(N.base), "%s", cfg->external_url);
    else
        snprintf(N.base, sizeof(N.base), "http://%s", addr);
    N.eps = calloc(n, sizeof(*N.eps));
    unsigned actions = 0;
    for (size_t i = 0; i < cfg->nendpoints; ++i) {
        if (cfg->endpoints[i].disabled)
            continue;
        endpoint_t *ep = &N.eps[N.neps++];
        ep->cfg = &cfg->endpoints[i];
        actions |= ep->cfg->actions;
        if (pthread_create(&ep->thread, NULL, deliver_main, ep) != 0) {
            log_error("webhook %s: cannot start its thread", ep->cfg->name);
            notify_stop();
            return -1;
        }
        ep->started = 1;
    }
    __atomic_store_n(&N.actions, actions, __ATOMIC_RELAXED);
    log_info("webhooks: %zu endpoint(s), up to %u events queued", N.neps, cfg->notifications_queue_size);
    return 0;
}

void notify_stop(void)
{
    __atomic_store_n(&N.actions, 0, __ATOMIC_RELAXED);
    pthread_mutex_lock(&N.mu);
    N.stopping = 1;
    pthread_cond_broadcast(&N.cond);
    pthread_mutex_unlock(&N.mu);
    for (size_t i = 0; i < N.neps; ++i)
        if (N.eps[i].started)
            pthread_join(N.eps[i].thread, NULL);
    free(N.eps);
    N.eps = NULL;
    N.neps = 0;
}
