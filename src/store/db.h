/*
 * The database layer under store/metastore.c and store/accounts.c. Private to store/: only the store's own files
 * include it; above store/ a connection is the opaque metastore_t and nothing sees SQLite.
 *
 * - Connections: SQLite in WAL mode, synchronous=FULL, foreign keys, a busy timeout. A connection is used by one
 *   thread at a time: each event loop has its own read connection; all writes of the server go through the writer
 *   thread (db_write), which batches whatever is queued into one transaction (group commit).
 * - Statements: a module declares each of its statements once, as a static db_query_t; every connection prepares it on
 *   first use and keeps it until it closes (preparing costs more than running most of them).
 * - Migrations: schema/NNN_*.sql, embedded (src/store/schema_sql.c), applied in order and recorded.
 * - The generation of a connection (db_generation) moves whenever a committed write may have changed the database:
 *   this process's writer, this connection's own writes, or another process (the berth CLI). Caches stamped with it
 *   (the read cache of util/cache.h, the memos below) never serve data older than a write that was acknowledged,
 *   and cost no query while nothing is written.
 */
#ifndef BERTH_STORE_DB_H
#define BERTH_STORE_DB_H

#include <sqlite3.h>
#include <stdint.h>
#include "util/cache.h"
#include "store/metastore.h"

/** A connection: what metastore_t stands for above store/ (every store function takes the same handle). */
typedef struct metastore db_t;
/** The writer thread: what metastore_writer_t stands for above store/. */
typedef struct metastore_writer db_writer_t;

/* ---- connections ---- */

/** Open (creating) the database at `path`; with `migrate`, apply pending migrations. NULL on failure (logged). */
db_t *db_open(const char *path, int migrate);
/** Finalize the connection's statements, free its cache and close it. NULL is ignored. */
void db_close(db_t *db);
/** The SQLite handle, for what the helpers below do not cover (sqlite3_changes, sqlite3_last_insert_rowid, tests). */
sqlite3 *db_handle(db_t *db);

/* ---- statements ---- */

/** A statement of a module: declare it static (or in a static array), its `slot` zero; the layer sets the slot. */
typedef struct {
    const char *sql;
    unsigned slot; /* the statement's index in every connection's table, plus one; 0 until first used */
} db_query_t;

/**
 * Statement `q` on `db`, reset and with its bindings cleared, ready to bind: the connection's kept one, or (when
 * that one is in use further up the stack) a one-off. NULL if it does not prepare (logged). Give it back with
 * db_done (or db_run) before returning: a statement left mid-way keeps its read transaction open.
 */
sqlite3_stmt *db_stmt(db_t *db, db_query_t *q);
/** Done with a statement from db_stmt: reset it (a one-off is finalized). */
void db_done(db_t *db, sqlite3_stmt *s);
/** Step `s` once: 1 for a row, 0 when done, BERTH_ERROR (logged). */
int db_step(db_t *db, sqlite3_stmt *s);
/** Run `s` (no rows expected), then db_done: 0, BERTH_EEXISTS (a unique or primary key constraint), BERTH_ERROR. */
int db_run(db_t *db, sqlite3_stmt *s);
/** Run statement `q` bound to (i1), or (i1, t2) when t2 is set: the rows it changed, or BERTH_ERROR. */
int db_run_keyed(db_t *db, db_query_t *q, int64_t i1, const char *t2);
/** Log the connection's error for statement `s`: BERTH_ERROR. */
int db_step_error(db_t *db, sqlite3_stmt *s);
/** Bind text `v` (borrowed until the statement is done), or NULL as SQL NULL. */
void db_bind_text(sqlite3_stmt *s, int i, const char *v);
/** Rows changed by the last INSERT, UPDATE or DELETE on the connection. */
int db_changes(db_t *db);
/** The rowid of the last INSERT on the connection. */
int64_t db_last_id(db_t *db);
/** Run `sql` (statements without results): 0, or BERTH_ERROR (logged). */
int db_exec(db_t *db, const char *sql);
/** Statements run on the connection so far (each db_stmt and db_exec counts one): for tests of the caches. */
uint64_t db_queries(db_t *db);

/* ---- transactions ---- */

/**
 * The caller's own transaction (BEGIN IMMEDIATE when `write`: it waits for another writer at once instead of failing
 * when it upgrades later). 0, or BERTH_ERROR with the database's message in *err (valid until the next call on
 * `db`; err may be NULL).
 */
