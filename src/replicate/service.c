/* The server's replication thread; see service.h. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "replicate/replicate.h"
#include "replicate/service.h"
#include "util/log.h"
#include "util/time.h"

#define QUEUE_MAX 256    /* repositories waiting; beyond, a catch-up run of the on_push rules instead */
#define SETTLE_MS 200    /* a push of an index puts its children first: let the burst end before running */
#define FIRST_RUN_MS 500 /* the catch-up at start, once the server listens */

struct replicate_service {
    const config_t *cfg;
    store_t *store;
    replicate_t *r;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int stop; /* read by the transfers without the lock (atomically) */
    /* under mu */
    char *queue[QUEUE_MAX];
    size_t nqueue;
    int overflow;        /* names were dropped: run the on_push rules in full */
    uint64_t first_push; /* when the oldest queued name arrived (monotonic ms) */
    uint64_t *due;       /* per rule: when it runs next in full (UINT64_MAX: only on events) */
};

static int write_via_writer(void *ctx, metastore_write_fn fn, void *arg)
{
    return metastore_write(ctx, fn, arg);
}

static void log_line(void *ctx, const char *line)
{
    const char *rule = ctx;
    log_info("replication %s: %s", rule, line);
}

/* Run rule `i` (for `repo` alone, unless NULL), without the lock. */
static void run(replicate_service_t *s, metastore_t *db, size_t i, const char *repo)
{
    const config_replication_t *rule = replicate_rule(s->r, i);
    replicate_env_t env = {db,
                           &s->store->blobs,
                           s->cfg->storage_root,
                           s->cfg->storage_manifest_max_size,
                           s->cfg->http_max_body_size,
                           write_via_writer,
                           s->store->writer,
                           &s->stop,
                           log_line,
                           rule->name};
    replicate_stats_t st = {0};
    uint64_t t0 = time_mono_ms();
    int rc = replicate_run(s->r, i, &env, repo, 0, &st);
    double secs = (double)(time_mono_ms() - t0) / 1000.0;
    if (rc != 0 && !__atomic_load_n(&s->stop, __ATOMIC_RELAXED))
        log_warn("replication %s%s%s: %llu images copied, %llu failed (%s); the next run tries again", rule->name,
                 repo ? " of " : "", repo ? repo : "", (unsigned long long)st.images, (unsigned long long)st.errors,
                 st.first_error);
    else if (st.images > 0)
        log_info("replication %s%s%s: %llu images (%llu manifests), %llu blobs, %llu bytes copied in %.2f s",
                 rule->name, repo ? " of " : "", repo ? repo : "", (unsigned long long)st.images,
                 (unsigned long long)st.manifests, (unsigned long long)st.blobs, (unsigned long long)st.bytes, secs);
}

static void *service_main(void *arg)
{
    replicate_service_t *s = arg;
    metastore_t *db = metastore_open(s->store->db_path, 0);
    if (db == NULL) {
        log_error("replication: cannot open the database; no replication in this process");
        return NULL;
    }
    size_t n = replicate_count(s->r);
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        uint64_t now = time_mono_ms(), wake = UINT64_MAX;
        /* pushed repositories first, once the burst settled */
        if ((s->nqueue > 0 || s->overflow) && now >= s->first_push + SETTLE_MS) {
            char *names[QUEUE_MAX];
            size_t count = s->nqueue;
            int overflow = s->overflow;
            memcpy(names, s->queue, count * sizeof(*names));
            s->nqueue = 0;
            s->overflow = 0;
            pthread_mutex_unlock(&s->mu);
            for (size_t i = 0; i < n && !__atomic_load_n(&s->stop, __ATOMIC_RELAXED); ++i) {
                const config_replication_t *rule = replicate_rule(s->r, i);
                if (rule->pull || !rule->on_push)
                    continue;
                if (overflow)
                    run(s, db, i, NULL);
                else
                    for (size_t k = 0; k < count && !__atomic_load_n(&s->stop, __ATOMIC_RELAXED); ++k)
                        if (replicate_covers(s->r, i, names[k]))
                            run(s, db, i, names[k]);
            }
            for (size_t k = 0; k < count; ++k)
                free(names[k]);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        if (s->nqueue > 0 || s->overflow)
            wake = s->first_push + SETTLE_MS;
        for (size_t i = 0; i < n && !s->stop; ++i) {
            if (s->due[i] > now) {
                if (s->due[i] < wake)
                    wake = s->due[i];
                continue;
            }
            uint64_t every = replicate_rule(s->r, i)->schedule_ms;
            s->due[i] = every > 0 ? now + every : UINT64_MAX;
            pthread_mutex_unlock(&s->mu);
            run(s, db, i, NULL);
            pthread_mutex_lock(&s->mu);
            wake = 0; /* look again: pushes may have queued meanwhile */
            break;
        }
        if (wake == 0 || s->stop)
            continue;
        if (wake == UINT64_MAX) {
            pthread_cond_wait(&s->cond, &s->mu);
        } else {
            struct timespec until = time_mono_ts(wake);
            pthread_cond_timedwait(&s->cond, &s->mu, &until);
        }
    }
    pthread_mutex_unlock(&s->mu);
    metastore_close(db);
    return NULL;
}

replicate_service_t *replicate_service_start(const config_t *cfg, store_t *store, int *failed)
{
    *failed = 0;
    if (cfg->nreplication == 0)
        return NULL;
    char *err = NULL;
    replicate_t *r = replicate_new(cfg, &err);
    if (r == NULL) {
        log_error("replication: %s", err ? err : "cannot set up the rules");
        free(err);
        *failed = 1;
        return NULL;
    }
    replicate_service_t *s = calloc(1, sizeof(*s));
    s->cfg = cfg;
    s->store = store;
    s->r = r;
    s->due = calloc(cfg->nreplication, sizeof(*s->due));
    uint64_t first = time_mono_ms() + FIRST_RUN_MS;
    for (size_t i = 0; i < cfg->nreplication; ++i) { /* the catch-up: the server's rules once at start */
        const config_replication_t *rule = &cfg->replication[i];
        s->due[i] = rule->schedule_ms > 0 || rule->on_push ? first : UINT64_MAX;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&s->thread, NULL, service_main, s) != 0) {
        log_error("replication: cannot start its thread");
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cond);
        free(s->due);
        free(s);
        replicate_free(r);
        *failed = 1;
        return NULL;
    }
    log_info("replication: %zu rule(s)", cfg->nreplication);
    return s;
}

void replicate_service_notify(replicate_service_t *s, const char *repo)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    int known = 0;
    for (size_t i = 0; i < s->nqueue && !known; ++i)
        known = strcmp(s->queue[i], repo) == 0;
    if (!known) {
        if (s->nqueue == 0 && !s->overflow)
            s->first_push = time_mono_ms();
        if (s->nqueue < QUEUE_MAX)
            s->queue[s->nqueue++] = strdup(repo);
        else
            s->overflow = 1;
        pthread_cond_signal(&s->cond);
    }
    pthread_mutex_unlock(&s->mu);
}

void replicate_service_stop(replicate_service_t *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    __atomic_store_n(&s->stop, 1, __ATOMIC_RELAXED);
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    for (size_t i = 0; i < s->nqueue; ++i)
        free(s->queue[i]);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    free(s->due);
    replicate_free(s->r);
    free(s);
}
