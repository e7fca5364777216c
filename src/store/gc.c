#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "store/blobstore.h"
#include "store/db.h"
#include "store/evict.h"
#include "store/gc.h"
#include "util/log.h"
#include "util/status.h"
#include "util/time.h"

#define BATCH 1024          /* queued items per write transaction at most */
#define GC_UNLINK_MAX BATCH /* a transaction deletes at most BATCH blob rows: so many files to unlink after it */
#define BATCH_MS 25         /* and milliseconds: pushes wait for a transaction this long at most */
#define CACHE_KIB 65536     /* the connection's page cache while collecting (SQLite's default: 2 MiB) */

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
static db_query_t q_to_unlink = {"INSERT INTO gc_unlink VALUES (?1) ON CONFLICT DO NOTHING", 0};
static db_query_t q_unlinks = {
    "SELECT u.digest, EXISTS(SELECT 1 FROM blob WHERE digest = u.digest) FROM gc_unlink u LIMIT ?1", 0};
static db_query_t q_unlinked = {"DELETE FROM gc_unlink WHERE digest = ?1", 0};

typedef struct {
    db_t *db;
    const char *root;
    const gc_options_t *o;
    gc_stats_t *st;
    int64_t now;
    int64_t *ids; /* a batch's queue items */
    char (*digests)[DIGEST_MAX_STR + 1];
    uint64_t gone_blobs, gone_bytes; /* the blob rows the batch deleted, for the store's totals */
} run_t;

static void report(run_t *r, const char *kind, const char *repo, const char *digest, uint64_t size)
{
    if (r->o->report != NULL) {
        gc_item_t it = {kind, repo, digest, size};
        r->o->report(r->o->ctx, &it);
    }
}

/* Run `q` bound to (i1), or (i1, t2) when t2 is set: 0 or BERTH_ERROR. */
static int run1(db_t *db, db_query_t *q, int64_t i1, const char *t2)
{
    return db_run_keyed(db, q, i1, t2) < 0 ? BERTH_ERROR : 0;
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
    if (!r->o->dry_run && run_text(r->db, &q_to_unlink, d.str) != 0) /* the file goes once this commits */
        return BERTH_ERROR;
    if (run_text(r->db, &q_blob_delete, digest) != 0)
        return BERTH_ERROR;
    r->st->blobs++;
    r->st->bytes_freed += size;
    r->gone_blobs++;
    r->gone_bytes += size;
    report(r, "blob", NULL, digest, size);
    return 1;
}

/*
 * Unlinking the files of the blobs whose rows a committed transaction deleted (gc_unlink), inside the caller's write
 * transaction: no push can record a blob meanwhile, so a file whose digest no row names now is garbage. (A push that
 * renamed its own file of that digest into place and is waiting for the lock to record it finds the file gone in
 * its transaction and answers 503: store/gc.h.) An unlink can wait for the disk (a file system mounted with
 * `discard` trims the blocks at once), so UNLINKERS threads do them while the transaction's own work goes on.
 */
#define UNLINKERS 8

typedef struct {
    const char *root;
    pthread_t th[UNLINKERS];
    int nth;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    char (*digests)[DIGEST_MAX_STR + 1]; /* the files to unlink: [0, n), handed out from `next`; listed rows kept
                                            because pushed again: [cap - kept, cap) */
    size_t cap, n, next, finished, kept;
    int stop;
    int lock; /* the right to remove blob files (blobstore_removal_begin) while unlinking, or -1 */
} unlinkers_t;

static void *unlinker_main(void *arg)
{
    unlinkers_t *u = arg;
    blobstore_t bs = {.root = (char *)u->root};
    char path[BLOBSTORE_PATH_MAX];
    /* eight threads at the collector's nice 10 would weigh as much as one serving thread: these take what is left */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19) != 0)
        log_warn("gc: cannot lower the unlinkers' priority: %s", strerror(errno));
    pthread_mutex_lock(&u->mu);
    for (;;) {
        while (!u->stop && u->next >= u->n)
            pthread_cond_wait(&u->go, &u->mu);
        if (u->next >= u->n)
            break;
        digest_t d;
        size_t i = u->next++;
        int ok = digest_parse(&d, u->digests[i], strlen(u->digests[i])) == 0;
        pthread_mutex_unlock(&u->mu);
        if (ok) {
            blobstore_path(&bs, &d, path, sizeof(path));
            if (unlink(path) != 0 && errno != ENOENT)
                log_error("gc: cannot remove %s: %s", path, strerror(errno));
        }
        pthread_mutex_lock(&u->mu);
        if (++u->finished == u->n)
            pthread_cond_broadcast(&u->done);
    }
    pthread_mutex_unlock(&u->mu);
    return NULL;
}