int db_begin(db_t *db, int write, const char **err);
int db_commit(db_t *db, const char **err);
void db_rollback(db_t *db);

/** One write's own atomic unit: a savepoint inside the caller's transaction, or its own BEGIN IMMEDIATE. */
typedef struct {
    db_t *db;
    int outer; /* it began the transaction */
} db_atomic_t;
/** Begin: 0 or BERTH_ERROR. */
int db_atomic_begin(db_atomic_t *a, db_t *db);
/** Keep (rc >= 0) or undo (rc < 0) what was written since db_atomic_begin: rc, or BERTH_ERROR if keeping failed. */
int db_atomic_end(db_atomic_t *a, int rc);

/* ---- migrations ---- */

typedef struct {
    int version;
    const char *name;
    const char *sql;
} db_migration_t;
/** The embedded schema files, ordered, terminated by {0, NULL, NULL} (generated: src/store/schema_sql.c). */
extern const db_migration_t db_migrations[];

/** The schema version the database is at (0 if none). */
int db_schema_version(db_t *db);

/* ---- the generation, the read cache, memos ---- */

/**
 * The connection's generation: a number that moves whenever a committed write may have changed the database (this
 * process's writer, this connection, another process). Costs no query on a WAL database (a read of the WAL index
 * in shared memory); elsewhere one `PRAGMA data_version`.
 */
uint64_t db_generation(db_t *db);
/** This process's write count: moves after every commit of the writer thread that changed a row. */
uint64_t db_writes(void);

/* The read cache's bounds: 1024 entries; values up to 16 KiB of content and what describes it (a manifest's digest and
 * media type): about 17 MiB per connection at most. */
#define DB_CACHE_SLOTS 1024
#define DB_CACHE_DATA_MAX (16384 + 512)

/** Give the connection a read cache (an event loop's connection). */
void db_enable_cache(db_t *db);
/*
 * The kinds of cached values (cache_key_t.kind), one letter each: 'b' blob size (repository, digest), 't' and 'd'
 * manifest (repository, tag or digest), 'o' repository origin (repository), 'f' repository facts (repository,
 * account id).
 */
/**
 * The connection's cache if it has one and it may be used now (not inside a transaction, whose snapshot may be older
 * than the generation), with the generation to look up and to stamp fills with in *gen. NULL otherwise.
 */
cache_t *db_cache(db_t *db, uint64_t *gen);

/** Single values a module keeps per connection while the generation stays (never evicted, unlike the cache). */
enum { DB_MEMO_AUTH_GENERATION, DB_MEMO__COUNT };
/**
 * 1 with *value if memo `which` is still valid. Else 0, with *gen the generation to stamp a value read now with
 * (db_memo_set); 0 there (inside a transaction) makes db_memo_set keep nothing.
 */
int db_memo_get(db_t *db, int which, int64_t *value, uint64_t *gen);
void db_memo_set(db_t *db, int which, uint64_t gen, int64_t value);

/* ---- the writer thread ---- */

typedef int (*db_write_fn)(db_t *db, void *arg);
/** Start the writer thread on its own connection to `path`. NULL on failure (logged). Stop with db_writer_stop. */
db_writer_t *db_writer_start(const char *path);
/**
 * Run `fn(db, arg)` in the writer's next transaction (with whatever else is queued: one commit, one fsync) and wait
 * until it is durable; the generation has moved by then. Returns fn's result; a negative one undoes that call's
 * writes only. BERTH_ERROR if the commit failed. Blocking: never on an event loop.
 */
int db_write(db_writer_t *w, db_write_fn fn, void *arg);
/**
 * db_write, with the folder `dir` fsynced before the transaction that runs fn commits (a file was renamed into it,
 * and must not be recorded before its name is durable). The folders of a batch are fsynced all at once, each distinct
 * one once, by the callers waiting on the batch (each of which would otherwise have fsynced its own before queueing),
 * and only then does the writer run the batch: renames share their folders' fsyncs, and more writes join the batch
 * meanwhile. If the fsync fails, fn is not run and the result is BERTH_ERROR. `dir` NULL: db_write.
 */
int db_write_synced(db_writer_t *w, db_write_fn fn, void *arg, const char *dir);
/** Finish the queued writes, stop the thread and close its connection. NULL is ignored. */
void db_writer_stop(db_writer_t *w);

#endif
