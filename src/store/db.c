#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/blobstore.h"
#include "store/db.h"
#include "util/log.h"
#include "util/status.h"
#include "util/time.h"

#define ONEOFF_MAX 8 /* statements in use further up the stack of one connection, at once (nesting depth) */

struct metastore {
    sqlite3 *h;
    sqlite3_stmt **stmts; /* by db_query_t slot; NULL: not prepared on this connection yet */
    unsigned nstmts;
    sqlite3_stmt *oneoffs[ONEOFF_MAX];
    unsigned noneoffs;
    uint64_t queries;
    int wal;                /* in WAL mode, and the WAL index may still be mapped for the generation */
    const uint32_t *walhdr; /* the WAL index header in shared memory (SQLite's WalIndexHdr), or NULL */
    uint64_t gen;           /* the generation, and what it was computed from: */
    uint64_t seen_writes;   /*   this process's write count */
    uint64_t seen_ext;      /*   the WAL index header's change counter and checksum (or PRAGMA data_version) */
    int64_t seen_own;       /*   this connection's own changes */
    cache_t *cache;
    struct {
        uint64_t gen; /* 0: empty */
        int64_t value;
    } memo[DB_MEMO__COUNT];
};

/* ---- statements ---- */

static unsigned next_slot; /* slots handed out so far, across all modules */

static unsigned slot_of(db_query_t *q)
{
    unsigned s = __atomic_load_n(&q->slot, __ATOMIC_ACQUIRE);
    if (s == 0) {
        /* two threads may number a new statement at once: one number wins, the other is never used */
        unsigned mine = __atomic_add_fetch(&next_slot, 1, __ATOMIC_RELAXED), none = 0;
        s = __atomic_compare_exchange_n(&q->slot, &none, mine, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) ? mine : none;
    }
    return s - 1;
}

sqlite3_stmt *db_stmt(db_t *db, db_query_t *q)
{
    unsigned i = slot_of(q);
    ++db->queries;
    if (i >= db->nstmts) {
        unsigned n = i + 16;
        db->stmts = realloc(db->stmts, n * sizeof(*db->stmts));
        memset(db->stmts + db->nstmts, 0, (n - db->nstmts) * sizeof(*db->stmts));
        db->nstmts = n;
    }
    sqlite3_stmt *kept = db->stmts[i], *s = NULL;
    if (kept != NULL && !sqlite3_stmt_busy(kept)) {
        sqlite3_reset(kept); /* one run to SQLITE_DONE and not reset would refuse its bindings */
        sqlite3_clear_bindings(kept);
        return kept;
    }
    if (kept != NULL && db->noneoffs == ONEOFF_MAX) {
        log_error("sqlite: %s: nested too deep", q->sql);
        return NULL;
    }
    if (sqlite3_prepare_v3(db->h, q->sql, -1, kept ? 0 : SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
        log_error("sqlite prepare: %s: %s", q->sql, sqlite3_errmsg(db->h));
        sqlite3_finalize(s);
        return NULL;
    }
    if (kept == NULL)
        db->stmts[i] = s;
    else
        db->oneoffs[db->noneoffs++] = s;
    return s;
}

void db_done(db_t *db, sqlite3_stmt *s)
{
    for (unsigned i = db->noneoffs; i-- > 0;) {
        if (db->oneoffs[i] == s) {
            sqlite3_finalize(s);
            db->oneoffs[i] = db->oneoffs[--db->noneoffs];
            return;
        }
    }
    sqlite3_reset(s);
}

int db_step_error(db_t *db, sqlite3_stmt *s)
{
    log_error("sqlite: %s: %s", sqlite3_sql(s), sqlite3_errmsg(db->h));
    return BERTH_ERROR;
}

int db_step(db_t *db, sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : db_step_error(db, s);
}

int db_run(db_t *db, sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE)
        rc = 0;
    else if (sqlite3_extended_errcode(db->h) == SQLITE_CONSTRAINT_UNIQUE ||
             sqlite3_extended_errcode(db->h) == SQLITE_CONSTRAINT_PRIMARYKEY)
        rc = BERTH_EEXISTS;
    else
        rc = db_step_error(db, s);
    db_done(db, s);
    return rc;
}