/* Start the threads (fewer, or none: then unlinkers_wait does the work itself). */
static void unlinkers_start(unlinkers_t *u, const char *root, size_t cap)
{
    memset(u, 0, sizeof(*u));
    u->root = root;
    u->cap = cap;
    u->lock = -1;
    pthread_mutex_init(&u->mu, NULL);
    pthread_cond_init(&u->go, NULL);
    pthread_cond_init(&u->done, NULL);
    if ((u->digests = malloc(cap * sizeof(*u->digests))) == NULL)
        u->cap = 0;
    while (u->nth < UNLINKERS && pthread_create(&u->th[u->nth], NULL, unlinker_main, u) == 0)
        ++u->nth;
}

/* Wait until the files handed over are unlinked. */
static void unlinkers_wait(unlinkers_t *u)
{
    pthread_mutex_lock(&u->mu);
    if (u->nth == 0) { /* no thread: unlink here */
        u->stop = 1;
        pthread_mutex_unlock(&u->mu);
        unlinker_main(u);
        pthread_mutex_lock(&u->mu);
        u->stop = 0;
    }
    while (u->finished < u->n)
        pthread_cond_wait(&u->done, &u->mu);
    u->n = u->next = u->finished = 0;
    pthread_mutex_unlock(&u->mu);
    blobstore_unlock(u->lock);
    u->lock = -1;
}

static void unlinkers_stop(unlinkers_t *u)
{
    pthread_mutex_lock(&u->mu);
    u->stop = 1;
    pthread_cond_broadcast(&u->go);
    pthread_mutex_unlock(&u->mu);
    for (int i = 0; i < u->nth; ++i)
        pthread_join(u->th[i], NULL);
    blobstore_unlock(u->lock); /* a failed transaction's, not waited for */
    pthread_mutex_destroy(&u->mu);
    pthread_cond_destroy(&u->go);
    pthread_cond_destroy(&u->done);
    free(u->digests);
}

/*
 * Hand the files gc_unlink lists (whose digest no row names again) to the unlinkers and take them off the list, in the
 * caller's write transaction; the caller waits for them (unlinkers_wait) before it commits. While a backup holds the
 * blob files (store/blobstore.h), nothing is handed out: the list waits for a later transaction. At most `cap` rows a
 * time; the rest stay listed for the next. 0 or BERTH_ERROR.
 */
static int unlink_pending(db_t *db, unlinkers_t *u)
{
    if (u->cap == 0)
        return 0;
    u->lock = blobstore_removal_begin(u->root);
    if (u->lock < 0)
        return 0; /* a backup is reading blob files */
    sqlite3_stmt *s = db_stmt(db, &q_unlinks);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, (int64_t)u->cap);
    int rc;
    size_t n = 0, kept = 0;
    while ((rc = db_step(db, s)) == 1 && n + kept < u->cap) {
        const char *str = (const char *)sqlite3_column_text(s, 0);
        if (str == NULL)
            continue;
        /* pushed again since: the file stays, the row goes */
        size_t i = sqlite3_column_int(s, 1) ? u->cap - ++kept : n++;
        snprintf(u->digests[i], sizeof(u->digests[0]), "%s", str);
    }
    db_done(db, s);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&u->mu);
    u->n = n;
    u->kept = kept;
    u->next = u->finished = 0;
    pthread_cond_broadcast(&u->go);
    pthread_mutex_unlock(&u->mu);
    for (size_t i = 0; i < n + kept; ++i)
        if (run_text(db, &q_unlinked, u->digests[i < n ? i : u->cap - (i - n) - 1]) != 0)
            return BERTH_ERROR;
    return 0;
}

typedef enum { PHASE_MANIFESTS, PHASE_LINKS, PHASE_BLOBS } phase_t;

/* One batch of `phase`: the number of queued items looked at (0: the phase is done), or BERTH_ERROR. */
static db_query_t q_totals = {"UPDATE store_totals SET blobs = blobs - ?1, bytes = bytes - ?2 WHERE id = 1", 0};

static int batch_items(run_t *r, phase_t phase);

/* A batch, and the store's totals (schema/008_totals.sql) lowered by the blob rows it deleted: one update a batch,
 * not a trigger a row. */
static int batch(run_t *r, phase_t phase)
{
    r->gone_blobs = r->gone_bytes = 0;
    int n = batch_items(r, phase);
    if (n >= 0 && r->gone_blobs > 0) {
        sqlite3_stmt *s = db_stmt(r->db, &q_totals);
        if (s == NULL)
            return BERTH_ERROR;
        sqlite3_bind_int64(s, 1, (int64_t)r->gone_blobs);
        sqlite3_bind_int64(s, 2, (int64_t)r->gone_bytes);
        if (db_run(r->db, s) != 0)
            return BERTH_ERROR;
    }
    return n;
}

