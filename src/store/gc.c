#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "store/blobstore.h"
#include "store/db.h"
#include "store/gc.h"
#include "util/log.h"
#include "util/status.h"
#include "util/time.h"

#define BATCH 256 /* queued items per write transaction: short enough that pushes hardly wait */

static db_query_t q_due_manifests = {"SELECT manifest_id FROM gc_manifest WHERE since <= ?1 ORDER BY since LIMIT ?2",
                                     0};
static db_query_t q_manifest = {
    "SELECT r.name, m.digest, m.size, EXISTS(SELECT 1 FROM tag WHERE manifest_id = m.id) OR "
    "EXISTS(SELECT 1 FROM manifest_ref x JOIN manifest p ON p.id = x.manifest_id WHERE x.digest = m.digest AND "
    "x.kind = 2 AND p.repository_id = m.repository_id) OR (m.subject IS NOT NULL AND "
    "EXISTS(SELECT 1 FROM manifest s WHERE s.repository_id = m.repository_id AND s.digest = m.subject)) "
    "FROM manifest m JOIN repository r ON r.id = m.repository_id WHERE m.id = ?1",
    0};
static db_query_t q_manifest_delete = {"DELETE FROM manifest WHERE id = ?1", 0};
static db_query_t q_unqueue_manifest = {"DELETE FROM gc_manifest WHERE manifest_id = ?1", 0};

static db_query_t q_due_links = {"SELECT repository_id, digest FROM gc_link WHERE since <= ?1 ORDER BY since LIMIT ?2",
                                 0};
static db_query_t q_link = {
    "SELECT r.name, EXISTS(SELECT 1 FROM manifest_ref x JOIN manifest m ON m.id = x.manifest_id WHERE "
    "x.digest = l.digest AND x.kind < 2 AND m.repository_id = l.repository_id) "
    "FROM repository_blob l JOIN repository r ON r.id = l.repository_id WHERE l.repository_id = ?1 AND l.digest = ?2",
    0};
static db_query_t q_link_delete = {"DELETE FROM repository_blob WHERE repository_id = ?1 AND digest = ?2", 0};
static db_query_t q_unqueue_link = {"DELETE FROM gc_link WHERE repository_id = ?1 AND digest = ?2", 0};

static db_query_t q_due_blobs = {"SELECT digest FROM gc_blob LIMIT ?1", 0};
static db_query_t q_blob = {
    "SELECT size, EXISTS(SELECT 1 FROM repository_blob WHERE digest = b.digest) FROM blob b WHERE b.digest = ?1", 0};
static db_query_t q_blob_delete = {"DELETE FROM blob WHERE digest = ?1", 0};
static db_query_t q_unqueue_blob = {"DELETE FROM gc_blob WHERE digest = ?1", 0};
static db_query_t q_blob_row = {"SELECT 1 FROM blob WHERE digest = ?1", 0};

typedef struct {
    db_t *db;
    const char *root;
    const gc_options_t *o;
    gc_stats_t *st;
    int64_t now;
    /* the blob files moved aside by the open batch: unlinked after its commit, put back if it fails */
    struct {
        char from[BLOBSTORE_PATH_MAX], to[BLOBSTORE_PATH_MAX];
    } * aside;
    size_t naside;
    unsigned seq;
} run_t;

static void report(run_t *r, const char *kind, const char *repo, const char *digest, uint64_t size)
{
    if (r->o->report != NULL) {
        gc_item_t it = {kind, repo, digest, size};
        r->o->report(r->o->ctx, &it);
    }
}

/* Run `q` bound to (i1) or (i1, t2) when t2 is set: 0 or BERTH_ERROR. */
static int run1(db_t *db, db_query_t *q, int64_t i1, const char *t2)
{
    sqlite3_stmt *s = db_stmt(db, q);
    if (s == NULL)
        return BERTH_ERROR;
    if (t2 != NULL) {
        sqlite3_bind_int64(s, 1, i1);
        db_bind_text(s, 2, t2);
    } else {
        sqlite3_bind_int64(s, 1, i1);
    }
    return db_run(db, s) == 0 ? 0 : BERTH_ERROR;
}

static int run_text(db_t *db, db_query_t *q, const char *t1)
{
    sqlite3_stmt *s = db_stmt(db, q);
    if (s == NULL)
        return BERTH_ERROR;
    db_bind_text(s, 1, t1);
    return db_run(db, s) == 0 ? 0 : BERTH_ERROR;
}

/* One queued manifest: removed if nothing keeps it (its triggers queue what it referenced), unqueued if something
 * does. 1 if removed, 0 if kept, BERTH_ERROR. */
