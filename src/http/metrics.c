/* /metrics and the HTTP layer's counters (metrics.h); docs/metrics.md lists every metric. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "auth/principal.h"
#include "http/api.h"
#include "http/conns.h"
#include "http/metrics.h"
#include "mirror/mirror.h"
#include "store/events.h"
#include "util/cache.h"

#define ROUTES (PARSE_EP_NAMESPACE + 1)
#define METHODS 8
#define CLASSES 6  /* no answer, 1xx … 5xx */
#define BUCKETS 17 /* the last is +Inf */
#define MAX_LOOPS 1024

static const char *const route_names[ROUTES] = {
    [PARSE_EP_NONE] = "unknown",
    [PARSE_EP_BASE] = "base",
    [PARSE_EP_CATALOG] = "catalog",
    [PARSE_EP_TOKEN] = "token",
    [PARSE_EP_JWKS] = "jwks",
    [PARSE_EP_HEALTHZ] = "healthz",
    [PARSE_EP_READYZ] = "readyz",
    [PARSE_EP_METRICS] = "metrics",
    [PARSE_EP_TAGS_LIST] = "tags_list",
    [PARSE_EP_UPLOAD_START] = "upload_start",
    [PARSE_EP_UPLOAD_STATUS] = "upload_status",
    [PARSE_EP_UPLOAD_PATCH] = "upload_patch",
    [PARSE_EP_UPLOAD_PUT] = "upload_put",
    [PARSE_EP_UPLOAD_DELETE] = "upload_delete",
    [PARSE_EP_BLOB_GET] = "blob_get",
    [PARSE_EP_BLOB_DELETE] = "blob_delete",
    [PARSE_EP_MANIFEST_GET] = "manifest_get",
    [PARSE_EP_MANIFEST_PUT] = "manifest_put",
    [PARSE_EP_MANIFEST_DELETE] = "manifest_delete",
    [PARSE_EP_REFERRERS] = "referrers",
    [PARSE_EP_NAMESPACE] = "namespace",
};
static const char *const method_names[METHODS] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"};
static const char *const class_names[CLASSES] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
/* upper bounds in nanoseconds (and as printed): from a cached metadata answer to a multi-GiB layer */
static const uint64_t bucket_ns[BUCKETS - 1] = {
    500000,    1000000,   2500000,    5000000,    10000000,   25000000,    50000000,    100000000,
    250000000, 500000000, 1000000000, 2500000000, 5000000000, 10000000000, 30000000000, 60000000000};
static const char *const bucket_le[BUCKETS] = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
                                               "0.05",   "0.1",   "0.25",   "0.5",   "1",    "2.5",
                                               "5",      "10",    "30",     "60",    "+Inf"};

/* One loop's counters: only that loop writes them. */
typedef struct {
    uint64_t requests[ROUTES][METHODS][CLASSES];
    uint64_t latency[ROUTES][BUCKETS]; /* per bucket, not cumulative */
    uint64_t latency_ns[ROUTES];
    uint64_t received, sent, accepted;
    int64_t uploads, open; /* gauges: a request and a connection end on the loop they began on */
} block_t;

struct metrics_req {
    h2o_req_t *req;
    block_t *blk;
    size_t *inflight;
    uint64_t start_ns;
    unsigned char ep, upload;
};

static block_t *blocks[MAX_LOOPS];
static unsigned nblocks; /* published with release: blocks[i < nblocks] are set */
static pthread_mutex_t blocks_mu = PTHREAD_MUTEX_INITIALIZER;
static __thread block_t *blk;

