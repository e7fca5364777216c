/* GET /v2/, the health endpoints, and small helpers shared by the handlers. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include "http/conns.h"
#include "http/api.h"
#include "mirror/mirror.h"

void api_base(route_t *r)
{
    res_json(r->req, 200, json_object());
}

void api_healthz(h2o_req_t *req)
{
    res_bytes(req, 200, "text/plain", H2O_STRLIT("ok\n"));
}

/* Ready when the database answers and the storage root is a writable folder. A volume below storage.min_free is
 * still ready (pulls are served) and says that pushes are refused. Not ready from the moment SIGTERM arrives, while
 * berth still serves (http.shutdown_delay: load balancers and Kubernetes stop sending before it stops accepting). */
void api_readyz(h2o_req_t *req)
{
    thread_ctx_t *tc = thread_ctx_of(req);
    struct statvfs st;
    uint64_t avail;
    if (tc->stopping || atomic_load(&berth.terminating)) {
        res_bytes(req, 503, "text/plain", H2O_STRLIT("shutting down\n"));
    } else if (metastore_ping(tc->db) != 0) {
        res_bytes(req, 503, "text/plain", H2O_STRLIT("database unavailable\n"));
    } else if (statvfs(berth.store->blobs.root, &st) != 0 || (st.f_flag & ST_RDONLY)) {
        res_bytes(req, 503, "text/plain", H2O_STRLIT("storage unavailable\n"));
    } else if (store_space(berth.store, &avail) == 1) {
        char msg[160];
        int n = snprintf(msg, sizeof(msg), "ok, but pushes are refused: %llu MiB free, below storage.min_free\n",
                         (unsigned long long)(avail >> 20));
        res_bytes(req, 200, "text/plain", msg, (size_t)n);
    } else {
        res_bytes(req, 200, "text/plain", H2O_STRLIT("ok\n"));
    }
}

/* Prometheus text format: the mirrors' counters, the storage's, the connections', the scrub's. */
void api_metrics(h2o_req_t *req)
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
    char *out = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&out, &len);
    for (size_t c = 0; c < sizeof(counters) / sizeof(counters[0]); ++c) {
        fprintf(fp, "# HELP %s %s\n# TYPE %s counter\n", counters[c].name, counters[c].help, counters[c].name);
        for (size_t i = 0; i < nmirrors; ++i) {
            uint64_t v = __atomic_load_n((uint64_t *)((char *)&mirrors[i] + counters[c].off), __ATOMIC_RELAXED);
            fprintf(fp, "%s{upstream=\"%s\",prefix=\"%s\"} %llu\n", counters[c].name, mirrors[i].cfg->upstream,
                    mirrors[i].cfg->prefix, (unsigned long long)v);
        }
    }
    uint64_t avail = 0;
    int low = store_space(berth.store, &avail);
    fprintf(fp,
            "# HELP berth_storage_free_bytes Free space on the storage volume.\n"
            "# TYPE berth_storage_free_bytes gauge\nberth_storage_free_bytes %llu\n"
            "# HELP berth_storage_low 1 while the free space is below storage.min_free (pushes refused).\n"
            "# TYPE berth_storage_low gauge\nberth_storage_low %d\n",
            (unsigned long long)avail, low == 1);
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
    fclose(fp);
    res_bytes(req, 200, "text/plain; version=0.0.4", out, len);
    free(out);
}

void api_quota_refuse(h2o_req_t *req, const quota_t *q, uint64_t need)
{
    char msg[512], limit[32], used[32], more[32];
    quota_format_size(q->bytes, limit, sizeof(limit));
    quota_format_size(q->used, used, sizeof(used));
    if (need > 0)
        snprintf(msg, sizeof(msg), "namespace %s is over its quota: %s of %s used, and this blob needs %s more", q->ns,
                 used, limit, quota_format_size(need, more, sizeof(more)));
    else
        snprintf(msg, sizeof(msg), "namespace %s is over its quota: %s of %s used; delete images to push again", q->ns,
                 used, limit);
    res_error(req, ERR_DENIED, msg,
              json_pack("{s:s,s:I,s:I,s:I}", "namespace", q->ns, "quota", (json_int_t)q->bytes, "used",
                        (json_int_t)q->used, "size", (json_int_t)need));
}

int api_space_ok(h2o_req_t *req)
{
    uint64_t avail;
    if (store_space(berth.store, &avail) != 1)
        return 0;
    char msg[200];
    snprintf(msg, sizeof(msg), "the storage volume has %llu MiB free, below storage.min_free: pushes are refused",
             (unsigned long long)(avail >> 20));
    res_error(req, ERR_NO_SPACE, msg,
              json_pack("{s:I,s:I}", "free", (json_int_t)avail, "min_free", (json_int_t)berth.cfg.storage_min_free));
    return -1;
}

void api_digest_refuse(h2o_req_t *req, digest_err_t e, const char *s)
{
    res_error(req, ERR_DIGEST_INVALID, e == DIGEST_EUNSUPPORTED ? "unsupported digest algorithm" : "invalid digest",
              json_pack("{s:s}", "digest", s));
}

int api_digest_arg(h2o_req_t *req, const char *s, digest_t *out)
{
    digest_err_t e = digest_parse(out, s, strlen(s));
    if (e == DIGEST_OK)
        return 0;
    api_digest_refuse(req, e, s);
    return -1;
}