static int manifest_one(run_t *r, int64_t id)
{
    sqlite3_stmt *s = db_stmt(r->db, &q_manifest);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, id);
    int rc = db_step(r->db, s), live = 1;
    char repo[256] = "", digest[DIGEST_MAX_STR + 1] = "";
    uint64_t size = 0;
    if (rc == 1) {
        snprintf(repo, sizeof(repo), "%s", (const char *)sqlite3_column_text(s, 0));
        snprintf(digest, sizeof(digest), "%s", (const char *)sqlite3_column_text(s, 1));
        size = (uint64_t)sqlite3_column_int64(s, 2);
        live = sqlite3_column_int(s, 3);
    }
    db_done(r->db, s);
    if (rc < 0)
        return rc;
    r->st->examined++;
    if (live) /* or gone already */
        return run1(r->db, &q_unqueue_manifest, id, NULL);
    if (run1(r->db, &q_manifest_delete, id, NULL) != 0)
        return BERTH_ERROR;
    r->st->manifests++;
    report(r, "manifest", repo, digest, size);
    return 1;
}

static int link_one(run_t *r, int64_t repo_id, const char *digest)
{
    sqlite3_stmt *s = db_stmt(r->db, &q_link);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, repo_id);
    db_bind_text(s, 2, digest);
    int rc = db_step(r->db, s), live = 1;
    char repo[256] = "";
    if (rc == 1) {
        snprintf(repo, sizeof(repo), "%s", (const char *)sqlite3_column_text(s, 0));
        live = sqlite3_column_int(s, 1);
    }
    db_done(r->db, s);
    if (rc < 0)
        return rc;
    r->st->examined++;
    if (live)
        return run1(r->db, &q_unqueue_link, repo_id, digest);
    if (run1(r->db, &q_link_delete, repo_id, digest) != 0)
        return BERTH_ERROR;
    r->st->links++;
    report(r, "link", repo, digest, 0);
    return 1;
}

static int blob_one(run_t *r, const char *digest)
{
    sqlite3_stmt *s = db_stmt(r->db, &q_blob);
    if (s == NULL)
        return BERTH_ERROR;
    db_bind_text(s, 1, digest);
    int rc = db_step(r->db, s), live = 1;
    uint64_t size = 0;
    if (rc == 1) {
        size = (uint64_t)sqlite3_column_int64(s, 0);
        live = sqlite3_column_int(s, 1);
    }
    db_done(r->db, s);
    if (rc < 0)
        return rc;
    r->st->examined++;
    if (run_text(r->db, &q_unqueue_blob, digest) != 0)
        return BERTH_ERROR;
    if (live)
        return 0;
    digest_t d;
    if (digest_parse(&d, digest, strlen(digest)) != 0) { /* the database holds only parsed digests */
        log_error("gc: the blob row %s is no digest: left alone", digest);
        return 0;
    }
    if (!r->o->dry_run) {
        blobstore_t bs = {.root = (char *)r->root};
        char from[BLOBSTORE_PATH_MAX], to[BLOBSTORE_PATH_MAX];
        blobstore_path(&bs, &d, from, sizeof(from));
        snprintf(to, sizeof(to), "%s/tmp/gc.%ld.%s-%s", r->root, (long)getpid(), digest_algo_name(d.algo),
                 digest_hex(&d));
        if (rename(from, to) == 0) {
            snprintf(r->aside[r->naside].from, sizeof(r->aside[0].from), "%s", from);
            snprintf(r->aside[r->naside].to, sizeof(r->aside[0].to), "%s", to);
            r->naside++;
        } else if (errno != ENOENT) {
            log_error("gc: cannot move %s aside: %s; the blob stays", from, strerror(errno));
            return 0;
        } else {
            log_warn("gc: blob %s had no file; its row goes", digest);
            size = 0;
        }
    }
    if (run_text(r->db, &q_blob_delete, digest) != 0)
        return BERTH_ERROR;
    r->st->blobs++;
    r->st->bytes_freed += size;
    report(r, "blob", NULL, digest, size);
    return 1;
}

/* After the batch: unlink what it moved aside (committed), or put it back (rolled back). */
static void settle(run_t *r, int committed)
{
    for (size_t i = 0; i < r->naside; ++i) {
        if (committed) {
            if (unlink(r->aside[i].to) != 0 && errno != ENOENT)
                log_error("gc: cannot remove %s: %s", r->aside[i].to, strerror(errno));
        } else if (rename(r->aside[i].to, r->aside[i].from) != 0) {
            log_error("gc: cannot put %s back to %s: %s (gc_recover will)", r->aside[i].to, r->aside[i].from,
                      strerror(errno));
        }
    }
    r->naside = 0;
}

typedef enum { PHASE_MANIFESTS, PHASE_LINKS, PHASE_BLOBS } phase_t;