static int batch_items(run_t *r, phase_t phase)
{
    int64_t *ids = r->ids;
    char(*digests)[DIGEST_MAX_STR + 1] = r->digests;
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
    uint64_t t0 = time_mono_ms();
    for (int i = 0; i < n; ++i) {
        rc = phase == PHASE_MANIFESTS ? manifest_one(r, ids[i])
             : phase == PHASE_LINKS   ? link_one(r, ids[i], digests[i])
                                      : blob_one(r, digests[i]);
        if (rc < 0)
            return rc;
        if (!r->o->dry_run && time_mono_ms() - t0 >= BATCH_MS) /* the rest stays queued for the next batch */
            return i + 1;
        /* a thread waiting for this CPU (a server's event loop) runs now rather than at the end of our time slice:
         * the collector's share stays what its nice value gives, but in slices of one item, not milliseconds */
        sched_yield();
    }
    return n;
}

static int recover(db_t *db, unlinkers_t *u, const gc_stats_t *st);

int gc_run(metastore_t *db, const char *root, const gc_options_t *o, gc_stats_t *st)
{
    run_t r = {db, root, o, st, time_now_s(), NULL, NULL};
    const char *err = NULL;
    int rc = 0;
    unlinkers_t u;
    unlinkers_start(&u, root, o->dry_run ? 0 : GC_UNLINK_MAX);
    r.ids = malloc(BATCH * sizeof(*r.ids));
    r.digests = malloc(BATCH * sizeof(*r.digests));
    if (r.ids == NULL || r.digests == NULL) {
        rc = BERTH_ERROR;
        goto Exit;
    }
    char pragma[64]; /* the queue's rows and what they point at are read once each: more of them in memory */
    snprintf(pragma, sizeof(pragma), "PRAGMA cache_size=-%d", CACHE_KIB);
    db_exec(db, pragma);
    /* a dry run is one transaction, rolled back: what a removal makes collectable is found as in a real run */
    if (o->dry_run && db_begin(db, 1, &err) != 0)
        goto Failed;
    /* mirrors over their limits first: what they evict is collected by this run (logged; the collection goes on) */
    int evicted = evict_run(db, o, st, r.now);
    for (phase_t phase = o->untagged_grace_s > 0 ? PHASE_MANIFESTS : PHASE_LINKS; phase <= PHASE_BLOBS; ++phase) {
        for (;;) {
            int n;
            if (!o->dry_run && db_begin(db, 1, &err) != 0)
                goto Failed;
            /* the files of the last batch's blobs go in this transaction (their rows' delete is durable), on the
             * unlinkers' threads while this one does the batch */
            if (!o->dry_run && unlink_pending(db, &u) != 0) {
                db_rollback(db);
                err = "a query failed";
                goto Failed;
            }
            n = batch(&r, phase);
            if (!o->dry_run)
                unlinkers_wait(&u);
            if (n < 0) {
                err = "a query failed";
                if (!o->dry_run)
                    db_rollback(db);
                goto Failed;
            }
            if (!o->dry_run && db_commit(db, &err) != 0) {
                db_rollback(db);
                goto Failed;
            }
            if (n == 0)
                break;
            if (o->stop != NULL && __atomic_load_n(o->stop, __ATOMIC_ACQUIRE)) {
                phase = PHASE_BLOBS; /* the rest waits for the next run */
                break;
            }
        }
    }
    if (!o->dry_run && recover(db, &u, st) != 0) /* the files of a last batch (stopped early); the run counted */
        goto Failed;
    if (o->dry_run)
        db_rollback(db);
    rc = evicted;
    goto Exit;
Failed:
    if (o->dry_run)
        db_rollback(db);
    log_error("gc: stopped: %s", err ? err : "?");
    rc = BERTH_ERROR;
Exit:
    unlinkers_stop(&u);
    free(r.ids);
    free(r.digests);
    return rc;
}

static db_query_t q_record = {
    "UPDATE store_totals SET gc_runs = gc_runs + 1, gc_freed_bytes = gc_freed_bytes + ?1 WHERE id = 1", 0};

/* Unlink the files of the rows a collection deleted; with `st` (the end of a run), count the run and what it freed in
 * the database, for /metrics (the server's runs and berth gc's alike), in the same transaction. */
static int recover(db_t *db, unlinkers_t *u, const gc_stats_t *st)
{
    const char *err;
    if (db_begin(db, 1, &err) != 0) {
        log_error("gc: cannot lock the database to remove collected files: %s", err);
        return BERTH_ERROR;
    }
    int rc = unlink_pending(db, u);
    if (rc == 0 && st != NULL)
        rc = run1(db, &q_record, (int64_t)st->bytes_freed, NULL);
    unlinkers_wait(u);
    if (rc != 0 || db_commit(db, &err) != 0) {
        log_error("gc: cannot finish the removal of collected files: %s", rc != 0 ? "a query failed" : err);
        db_rollback(db);
        return BERTH_ERROR;
    }
    return 0;
}