static inline void add(uint64_t *c, uint64_t n)
{
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

static inline void gauge(int64_t *g, int64_t d)
{
    __atomic_store_n(g, __atomic_load_n(g, __ATOMIC_RELAXED) + d, __ATOMIC_RELAXED);
}

static inline uint64_t load(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static unsigned method_index(h2o_iovec_t m)
{
    for (unsigned i = 0; i < METHODS - 1; ++i)
        if (h2o_memis(m.base, m.len, method_names[i], strlen(method_names[i])))
            return i;
    return METHODS - 1;
}

const char *metrics_route_name(parse_ep_t ep)
{
    return (unsigned)ep < ROUTES ? route_names[ep] : route_names[PARSE_EP_NONE];
}

static void on_req_done(void *p)
{
    metrics_req_t *m = p;
    h2o_req_t *req = m->req;
    --*m->inflight;
    block_t *b = m->blk;
    if (b == NULL)
        return;
    uint64_t ns = mono_ns() - m->start_ns;
    int status = req->res.status;
    unsigned cls = status >= 100 && status < 600 ? (unsigned)status / 100 : 0, k = 0;
    while (k < BUCKETS - 1 && ns > bucket_ns[k])
        ++k;
    add(&b->requests[m->ep][method_index(req->method)][cls], 1);
    add(&b->latency[m->ep][k], 1);
    add(&b->latency_ns[m->ep], ns);
    add(&b->sent, req->bytes_sent);
    if (req->entity.base != NULL)
        add(&b->received, req->entity.len); /* a body h2o read (one berth read itself was counted as it came) */
    if (m->upload)
        gauge(&b->uploads, -1);
}

metrics_req_t *metrics_begin(h2o_req_t *req)
{
    thread_ctx_t *tc = thread_ctx_of(req);
    metrics_req_t *m = h2o_mem_alloc_shared(&req->pool, sizeof(*m), on_req_done);
    *m = (metrics_req_t){req, blk, &tc->inflight, mono_ns(), PARSE_EP_NONE, 0};
    ++tc->inflight;
    if (req->entity.len > 0) {
        /* h2o read the whole body before handing the request over: count from when its head arrived */
        struct timeval now;
        gettimeofday(&now, NULL);
        int64_t before = ((int64_t)now.tv_sec - req->timestamps.request_begin_at.tv_sec) * 1000000000 +
                         ((int64_t)now.tv_usec - req->timestamps.request_begin_at.tv_usec) * 1000;
        if (before > 0 && (uint64_t)before < m->start_ns)
            m->start_ns -= (uint64_t)before;
    }
    return m;
}

void metrics_route(metrics_req_t *m, parse_ep_t ep)
{
    m->ep = (unsigned)ep < ROUTES ? (unsigned char)ep : PARSE_EP_NONE;
    m->upload =
        m->blk != NULL && (ep == PARSE_EP_UPLOAD_START || ep == PARSE_EP_UPLOAD_PATCH || ep == PARSE_EP_UPLOAD_PUT);
    if (m->upload)
        gauge(&m->blk->uploads, 1);
}

void metrics_received(size_t n)
{
    if (blk != NULL)
        add(&blk->received, n);
}

void metrics_accepted(void)
{
    if (blk != NULL)
        add(&blk->accepted, 1);
}

void metrics_open(int delta)
{
    if (blk != NULL)
        gauge(&blk->open, delta);
}

static void on_loop_init(thread_ctx_t *tc)
{
    (void)tc;
    blk = calloc(1, sizeof(*blk));
    pthread_mutex_lock(&blocks_mu);
    if (blk != NULL && nblocks < MAX_LOOPS) {
        blocks[nblocks] = blk;
        __atomic_store_n(&nblocks, nblocks + 1, __ATOMIC_RELEASE);
    } else {
        free(blk);
        blk = NULL;
    }
    pthread_mutex_unlock(&blocks_mu);
}

static void on_stop(void)
{
    pthread_mutex_lock(&blocks_mu);
    for (unsigned i = 0; i < nblocks; ++i) {
        free(blocks[i]);
        blocks[i] = NULL;
    }
    __atomic_store_n(&nblocks, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&blocks_mu);
}

const server_hooks_t metrics_hooks = {.loop_init = on_loop_init, .stop = on_stop};

/* ---- the scrape ---- */

/* Every loop's block added up (each value read with a relaxed load: a sum may straddle a request, never tear). */
static void sum_blocks(block_t *t)
{
    memset(t, 0, sizeof(*t));
    unsigned n = __atomic_load_n(&nblocks, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < n; ++i) {
        const block_t *b = blocks[i];
        const uint64_t *src = (const uint64_t *)b;
        uint64_t *dst = (uint64_t *)t;
        for (size_t w = 0; w < sizeof(*t) / sizeof(uint64_t); ++w)
            dst[w] += load(&src[w]); /* the gauges add up as two's complement */
    }
}

static void header(FILE *fp, const char *name, const char *type, const char *help)
{
    fprintf(fp, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void http_metrics(FILE *fp)
{
    block_t *t = malloc(sizeof(*t));
    if (t == NULL)
        return;
    sum_blocks(t);
    header(fp, "berth_http_requests_total", "counter",
           "Requests answered (or given up), by route (the endpoint, not the path), method and status class.");
    for (unsigned r = 0; r < ROUTES; ++r)
        for (unsigned m = 0; m < METHODS; ++m)
            for (unsigned c = 0; c < CLASSES; ++c)
                if (t->requests[r][m][c] != 0)
                    fprintf(fp, "berth_http_requests_total{route=\"%s\",method=\"%s\",code=\"%s\"} %llu\n",
                            route_names[r], method_names[m], class_names[c], (unsigned long long)t->requests[r][m][c]);
    header(
        fp, "berth_http_request_duration_seconds", "histogram",
        "Time from routing a request (for a body h2o reads whole, from its head's arrival) to the end of its answer.");
    for (unsigned r = 0; r < ROUTES; ++r) {
        uint64_t cum = 0;
        for (unsigned k = 0; k < BUCKETS; ++k)
            cum += t->latency[r][k];
        if (cum == 0)
            continue;
        cum = 0;
        for (unsigned k = 0; k < BUCKETS; ++k) {
            cum += t->latency[r][k];
            fprintf(fp, "berth_http_request_duration_seconds_bucket{route=\"%s\",le=\"%s\"} %llu\n", route_names[r],
                    bucket_le[k], (unsigned long long)cum);
        }
        fprintf(fp, "berth_http_request_duration_seconds_sum{route=\"%s\"} %.9f\n", route_names[r],
                (double)t->latency_ns[r] / 1e9);
        fprintf(fp, "berth_http_request_duration_seconds_count{route=\"%s\"} %llu\n", route_names[r],
                (unsigned long long)cum);
    }
    header(fp, "berth_http_received_bytes_total", "counter", "Request body bytes received (uploads included).");
    fprintf(fp, "berth_http_received_bytes_total %llu\n", (unsigned long long)t->received);
    header(fp, "berth_http_sent_bytes_total", "counter", "Response body bytes sent (blobs included).");
    fprintf(fp, "berth_http_sent_bytes_total %llu\n", (unsigned long long)t->sent);
    header(fp, "berth_http_uploads_in_flight", "gauge",
           "Upload requests being handled (POST, PATCH and PUT of blob uploads, their bodies arriving).");
    fprintf(fp, "berth_http_uploads_in_flight %lld\n", (long long)t->uploads);
    header(fp, "berth_http_connections_accepted_total", "counter",
           "Connections accepted from the listeners (those then refused by a cap included).");
    fprintf(fp, "berth_http_connections_accepted_total %llu\n", (unsigned long long)t->accepted);
    header(fp, "berth_http_connections_open", "gauge", "Connections open now.");
    fprintf(fp, "berth_http_connections_open %lld\n", (long long)t->open);
    free(t);
}

static void store_metrics(FILE *fp, thread_ctx_t *tc)
{
    quota_totals_t qt;
    uint64_t avail = 0;
    int ok = quota_totals(tc->db, &qt) == 0;
    header(fp, "berth_storage_blobs", "gauge", "Blobs the database records (each stored once).");
    if (ok)
        fprintf(fp, "berth_storage_blobs %llu\n", (unsigned long long)qt.blobs);
    header(fp, "berth_storage_blob_bytes", "gauge", "Bytes of those blobs.");
    if (ok)
        fprintf(fp, "berth_storage_blob_bytes %llu\n", (unsigned long long)qt.bytes);
    header(fp, "berth_storage_gc_runs_total", "counter",
           "Garbage collections run to the end on this database, by the server and by berth gc, since it was made.");
    if (ok)
        fprintf(fp, "berth_storage_gc_runs_total %llu\n", (unsigned long long)qt.gc_runs);
    header(fp, "berth_storage_gc_freed_bytes_total", "counter", "Bytes of blob files those collections gave back.");
    if (ok)
        fprintf(fp, "berth_storage_gc_freed_bytes_total %llu\n", (unsigned long long)qt.gc_freed_bytes);
    header(fp, "berth_webhook_events_dropped_total", "counter",
           "Webhook events dropped since start because the queue (notifications.queue_size) was full.");
    fprintf(fp, "berth_webhook_events_dropped_total %llu\n", (unsigned long long)events_dropped());
    int low = store_space(berth.store, &avail);
    fprintf(fp,
            "# HELP berth_storage_free_bytes Free space on the storage volume.\n"
            "# TYPE berth_storage_free_bytes gauge\nberth_storage_free_bytes %llu\n"
            "# HELP berth_storage_low 1 while the free space is below storage.min_free (pushes refused).\n"
            "# TYPE berth_storage_low gauge\nberth_storage_low %d\n",
            (unsigned long long)avail, low == 1);
}

static void cache_auth_metrics(FILE *fp)
{
    cache_stats_t cs[16];
    size_t n = cache_stats(cs, 16);
    header(fp, "berth_cache_hits_total", "counter",
           "Lookups a read cache answered: metadata (the store's), list_pages, credentials (per loop), "
           "credentials_shared.");
    for (size_t i = 0; i < n; ++i)
        fprintf(fp, "berth_cache_hits_total{cache=\"%s\"} %llu\n", cs[i].name, (unsigned long long)cs[i].hits);
    header(fp, "berth_cache_misses_total", "counter", "Lookups a read cache could not answer.");
    for (size_t i = 0; i < n; ++i)
        fprintf(fp, "berth_cache_misses_total{cache=\"%s\"} %llu\n", cs[i].name, (unsigned long long)cs[i].misses);
    auth_stats_t as;
    auth_stats(&as);
    header(fp, "berth_auth_failures_total", "counter",
           "Failed logins: a wrong password, a wrong access-token secret, a Bearer token refused.");
    fprintf(fp,
            "berth_auth_failures_total{kind=\"password\"} %llu\n"
            "berth_auth_failures_total{kind=\"access_token\"} %llu\n"
            "berth_auth_failures_total{kind=\"bearer\"} %llu\n",
            (unsigned long long)as.failures[AUTH_FAIL_PASSWORD],
            (unsigned long long)as.failures[AUTH_FAIL_ACCESS_TOKEN], (unsigned long long)as.failures[AUTH_FAIL_BEARER]);
    header(fp, "berth_auth_rate_limited_total", "counter",
           "Logins refused with 429 by the failed-login rate limiter (auth.login_failures).");
    fprintf(fp, "berth_auth_rate_limited_total %llu\n", (unsigned long long)as.limited);
}

static void mirror_metrics(FILE *fp)
{
    static const struct {
        const char *name, *help;
        size_t off;
    } counters[] = {
        {"berth_mirror_fetches_total", "Objects fetched from the upstream (or revalidated tags that moved).",
         offsetof(mirror_t, fetches)},
        {"berth_mirror_stale_total", "Cached tags served because the upstream failed.", offsetof(mirror_t, stale)},
        {"berth_mirror_errors_total", "Fetches that failed other than by a 404 upstream.", offsetof(mirror_t, errors)},
    };
    for (size_t c = 0; c < sizeof(counters) / sizeof(counters[0]); ++c) {
        header(fp, counters[c].name, "counter", counters[c].help);
        for (size_t i = 0; i < nmirrors; ++i) {
            uint64_t v = __atomic_load_n((uint64_t *)((char *)&mirrors[i] + counters[c].off), __ATOMIC_RELAXED);
            fprintf(fp, "%s{upstream=\"%s\",prefix=\"%s\"} %llu\n", counters[c].name, mirrors[i].cfg->upstream,
                    mirrors[i].cfg->prefix, (unsigned long long)v);
        }
    }
}

/* The rest: the connections' caps and deadlines, the scrub's, the collector's, mirror cache eviction. */
static void other_metrics(FILE *fp)
{
    conns_stats_t cs;
    conns_stats(&cs);
    fprintf(fp,
            "# HELP berth_connections_refused_total Connections refused at accept.\n"
            "# TYPE berth_connections_refused_total counter\n"
            "berth_connections_refused_total{reason=\"total\"} %llu\n"
            "berth_connections_refused_total{reason=\"address\"} %llu\n"
            "# HELP berth_connections_closed_total Connections closed by the server's deadlines.\n"
            "# TYPE berth_connections_closed_total counter\n"
            "berth_connections_closed_total{reason=\"idle\"} %llu\n"
            "berth_connections_closed_total{reason=\"slow_head\"} %llu\n"
            "berth_connections_closed_total{reason=\"slow_body\"} %llu\n"
            "berth_connections_closed_total{reason=\"anonymous_body\"} %llu\n",
            (unsigned long long)cs.refused_total, (unsigned long long)cs.refused_address, (unsigned long long)cs.idle,
            (unsigned long long)cs.slow_head, (unsigned long long)cs.slow_body, (unsigned long long)cs.anonymous);
    /* the background scrub's (store/scrub.h; zeros while storage.scrub_rate is 0) */
    scrub_stats_t sc;
    scrub_stats(berth.store->scrub, &sc);
    const struct {
        const char *name, *type, *help;
        uint64_t v;
    } scrub[] = {
        {"berth_scrub_blobs_checked_total", "counter", "Blob files the scrub re-hashed.", sc.blobs_checked},
        {"berth_scrub_bytes_checked_total", "counter", "Bytes the scrub re-hashed.", sc.bytes_checked},
        {"berth_scrub_passes_total", "counter", "Complete scrub passes over every blob.", sc.passes},
        {"berth_scrub_corrupt_blobs", "gauge",
         "Blobs missing, truncated or not matching their digest, as the last complete scrub pass found them (or more "
         "found so far by the current one).",
         sc.corrupt},
    };
    for (size_t i = 0; i < sizeof(scrub) / sizeof(scrub[0]); ++i)
        fprintf(fp, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", scrub[i].name, scrub[i].help, scrub[i].name, scrub[i].type,
                scrub[i].name, (unsigned long long)scrub[i].v);
    /* the background garbage collector's (store/gc.h; zeros while gc.interval is 0) */
    gc_totals_t gc;
    gc_thread_totals(berth.store->gc, &gc);
    fprintf(
        fp,
        "# HELP berth_gc_runs_total Garbage collections the server ran.\n"
        "# TYPE berth_gc_runs_total counter\n"
        "berth_gc_runs_total %llu\n"
        "# HELP berth_gc_failures_total Garbage collections that stopped on an error (see the log).\n"
        "# TYPE berth_gc_failures_total counter\n"
        "berth_gc_failures_total %llu\n"
        "# HELP berth_gc_removed_total What garbage collection removed.\n"
        "# TYPE berth_gc_removed_total counter\n"
        "berth_gc_removed_total{kind=\"manifest\"} %llu\n"
        "berth_gc_removed_total{kind=\"link\"} %llu\n"
        "berth_gc_removed_total{kind=\"blob\"} %llu\n"
        "# HELP berth_gc_freed_bytes_total Bytes of blob files garbage collection gave back.\n"
        "# TYPE berth_gc_freed_bytes_total counter\n"
        "berth_gc_freed_bytes_total %llu\n"
        "# HELP berth_gc_last_run_seconds How long the last garbage collection took.\n"
        "# TYPE berth_gc_last_run_seconds gauge\n"
        "berth_gc_last_run_seconds %.6f\n"
        "# HELP berth_retention_removed_total Tags the retention rules removed (before each scheduled collection).\n"
        "# TYPE berth_retention_removed_total counter\n"
        "berth_retention_removed_total %llu\n"
        "# HELP berth_retention_examined_total Tags the retention rules judged.\n"
        "# TYPE berth_retention_examined_total counter\n"
        "berth_retention_examined_total %llu\n"
        "# HELP berth_retention_failures_total Retention passes that stopped on an error (see the log).\n"
        "# TYPE berth_retention_failures_total counter\n"
        "berth_retention_failures_total %llu\n",
        (unsigned long long)gc.runs, (unsigned long long)gc.failures, (unsigned long long)gc.total.manifests,
        (unsigned long long)gc.total.links, (unsigned long long)gc.total.blobs,
        (unsigned long long)gc.total.bytes_freed, gc.last_seconds, (unsigned long long)gc.retention.removed,
        (unsigned long long)gc.retention.examined, (unsigned long long)gc.retention_failures);
    /* mirror cache eviction, by the same collector (store/evict.h) */
    fprintf(fp, "# HELP berth_mirror_evicted_total Images mirror cache eviction removed (max_size, max_age).\n"
                "# TYPE berth_mirror_evicted_total counter\n");
    for (size_t i = 0; i < nmirrors; ++i) {
        gc_mirror_totals_t mt;
        gc_thread_mirror_totals(berth.store->gc, i, &mt);
        fprintf(fp, "berth_mirror_evicted_total{upstream=\"%s\",prefix=\"%s\"} %llu\n", mirrors[i].cfg->upstream,
                mirrors[i].cfg->prefix, (unsigned long long)mt.images);
    }
    fprintf(fp, "# HELP berth_mirror_evicted_bytes_total Bytes of manifests and blobs mirror cache eviction took from "
                "a mirror's size.\n"
                "# TYPE berth_mirror_evicted_bytes_total counter\n");
    for (size_t i = 0; i < nmirrors; ++i) {
        gc_mirror_totals_t mt;
        gc_thread_mirror_totals(berth.store->gc, i, &mt);
        fprintf(fp, "berth_mirror_evicted_bytes_total{upstream=\"%s\",prefix=\"%s\"} %llu\n", mirrors[i].cfg->upstream,
                mirrors[i].cfg->prefix, (unsigned long long)mt.bytes);
    }
}

void api_metrics(h2o_req_t *req)
{
    char *out = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&out, &len);
    http_metrics(fp);
    store_metrics(fp, thread_ctx_of(req));
    cache_auth_metrics(fp);
    mirror_metrics(fp);
    other_metrics(fp);
    fclose(fp);
    res_bytes(req, 200, "text/plain; version=0.0.4", out, len);
    free(out);
}