int db_run_keyed(db_t *db, db_query_t *q, int64_t i1, const char *t2)
{
    sqlite3_stmt *s = db_stmt(db, q);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, i1);
    if (t2 != NULL)
        db_bind_text(s, 2, t2);
    return db_run(db, s) == 0 ? db_changes(db) : BERTH_ERROR;
}

void db_bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

int db_exec(db_t *db, const char *sql)
{
    char *err = NULL;
    ++db->queries;
    if (sqlite3_exec(db->h, sql, NULL, NULL, &err) != SQLITE_OK) {
        log_error("sqlite: %s: %s", sql, err ? err : sqlite3_errmsg(db->h));
        sqlite3_free(err);
        return BERTH_ERROR;
    }
    return 0;
}

int db_changes(db_t *db)
{
    return sqlite3_changes(db->h);
}

int64_t db_last_id(db_t *db)
{
    return sqlite3_last_insert_rowid(db->h);
}

uint64_t db_queries(db_t *db)
{
    return db->queries;
}

sqlite3 *db_handle(db_t *db)
{
    return db->h;
}

/* ---- transactions ---- */

static int tx_exec(db_t *db, const char *sql, const char **err)
{
    ++db->queries;
    if (sqlite3_exec(db->h, sql, NULL, NULL, NULL) == SQLITE_OK)
        return 0;
    if (err)
        *err = sqlite3_errmsg(db->h);
    return BERTH_ERROR;
}

int db_begin(db_t *db, int write, const char **err)
{
    return tx_exec(db, write ? "BEGIN IMMEDIATE" : "BEGIN", err);
}

int db_commit(db_t *db, const char **err)
{
    return tx_exec(db, "COMMIT", err);
}

void db_rollback(db_t *db)
{
    tx_exec(db, "ROLLBACK", NULL);
}

/* Never a deferred transaction for a write: upgrading its lock fails at once, instead of waiting, when another
 * connection wrote in between. */
int db_atomic_begin(db_atomic_t *a, db_t *db)
{
    a->db = db;
    a->outer = sqlite3_get_autocommit(db->h);
    return db_exec(db, a->outer ? "BEGIN IMMEDIATE" : "SAVEPOINT atomic");
}

int db_atomic_end(db_atomic_t *a, int rc)
{
    if (a->outer) {
        if (rc >= 0 && db_exec(a->db, "COMMIT") == 0)
            return rc;
        db_exec(a->db, "ROLLBACK");
        return rc >= 0 ? BERTH_ERROR : rc;
    }
    if (rc < 0)
        db_exec(a->db, "ROLLBACK TO atomic");
    if (db_exec(a->db, "RELEASE atomic") != 0 && rc >= 0)
        rc = BERTH_ERROR;
    return rc;
}

/* ---- migrations ---- */

int db_schema_version(db_t *db)
{
    sqlite3_stmt *s;
    int v = 0;
    ++db->queries;
    /* prepared here, not kept: before the first migration the table does not exist, and that is no error */
    if (sqlite3_prepare_v2(db->h, "SELECT max(version) FROM schema_version", -1, &s, NULL) != SQLITE_OK)
        return 0;
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return v;
}