/* One batch of `phase`: the number of queued items looked at (0: the phase is done), or BERTH_ERROR. */
static int batch(run_t *r, phase_t phase)
{
    int64_t ids[BATCH];
    char digests[BATCH][DIGEST_MAX_STR + 1];
    int n = 0, rc;
    sqlite3_stmt *s;
    if (phase == PHASE_MANIFESTS) {
        s = db_stmt(r->db, &q_due_manifests);
        if (s != NULL)
            sqlite3_bind_int64(s, 1, r->now - r->o->untagged_grace_s);
    } else if (phase == PHASE_LINKS) {
        s = db_stmt(r->db, &q_due_links);
        if (s != NULL)
            sqlite3_bind_int64(s, 1, r->now - r->o->blob_grace_s);
    } else {
        s = db_stmt(r->db, &q_due_blobs);
    }
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, phase == PHASE_BLOBS ? 1 : 2, BATCH);
    while (n < BATCH && (rc = db_step(r->db, s)) == 1) {
        ids[n] = sqlite3_column_int64(s, 0);
        if (phase != PHASE_MANIFESTS) {
            const char *t = (const char *)sqlite3_column_text(s, phase == PHASE_LINKS ? 1 : 0);
            snprintf(digests[n], sizeof(digests[n]), "%s", t ? t : "");
        }
        ++n;
    }
    db_done(r->db, s);
    if (rc < 0)
        return rc;
    for (int i = 0; i < n; ++i) {
        rc = phase == PHASE_MANIFESTS ? manifest_one(r, ids[i])
             : phase == PHASE_LINKS   ? link_one(r, ids[i], digests[i])
                                      : blob_one(r, digests[i]);
        if (rc < 0)
            return rc;
    }
    return n;
}

int gc_run(metastore_t *db, const char *root, const gc_options_t *o, gc_stats_t *st)
{
    run_t r = {db, root, o, st, time_now_s(), NULL, 0, 0};
    const char *err = NULL;
    int rc = 0;
    if ((r.aside = malloc(BATCH * sizeof(*r.aside))) == NULL)
        return BERTH_ERROR;
    if (!o->dry_run && gc_recover(db, root) != 0) {
        free(r.aside);
        return BERTH_ERROR;
    }
    /* a dry run is one transaction, rolled back: what a removal makes collectable is found as in a real run */
    if (o->dry_run && db_begin(db, 1, &err) != 0)
        goto Failed;
    for (phase_t phase = o->untagged_grace_s > 0 ? PHASE_MANIFESTS : PHASE_LINKS; phase <= PHASE_BLOBS; ++phase) {
        for (;;) {
            if (!o->dry_run && db_begin(db, 1, &err) != 0)
                goto Failed;
            int n = batch(&r, phase);
            if (n < 0) {
                err = "a query failed";
                if (!o->dry_run) {
                    db_rollback(db);
                    settle(&r, 0);
                }
                goto Failed;
            }
            if (!o->dry_run) {
                if (db_commit(db, &err) != 0) {
                    db_rollback(db);
                    settle(&r, 0);
                    goto Failed;
                }
                settle(&r, 1);
            }
            if (n == 0)
                break;
            if (o->stop != NULL && __atomic_load_n(o->stop, __ATOMIC_ACQUIRE)) {
                phase = PHASE_BLOBS; /* the rest waits for the next run */
                break;
            }
        }
    }
    if (o->dry_run)
        db_rollback(db);
    free(r.aside);
    return rc;
Failed:
    if (o->dry_run)
        db_rollback(db);
    log_error("gc: stopped: %s", err ? err : "?");
    free(r.aside);
    return BERTH_ERROR;
}

int gc_recover(metastore_t *db, const char *root)
{
    char dir[BLOBSTORE_PATH_MAX], path[BLOBSTORE_PATH_MAX], final[BLOBSTORE_PATH_MAX];
    const char *err;
    snprintf(dir, sizeof(dir), "%s/tmp", root);
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? 0 : BERTH_ERROR;
    /* under the write lock: no collection of any process is between its rename and its commit now */
    if (db_begin(db, 1, &err) != 0) {
        closedir(d);
        log_error("gc: cannot lock the database to recover: %s", err);
        return BERTH_ERROR;
    }
    blobstore_t bs = {.root = (char *)root};
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        const char *dot, *dash;
        char str[DIGEST_MAX_STR + 1];
        digest_t dg;
        if (strncmp(e->d_name, "gc.", 3) != 0 || (dot = strchr(e->d_name + 3, '.')) == NULL ||
            (dash = strchr(dot + 1, '-')) == NULL)
            continue;
        snprintf(str, sizeof(str), "%.*s:%s", (int)(dash - dot - 1), dot + 1, dash + 1);
        if (digest_parse(&dg, str, strlen(str)) != 0 ||
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
            continue;
        sqlite3_stmt *s = db_stmt(db, &q_blob_row);
        if (s == NULL) {
            rc = BERTH_ERROR;
            break;
        }
        db_bind_text(s, 1, dg.str);
        int row = db_step(db, s);
        db_done(db, s);
        if (row < 0) {
            rc = BERTH_ERROR;
            break;
        }
        blobstore_path(&bs, &dg, final, sizeof(final));
        if (row == 1 && access(final, F_OK) != 0) {
            char shard[BLOBSTORE_PATH_MAX];
            snprintf(shard, sizeof(shard), "%s", final);
            *strrchr(shard, '/') = '\0';
            if (rename(path, final) == 0 && fsync_dir(shard) == 0)
                log_info("gc: put back %s (a collection stopped before its commit)", dg.str);
            else
                log_error("gc: cannot put back %s to %s: %s", path, final, strerror(errno));
        } else if (unlink(path) != 0 && errno != ENOENT) {
            log_error("gc: cannot remove %s: %s", path, strerror(errno));
        }
    }
    closedir(d);
    db_rollback(db);
    return rc;
}