int gc_recover(metastore_t *db, const char *root)
{
    unlinkers_t u;
    unlinkers_start(&u, root, GC_UNLINK_MAX);
    int rc = recover(db, &u, NULL);
    unlinkers_stop(&u);
    return rc;
}

/* ---- the background collector ---- */

struct gc_thread {
    char *root, *db_path;
    uint64_t interval_ms;
    gc_options_t o;
    const policy_t *policy;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond; /* on CLOCK_MONOTONIC */
    int stop;
    gc_totals_t totals;           /* under mu */
    gc_mirror_totals_t *mirrored; /* under mu: one per o.mirrors */
};

/* Wait `ms` or until told to stop: 1 if stopping. */
static int nap(gc_thread_t *g, uint64_t ms)
{
    uint64_t due = time_mono_ms() + ms;
    pthread_mutex_lock(&g->mu);
    while (!g->stop && time_mono_ms() < due) {
        struct timespec until = time_mono_ts(due);
        pthread_cond_timedwait(&g->cond, &g->mu, &until);
    }
    int stop = g->stop;
    pthread_mutex_unlock(&g->mu);
    return stop;
}

void gc_background_priority(void)
{
    /* on Linux, PRIO_PROCESS with a thread id sets that thread's nice value alone */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), GC_NICE) != 0)
        log_warn("gc: cannot lower the collector's priority: %s", strerror(errno));
}

/* Each eviction: logged, and counted for its mirror. */
static void on_removed(void *ctx, const gc_item_t *it)
{
    gc_thread_t *g = ctx;
    if (strcmp(it->kind, "image") != 0)
        return;
    log_info("gc: evicted %s@%s%s%s (%llu bytes, last pulled %lld s ago: %s)", it->repo, it->digest,
             *it->tags ? " tagged " : "", it->tags, (unsigned long long)it->size,
             (long long)(time_now_s() - it->pulled_at), it->why);
    pthread_mutex_lock(&g->mu);
    g->mirrored[it->mirror].images++;
    g->mirrored[it->mirror].bytes += it->size;
    pthread_mutex_unlock(&g->mu);
}

static void *gc_main(void *arg)
{
    gc_thread_t *g = arg;
    db_t *db = NULL;
    gc_background_priority();
    while (!nap(g, g->interval_ms)) {
        if (db == NULL && (db = db_open(g->db_path, 0)) == NULL) {
            pthread_mutex_lock(&g->mu);
            g->totals.failures++;
            pthread_mutex_unlock(&g->mu);
            continue;
        }
        retention_stats_t rs = {0};
        retention_options_t ro = {.stop = &g->stop};
        int rrc = policy_has_retention(g->policy) ? retention_run(g->policy, db, &ro, &rs) : 0;
        if (rs.removed > 0)
            log_info("retention: removed %llu tag(s) of %llu judged in %llu repositories",
                     (unsigned long long)rs.removed, (unsigned long long)rs.examined,
                     (unsigned long long)rs.repositories);
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
        g->totals.retention.repositories += rs.repositories;
        g->totals.retention.examined += rs.examined;
        g->totals.retention.removed += rs.removed;
        g->totals.retention_failures += rrc != 0;
        g->totals.total.images += st.images;
        g->totals.total.image_manifests += st.image_manifests;
        g->totals.total.image_bytes += st.image_bytes;
        pthread_mutex_unlock(&g->mu);
    }
    db_close(db);
    return NULL;
}

gc_thread_t *gc_thread_start(const char *root, const char *db_path, uint64_t interval_ms, const gc_options_t *o,
                             const policy_t *policy)
{
    gc_thread_t *g = calloc(1, sizeof(*g));
    pthread_condattr_t ca;
    if (g == NULL)
        return NULL;
    g->root = strdup(root);
    g->db_path = strdup(db_path);
    g->interval_ms = interval_ms;
    g->o = *o;
    g->o.report = on_removed;
    g->o.ctx = g;
    g->o.stop = &g->stop;
    g->policy = policy;
    g->mirrored = calloc(o->nmirrors + 1, sizeof(*g->mirrored));
    pthread_mutex_init(&g->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (g->root == NULL || g->db_path == NULL || g->mirrored == NULL ||
        pthread_create(&g->thread, NULL, gc_main, g) != 0) {
        log_error("gc: cannot start the collector's thread");
        free(g->mirrored);
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
    free(g->mirrored);
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

void gc_thread_mirror_totals(gc_thread_t *g, size_t i, gc_mirror_totals_t *out)
{
    memset(out, 0, sizeof(*out));
    if (g == NULL || i >= g->o.nmirrors)
        return;
    pthread_mutex_lock(&g->mu);
    *out = g->mirrored[i];
    pthread_mutex_unlock(&g->mu);
}