static int applied(db_t *db, int version)
{
    sqlite3_stmt *s;
    int found = 0;
    ++db->queries;
    if (sqlite3_prepare_v2(db->h, "SELECT 1 FROM schema_version WHERE version = ?1", -1, &s, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_int(s, 1, version);
    found = sqlite3_step(s) == SQLITE_ROW;
    sqlite3_finalize(s);
    return found;
}

static int migrate(db_t *db)
{
    if (db_exec(db, "BEGIN IMMEDIATE") != 0)
        return BERTH_ERROR;
    if (db_exec(db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                    "applied_at INTEGER NOT NULL)") != 0)
        goto Error;
    /* every file not yet recorded, not only those above the highest: branches developed side by side take numbers
     * ahead of each other, and a database that got a later one first must still get the earlier one */
    for (const db_migration_t *mg = db_migrations; mg->sql; ++mg) {
        if (applied(db, mg->version))
            continue;
        log_info("applying schema %s", mg->name);
        if (db_exec(db, mg->sql) != 0)
            goto Error;
        char sql[256];
        snprintf(sql, sizeof(sql), "INSERT INTO schema_version VALUES (%d, '%s', %lld)", mg->version, mg->name,
                 (long long)time_now_s());
        if (db_exec(db, sql) != 0)
            goto Error;
    }
    return db_exec(db, "COMMIT");
Error:
    db_exec(db, "ROLLBACK");
    return BERTH_ERROR;
}

/* ---- connections ---- */

/* WAL mode (never locking_mode=EXCLUSIVE: the CLI must work while the server runs); remember whether it took. */
static int set_wal(db_t *db)
{
    static db_query_t q = {"PRAGMA journal_mode=WAL", 0};
    sqlite3_stmt *s = db_stmt(db, &q);
    if (s == NULL)
        return BERTH_ERROR;
    int rc = db_step(db, s);
    db->wal = rc == 1 && strcmp((const char *)sqlite3_column_text(s, 0), "wal") == 0;
    db_done(db, s);
    return rc < 0 ? BERTH_ERROR : 0;
}

db_t *db_open(const char *path, int migrate_it)
{
    db_t *db = calloc(1, sizeof(*db));
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &db->h, flags, NULL) != SQLITE_OK) {
        log_error("cannot open %s: %s", path, db->h ? sqlite3_errmsg(db->h) : "out of memory");
        goto Error;
    }
    sqlite3_busy_timeout(db->h, 10000);
    if (set_wal(db) != 0 || db_exec(db, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON") != 0)
        goto Error;
    if (migrate_it && migrate(db) != 0)
        goto Error;
    db->gen = 1;
    db_generation(db);
    return db;
Error:
    db_close(db);
    return NULL;
}

void db_close(db_t *db)
{
    if (db == NULL)
        return;
    cache_free(db->cache);
    for (unsigned i = 0; i < db->nstmts; ++i)
        sqlite3_finalize(db->stmts[i]);
    for (unsigned i = 0; i < db->noneoffs; ++i)
        sqlite3_finalize(db->oneoffs[i]);
    free(db->stmts);
    if (sqlite3_close(db->h) != SQLITE_OK)
        log_error("sqlite close: %s", sqlite3_errmsg(db->h));
    free(db);
}

/* ---- the generation ---- */

static uint64_t writes = 1; /* this process's: bumped by the writer thread */

uint64_t db_writes(void)
{
    return __atomic_load_n(&writes, __ATOMIC_ACQUIRE);
}

/*
 * Another process's commit (the CLI's) shows in the WAL index, the -shm file every connection to the database maps:
 * SQLite bumps its header's change counter (WalIndexHdr.iChange) with every commit, before the committer hears
 * "done". Reading it costs no lock and no system call. A query would cost a read transaction (two fcntl locks and a
 * stat), and SQLITE_FCNTL_DATA_VERSION alone does not see another connection's commit until this one has run a
 * query. The header layout is that of the wal-index format version 3007000 (https://sqlite.org/walformat.html),
 * checked before use; the mapping lives as long as the connection (SQLite keeps its own pointer to it as long).
 */
#define WALINDEX_VERSION 3007000
#define WALINDEX_REGION 32768                             /* the size SQLite maps the WAL index by */
enum { HDR_VERSION = 0, HDR_CHANGE = 2, HDR_CKSUM = 10 }; /* in u32 units: iVersion, iChange, aCksum[0] */

static void wal_index_map(db_t *db)
{
    sqlite3_file *f = NULL;
    void volatile *p = NULL;
    if (sqlite3_file_control(db->h, "main", SQLITE_FCNTL_FILE_POINTER, &f) != SQLITE_OK || f == NULL ||
        f->pMethods == NULL || f->pMethods->iVersion < 2 || f->pMethods->xShmMap == NULL) {
        db->wal = 0;
        return;
    }
    /* not yet there (a new database before its first transaction): tried again next time */
    if (f->pMethods->xShmMap(f, 0, WALINDEX_REGION, 0, &p) != SQLITE_OK || p == NULL)
        return;
    const uint32_t *h = (const uint32_t *)p;
    if (__atomic_load_n(&h[HDR_VERSION], __ATOMIC_ACQUIRE) == WALINDEX_VERSION)
        db->walhdr = h;
    else
        db->wal = 0;
}

/* Something that changes with every commit to the database, by any connection. */
static uint64_t data_version(db_t *db)
{
    static db_query_t q = {"PRAGMA data_version", 0};
    if (db->walhdr == NULL && db->wal)
        wal_index_map(db);
    if (db->walhdr != NULL)
        return (uint64_t)__atomic_load_n(&db->walhdr[HDR_CHANGE], __ATOMIC_ACQUIRE) << 32 |
               __atomic_load_n(&db->walhdr[HDR_CKSUM], __ATOMIC_ACQUIRE);
    /* no shared WAL index to read: ask (misses this connection's own commits, which seen_own counts) */
    sqlite3_stmt *s = db_stmt(db, &q);
    uint64_t v = s != NULL && db_step(db, s) == 1 ? (uint64_t)sqlite3_column_int64(s, 0) : db->seen_ext + 1;
    if (s != NULL)
        db_done(db, s);
    return v;
}

uint64_t db_generation(db_t *db)
{
    uint64_t w = db_writes(), ext = data_version(db);
    int64_t own = sqlite3_total_changes64(db->h);
    if (w != db->seen_writes || ext != db->seen_ext || own != db->seen_own) {
        db->seen_writes = w;
        db->seen_ext = ext;
        db->seen_own = own;
        ++db->gen;
    }
    return db->gen;
}

/* ---- the read cache and memos ---- */

void db_enable_cache(db_t *db)
{
    if (db->cache == NULL && (db->cache = cache_new(DB_CACHE_SLOTS, DB_CACHE_DATA_MAX)) != NULL)
        cache_count(db->cache, "metadata");
}

/* Inside a transaction (the caller's, even a deferred one not yet reading, or a statement still running further up)
 * the snapshot may predate the generation: neither serve from the caches nor fill them there. */
static int in_transaction(db_t *db)
{
    return !sqlite3_get_autocommit(db->h) || sqlite3_txn_state(db->h, NULL) != SQLITE_TXN_NONE;
}

cache_t *db_cache(db_t *db, uint64_t *gen)
{
    if (db->cache == NULL || in_transaction(db))
        return NULL;
    *gen = db_generation(db);
    return db->cache;
}

int db_memo_get(db_t *db, int which, int64_t *value, uint64_t *gen)
{
    *gen = 0;
    if (in_transaction(db))
        return 0;
    *gen = db_generation(db);
    if (db->memo[which].gen != *gen)
        return 0;
    *value = db->memo[which].value;
    return 1;
}

void db_memo_set(db_t *db, int which, uint64_t gen, int64_t value)
{
    if (gen == 0)
        return;
    db->memo[which].gen = gen;
    db->memo[which].value = value;
}

/* ---- the writer thread: group commit ---- */

typedef struct write_job {
    db_write_fn fn;
    void *arg;
    const char *dir; /* to fsync before the commit, or NULL */
    int rc;
    int done;
    int sync;               /* the writer asks the caller to fsync dir now (for every job of the batch with it) */
    struct write_job *same; /* the job of the batch whose caller fsyncs this one's dir */
    pthread_cond_t cond;    /* its own: a batch's commit wakes its callers only, not every caller waiting */
    struct write_job *next;
} write_job_t;

struct metastore_writer {
    db_t *db;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake, synced;
    write_job_t *head, **tail;
    int syncing; /* folders of the batch being fsynced by their callers */
    int stopping;
};

/* One transaction for a whole batch: each job in a savepoint of its own, one commit (one fsync) for all. */
static void run_batch(db_t *db, write_job_t *batch, sqlite3_int64 *changes)
{
    int ok = db_exec(db, "BEGIN IMMEDIATE") == 0;
    for (write_job_t *j = batch; j; j = j->next) {
        db_atomic_t a;
        if (j->rc != 0) /* its folder could not be fsynced */
            continue;
        if (!ok || db_atomic_begin(&a, db) != 0) {
            j->rc = BERTH_ERROR;
            continue;
        }
        j->rc = db_atomic_end(&a, j->fn(db, j->arg));
    }
    if (ok && db_exec(db, "COMMIT") != 0) {
        db_exec(db, "ROLLBACK");
        for (write_job_t *j = batch; j; j = j->next)
            j->rc = BERTH_ERROR;
    } else if (ok && sqlite3_total_changes64(db->h) != *changes) {
        /* committed: every cache's entries are stale from now on, before any writer hears "done" */
        *changes = sqlite3_total_changes64(db->h);
        __atomic_add_fetch(&writes, 1, __ATOMIC_RELEASE);
    }
}

/*
 * Have the distinct folders of the batch fsynced, each by the caller of the first job naming it, all at once, and wait
 * for them: the renames they hold are then durable before the commit that records them. Called with the mutex held.
 * A batch holds a job per waiting caller, so the search for an earlier job with the same folder stays short.
 */
static void sync_dirs(db_writer_t *w, write_job_t *batch)
{
    for (write_job_t *j = batch; j; j = j->next) {
        if (j->dir == NULL)
            continue;
        write_job_t *k = batch;
        while (k != j && (k->dir == NULL || strcmp(k->dir, j->dir) != 0))
            k = k->next;
        if (k != j) {
            j->same = k;
            continue;
        }
        j->sync = 1;
        w->syncing++;
        pthread_cond_signal(&j->cond);
    }
    while (w->syncing > 0)
        pthread_cond_wait(&w->synced, &w->mu);
    for (write_job_t *j = batch; j; j = j->next)
        if (j->same != NULL)
            j->rc = j->same->rc;
}

static void *writer_main(void *p)
{
    db_writer_t *w = p;
    sqlite3_int64 changes = sqlite3_total_changes64(w->db->h);
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->head == NULL && !w->stopping)
            pthread_cond_wait(&w->wake, &w->mu);
        if (w->head == NULL)
            break;
        write_job_t *batch = w->head;
        w->head = NULL;
        w->tail = &w->head;
        sync_dirs(w, batch);
        pthread_mutex_unlock(&w->mu);

        run_batch(w->db, batch, &changes);

        pthread_mutex_lock(&w->mu);
        for (write_job_t *j = batch; j; j = j->next) {
            j->done = 1;
            pthread_cond_signal(&j->cond);
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

db_writer_t *db_writer_start(const char *path)
{
    db_writer_t *w = calloc(1, sizeof(*w));
    if ((w->db = db_open(path, 0)) == NULL) {
        free(w);
        return NULL;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->wake, NULL);
    pthread_cond_init(&w->synced, NULL);
    w->tail = &w->head;
    pthread_create(&w->thread, NULL, writer_main, w);
    return w;
}

int db_write_synced(db_writer_t *w, db_write_fn fn, void *arg, const char *dir)
{
    write_job_t job = {.fn = fn, .arg = arg, .dir = dir};
    pthread_cond_init(&job.cond, NULL);
    pthread_mutex_lock(&w->mu);
    *w->tail = &job;
    w->tail = &job.next;
    pthread_cond_signal(&w->wake);
    while (!job.done) {
        if (job.sync) { /* the writer took the batch: fsync the folder for it (see sync_dirs) */
            job.sync = 0;
            pthread_mutex_unlock(&w->mu);
            int rc = fsync_dir(dir);
            if (rc != 0)
                log_error("fsync %s: %s", dir, strerror(errno));
            pthread_mutex_lock(&w->mu);
            job.rc = rc != 0 ? BERTH_ERROR : 0;
            if (--w->syncing == 0)
                pthread_cond_signal(&w->synced);
            continue;
        }
        pthread_cond_wait(&job.cond, &w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    pthread_cond_destroy(&job.cond);
    return job.rc;
}

int db_write(db_writer_t *w, db_write_fn fn, void *arg)
{
    return db_write_synced(w, fn, arg, NULL);
}

void db_writer_stop(db_writer_t *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    db_close(w->db);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->synced);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