/* ---- the background collector ---- */

struct gc_thread {
    char *root, *db_path;
    uint64_t interval_ms;
    gc_options_t o;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond; /* on CLOCK_MONOTONIC */
    int stop;
    gc_totals_t totals; /* under mu */
};

/* Wait `ms` or until told to stop: 1 if stopping. */
static int nap(gc_thread_t *g, uint64_t ms)
{
    uint64_t due = time_mono_ms() + ms;
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        uint64_t now = time_mono_ms();
        if (now >= due)
            break;
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        uint64_t ns = (uint64_t)until.tv_nsec + (due - now) % 1000 * 1000000;
        until.tv_sec += (time_t)((due - now) / 1000 + ns / 1000000000);
        until.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&g->cond, &g->mu, &until);
    }
    int stop = g->stop;
    pthread_mutex_unlock(&g->mu);
    return stop;
}

static void *gc_main(void *arg)
{
    gc_thread_t *g = arg;
    db_t *db = NULL;
    while (!nap(g, g->interval_ms)) {
        if (db == NULL && (db = db_open(g->db_path, 0)) == NULL) {
            pthread_mutex_lock(&g->mu);
            g->totals.failures++;
            pthread_mutex_unlock(&g->mu);
            continue;
        }
        gc_stats_t st = {0};
        double t0 = time_mono_s();
        int rc = gc_run(db, g->root, &g->o, &st);
        double secs = time_mono_s() - t0;
        if (st.manifests + st.links + st.blobs > 0)
            log_info("gc: removed %llu manifest(s), %llu link(s), %llu blob(s): %llu bytes freed in %.3f s",
                     (unsigned long long)st.manifests, (unsigned long long)st.links, (unsigned long long)st.blobs,
                     (unsigned long long)st.bytes_freed, secs);
        pthread_mutex_lock(&g->mu);
        g->totals.runs++;
        g->totals.failures += rc != 0;
        g->totals.last_seconds = secs;
        g->totals.total.manifests += st.manifests;
        g->totals.total.links += st.links;
        g->totals.total.blobs += st.blobs;
        g->totals.total.bytes_freed += st.bytes_freed;
        g->totals.total.examined += st.examined;
        pthread_mutex_unlock(&g->mu);
    }
    db_close(db);
    return NULL;
}

gc_thread_t *gc_thread_start(const char *root, const char *db_path, uint64_t interval_ms, const gc_options_t *o)
{
    gc_thread_t *g = calloc(1, sizeof(*g));
    pthread_condattr_t ca;
    if (g == NULL)
        return NULL;
    g->root = strdup(root);
    g->db_path = strdup(db_path);
    g->interval_ms = interval_ms;
    g->o = *o;
    g->o.report = NULL;
    g->o.stop = &g->stop;
    pthread_mutex_init(&g->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (g->root == NULL || g->db_path == NULL || pthread_create(&g->thread, NULL, gc_main, g) != 0) {
        log_error("gc: cannot start the collector's thread");
        free(g->root);
        free(g->db_path);
        pthread_mutex_destroy(&g->mu);
        pthread_cond_destroy(&g->cond);
        free(g);
        return NULL;
    }
    return g;
}

void gc_thread_stop(gc_thread_t *g)
{
    if (g == NULL)
        return;
    pthread_mutex_lock(&g->mu);
    __atomic_store_n(&g->stop, 1, __ATOMIC_RELEASE);
    pthread_cond_signal(&g->cond);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thread, NULL);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cond);
    free(g->root);
    free(g->db_path);
    free(g);
}

void gc_thread_totals(gc_thread_t *g, gc_totals_t *out)
{
    memset(out, 0, sizeof(*out));
    if (g == NULL)
        return;
    pthread_mutex_lock(&g->mu);
    *out = g->totals;
    pthread_mutex_unlock(&g->mu);
}
