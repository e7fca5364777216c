/* The database layer (store/db.h): statements, migrations, the writer's group commit, the generation and the caches
 * that hang on it (manifests, blob sizes, repository origins and facts, the auth generation). */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "store/accounts.h"
#include "store/db.h"
#include "store/events.h"
#include "store/metastore.h"
#include "util/status.h"
#include "tap.h"

static char root[256], path[300];

/* ---- statements run on a connection, as SQLite sees them (independently of the layer's own count) ---- */

static int traced;

static int on_trace(unsigned type, void *ctx, void *p, void *x)
{
    (void)type, (void)ctx, (void)p, (void)x;
    ++traced;
    return 0;
}

static void trace(db_t *db)
{
    sqlite3_trace_v2(db_handle(db), SQLITE_TRACE_STMT, on_trace, NULL);
}

static int count_stmts(db_t *db)
{
    int n = 0;
    for (sqlite3_stmt *s = sqlite3_next_stmt(db_handle(db), NULL); s; s = sqlite3_next_stmt(db_handle(db), s))
        ++n;
    return n;
}

static int64_t scalar(db_t *db, const char *sql)
{
    sqlite3_stmt *s;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db_handle(db), sql, -1, &s, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

static void test_statements(void)
{
    static db_query_t q = {"SELECT count(*) FROM schema_version WHERE version >= ?1", 0};
    db_t *db = db_open(path, 1);
    int n0 = count_stmts(db);
    sqlite3_stmt *a = db_stmt(db, &q);
    ok(a != NULL && q.slot != 0, "a declared statement gets a slot on first use");
    sqlite3_bind_int(a, 1, 1);
    ok(db_step(db, a) == 1 && sqlite3_column_int(a, 0) >= 1, "it runs");
    db_done(db, a);
    sqlite3_stmt *b = db_stmt(db, &q);
    ok(b == a && count_stmts(db) == n0 + 1, "the second use gets the same prepared statement (one on the connection)");
    ok(sqlite3_bind_parameter_count(b) == 1 && db_step(db, b) == 1 && sqlite3_column_int(b, 0) == 0,
       "reset, its bindings cleared (NULL: no row matches)");
    sqlite3_stmt *c = db_stmt(db, &q);
    ok(c != NULL && c != b && count_stmts(db) == n0 + 2, "while it is in use further up: a one-off");
    db_done(db, c);
    ok(count_stmts(db) == n0 + 1, "the one-off is finalized when done");
    db_done(db, b);
    ok(!sqlite3_stmt_busy(b), "done resets the kept one");

    db_t *db2 = db_open(path, 0);
    sqlite3_stmt *d = db_stmt(db2, &q);
    ok(d != NULL && d != a, "another connection prepares its own");
    db_done(db2, d);
    db_close(db2);
    static db_query_t bad = {"SELECT nope FROM nowhere", 0};
    ok(db_stmt(db, &bad) == NULL, "a statement that does not prepare: NULL");
    uint64_t q0 = db_queries(db);
    db_exec(db, "SELECT 1");
    ok(db_queries(db) == q0 + 1, "db_exec counts as a query");
    db_close(db);
}

static void test_migrations(void)
{
    char p[320];
    snprintf(p, sizeof(p), "%s/migrations.db", root);
    db_t *db = db_open(p, 1);
    int n = 0, sorted = 1, last = 0;
    for (const db_migration_t *mg = db_migrations; mg->sql; ++mg, ++n) {
        sorted &= mg->version > last;
        last = mg->version;
    }
    ok(n >= 3 && sorted, "%d embedded migrations, in ascending order", n);
    ok(db != NULL && db_schema_version(db) == last, "a new database is at the last version (%d)", last);
    ok(scalar(db, "SELECT count(*) FROM schema_version") == n, "each migration recorded once");
    int in_order = 1;
    for (int i = 0; i < n; ++i) {
        char sql[160];
        snprintf(sql, sizeof(sql),
                 "SELECT version = %d AND name = '%s' FROM schema_version ORDER BY applied_at, version "
                 "LIMIT 1 OFFSET %d",
                 db_migrations[i].version, db_migrations[i].name, i);
        in_order &= scalar(db, sql) == 1;
    }
    ok(in_order, "recorded in order, with their names");
    db_close(db);
    db = db_open(p, 1);
    ok(db != NULL && scalar(db, "SELECT count(*) FROM schema_version") == n, "opening again applies nothing");
    db_close(db);
}

/* ---- the writer: one transaction for what is queued; a failing job undoes only itself ---- */

#define WRITERS 16

typedef struct {
    int id, rc, fail;
} job_t;

static pthread_mutex_t first_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t first_cond = PTHREAD_COND_INITIALIZER;
static int first_running;

static int insert_row(db_t *db, void *arg)
{
    static db_query_t q = {"INSERT INTO t(x) VALUES (?1)", 0};
    job_t *j = arg;
    sqlite3_stmt *s = db_stmt(db, &q);
    sqlite3_bind_int(s, 1, j->id);
    int rc = db_run(db, s);
    if (j->id == 0) {
        /* hold the writer so that the others queue up behind this transaction */
        pthread_mutex_lock(&first_mu);
        first_running = 1;
        pthread_cond_broadcast(&first_cond);
        pthread_mutex_unlock(&first_mu);
        usleep(200 * 1000);
    }
    return j->fail ? -7 : rc;
}

static db_writer_t *writer;

static void *writer_thread(void *arg)
{
    job_t *j = arg;
    j->rc = db_write(writer, insert_row, j);
    return NULL;
}

static void test_writer(void)
{
    pthread_t th[WRITERS];
    job_t jobs[WRITERS];
    db_t *db = db_open(path, 0);
    db_exec(db, "CREATE TABLE t(x INTEGER PRIMARY KEY)");
    writer = db_writer_start(path);
    uint64_t w0 = db_writes(), g0 = db_generation(db);
    for (int i = 0; i < WRITERS; ++i) {
        jobs[i] = (job_t){i, 99, i == 5};
        pthread_create(&th[i], NULL, writer_thread, &jobs[i]);
        if (i == 0) {
            pthread_mutex_lock(&first_mu);
            while (!first_running)
                pthread_cond_wait(&first_cond, &first_mu);
            pthread_mutex_unlock(&first_mu);
        }
    }
    for (int i = 0; i < WRITERS; ++i)
        pthread_join(th[i], NULL);
    int good = 1;
    for (int i = 0; i < WRITERS; ++i)
        good &= jobs[i].rc == (i == 5 ? -7 : 0);
    ok(good, "%d writers, one thread each: each gets its own result (the failing one -7)", WRITERS);
    ok(scalar(db, "SELECT count(*) FROM t") == WRITERS - 1 && scalar(db, "SELECT count(*) FROM t WHERE x = 5") == 0,
       "every other write is committed and visible on another connection; the failing one's row is not");
    uint64_t commits = db_writes() - w0;
    ok(commits >= 1 && commits < WRITERS, "they shared commits: %llu for %d writes", (unsigned long long)commits,
       WRITERS);
    ok(db_generation(db) != g0, "the generation moved");
    job_t dup = {1, 99, 0};
    ok(db_write(writer, insert_row, &dup) == BERTH_EEXISTS, "a write that fails alone returns its error");
    db_writer_stop(writer);
    db_exec(db, "DROP TABLE t");
    db_close(db);
}

/* Writes that have a folder fsynced before their commit: shared folders, one that cannot be, writes without one. */
typedef struct {
    job_t job;
    const char *dir;
    int ran;
} synced_t;

static int insert_synced(db_t *db, void *arg)
{
    synced_t *s = arg;
    s->ran = 1;
    return insert_row(db, &s->job);
}

static void *synced_thread(void *arg)
{
    synced_t *s = arg;
    s->job.rc = db_write_synced(writer, insert_synced, s, s->dir);
    return NULL;
}

static void test_writer_synced(void)
{
    pthread_t th[WRITERS];
    synced_t w[WRITERS];
    char dirs[4][300], missing[300];
    db_t *db = db_open(path, 0);
    db_exec(db, "CREATE TABLE t(x INTEGER PRIMARY KEY)");
    for (int i = 0; i < 4; ++i) {
        snprintf(dirs[i], sizeof(dirs[i]), "%s/d%d", root, i);
        mkdir(dirs[i], 0755);
    }
    snprintf(missing, sizeof(missing), "%s/missing", root);
    writer = db_writer_start(path);
    first_running = 0;
    for (int i = 0; i < WRITERS; ++i) {
        /* the first holds the writer while the others queue up: one batch, folders shared two or three times */
        w[i] = (synced_t){{i, 99, 0}, i == 7 ? missing : i % 5 == 4 ? NULL : dirs[i % 4], 0};
        pthread_create(&th[i], NULL, synced_thread, &w[i]);
        if (i == 0) {
            pthread_mutex_lock(&first_mu);
            while (!first_running)
                pthread_cond_wait(&first_cond, &first_mu);
            pthread_mutex_unlock(&first_mu);
        }
    }
    for (int i = 0; i < WRITERS; ++i)
        pthread_join(th[i], NULL);
    int good = 1;
    for (int i = 0; i < WRITERS; ++i)
        good &= i == 7 ? w[i].job.rc == BERTH_ERROR && !w[i].ran : w[i].job.rc == 0 && w[i].ran;
    ok(good, "%d writes with a folder each (or none): each committed after its folder's fsync", WRITERS);
    ok(scalar(db, "SELECT count(*) FROM t") == WRITERS - 1 && scalar(db, "SELECT count(*) FROM t WHERE x = 7") == 0,
       "the one whose folder cannot be fsynced fails, and its write was not run");
    db_writer_stop(writer);
    db_exec(db, "DROP TABLE t");
    db_close(db);
}

/* ---- the generation ---- */

static int add_user(metastore_t *m, void *arg)
{
    return accounts_user_add(m, arg, NULL, 0);
}

/* What the CLI does, from another process (this program again, fresh: a forked SQLite would share the parent's
 * lock bookkeeping): its own connection, its own transaction. */
static int other_process(const char *user)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", "db_test", "--disable", path, user, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static int child_disable(const char *db_path, const char *user)
{
    metastore_t *c = metastore_open(db_path, 0);
    int ok = c && metastore_begin(c, 1, NULL) == 0 && accounts_user_set_disabled(c, user, 1) == 0 &&
             metastore_commit(c, NULL) == 0;
    metastore_close(c);
    return ok ? 0 : 1;
}

static void test_generation(void)
{
    db_t *db = db_open(path, 0), *other = db_open(path, 0);
    uint64_t g = db_generation(db), q = db_queries(db);
    trace(db);
    traced = 0;
    ok(db_generation(db) == g && db_generation(db) == g, "nothing written: the generation stays");
    ok(db_queries(db) == q && traced == 0, "and asking costs no query (WAL index)");

    writer = db_writer_start(path);
    ok(db_write(writer, add_user, "gen1") == 0 && db_generation(db) > g, "a commit of the writer moves it");
    g = db_generation(db);
    ok(accounts_user_add(other, "gen2", NULL, 0) == 0 && db_generation(db) > g,
       "so does a commit on another connection, without a query on this one");
    g = db_generation(db);
    ok(other_process("gen2") && db_generation(db) > g, "and one by another process (as the CLI)");
    g = db_generation(db);
    ok(accounts_user_add(db, "gen3", NULL, 0) == 0 && db_generation(db) > g, "and one on this connection");
    g = db_generation(db);
    ok(db_write(writer, add_user, "gen1") == BERTH_EEXISTS && db_generation(db) == g,
       "a write that changed nothing does not");
    ok(db_queries(db) > q && traced > 0, "(the writes themselves ran queries)");
    db_writer_stop(writer);

    db_t *mem = db_open(":memory:", 1);
    g = db_generation(mem);
    q = db_queries(mem);
    ok(mem != NULL && db_generation(mem) == g && db_queries(mem) > q,
       "without a WAL index (an in-memory database): PRAGMA data_version, a query");
    ok(accounts_user_add(mem, "x", NULL, 0) == 0 && db_generation(mem) > g, "its own writes move it there too");
    db_close(mem);
    db_close(other);
    db_close(db);
}

/* ---- caches on a loop's connection: no query on a hit, a re-read after any commit ---- */

typedef struct {
    const char *repo, *tag, *body;
    digest_t digest;
    manifest_t *mf;
} put_t;

static int put_manifest(metastore_t *m, void *arg)
{
    put_t *p = arg;
    return metastore_mirror_manifest_put(m, p->repo, &p->digest, p->mf, p->body, strlen(p->body), p->tag, 1);
}

static int link_blob(metastore_t *m, void *arg)
{
    return metastore_blob_link(m, "acme/app", arg, 42);
}

static put_t manifest_put(const char *tag, const char *body)
{
    char err[256];
    put_t p = {"acme/app", tag, body, {0}, NULL};
    digest_compute(&p.digest, DIGEST_SHA256, body, strlen(body));
    if (manifest_parse(&p.mf, NULL, 0, body, strlen(body), err, sizeof(err)) != MANIFEST_OK)
        printf("# %s\n", err);
    return p;
}

/* expr holds, and it ran no statement (or some) on the traced connection */
#define NO_QUERY(expr) (traced = 0, (expr) && traced == 0)
#define QUERIED(expr) (traced = 0, (expr) && traced > 0)

static void test_cache(void)
{
    db_t *loop = db_open(path, 0), *cli = db_open(path, 0);
    metastore_manifest_t mf;
    accounts_repo_facts_t f;
    uint64_t size;
    digest_t blob;
    db_enable_cache(loop);
    trace(loop);
    writer = db_writer_start(path);
    put_t p1 = manifest_put("v1", "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
                                  "\"manifests\":[]}");
    put_t p2 = manifest_put("v1", "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
                                  "\"manifests\":[],\"annotations\":{\"a\":\"b\"}}");
    digest_compute(&blob, DIGEST_SHA256, "blob", 4);
    ok(db_write(writer, put_manifest, &p1) == 0 && db_write(writer, link_blob, &blob) == 0, "a manifest and a blob");

    ok(metastore_manifest_get(loop, "acme/app", "v1", NULL, &mf) == 0 && digest_equal(&mf.digest, &p1.digest) &&
           mf.lent,
       "manifest by tag: read, and lent by the cache");
    metastore_manifest_dispose(&mf);
    uint64_t q = db_queries(loop);
    ok(NO_QUERY(metastore_manifest_get(loop, "acme/app", "v1", NULL, &mf) == 0) && db_queries(loop) == q &&
           memcmp(mf.content, p1.body, mf.size) == 0,
       "again: from the cache, no query");
    metastore_manifest_dispose(&mf);
    ok(metastore_blob_get(loop, "acme/app", &blob, &size) == 0 &&
           NO_QUERY(metastore_blob_get(loop, "acme/app", &blob, &size) == 0) && size == 42,
       "blob size: the second time no query");
    ok(metastore_repo_origin(loop, "acme/app") == 1 && NO_QUERY(metastore_repo_origin(loop, "acme/app") == 1),
       "repository origin: the second time no query");
    ok(metastore_repo_origin(loop, "acme/none") == BERTH_ENOTFOUND &&
           NO_QUERY(metastore_repo_origin(loop, "acme/none") == BERTH_ENOTFOUND),
       "a repository that does not exist: cached too");

    ok(db_write(writer, put_manifest, &p2) == 0, "the writer moves v1");
    ok(QUERIED(metastore_manifest_get(loop, "acme/app", "v1", NULL, &mf) == 0 && digest_equal(&mf.digest, &p2.digest)),
       "the next read sees it (a query)");
    metastore_manifest_dispose(&mf);

    char big[20200];
    snprintf(big, sizeof(big),
             "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
             "\"manifests\":[],\"annotations\":{\"a\":\"%020000d\"}}",
             0);
    put_t p3 = manifest_put("big", big);
    ok(db_write(writer, put_manifest, &p3) == 0 && metastore_manifest_get(loop, "acme/app", "big", NULL, &mf) == 0 &&
           !mf.lent && mf.size > 16384,
       "a manifest above 16 KiB is not kept in the cache (its memory is bounded)");
    metastore_manifest_dispose(&mf);
    ok(QUERIED(metastore_manifest_get(loop, "acme/app", "big", NULL, &mf) == 0 && !mf.lent &&
               memcmp(mf.content, big, mf.size) == 0),
       "it is read each time, into memory of its own");
    metastore_manifest_dispose(&mf);
    manifest_free(p3.mf);

    ok(accounts_user_add(cli, "alice", NULL, 0) == 0 && accounts_org_add(cli, "acme") == 0, "(the CLI adds alice)");
    int64_t alice = -1;
    account_t a;
    if (accounts_get(loop, "alice", &a) == 0)
        alice = a.id;
    account_dispose(&a);
    ok(accounts_repo_facts(loop, alice, "acme/app", &f) == 0 && f.exists && f.granted == 0,
       "facts: alice has no grant");
    ok(NO_QUERY(accounts_repo_facts(loop, alice, "acme/app", &f) == 0 && f.exists && f.granted == 0),
       "asked again: no query");
    ok(QUERIED(accounts_repo_facts(loop, 0, "acme/app", &f) == 0 && f.exists),
       "another account (anonymous) is another key");
    ok(accounts_grant(cli, "acme/*", "alice", ACTION_PULL) == 0, "the CLI (another connection) grants her pull");
    ok(accounts_repo_facts(loop, alice, "acme/app", &f) == 0 && f.granted == ACTION_PULL, "seen on the next check");
    ok(accounts_grant_revoke(cli, "acme/*", "alice") == 0 && accounts_repo_facts(loop, alice, "acme/app", &f) == 0 &&
           f.granted == 0,
       "and so is its removal");

    int64_t g = accounts_generation(loop);
    ok(g >= 1 && NO_QUERY(accounts_generation(loop) == g), "auth generation: the second time no query");
    ok(other_process("alice") && accounts_generation(loop) > g, "a CLI's disable (another process) is seen at once");
    g = accounts_generation(loop);
    ok(QUERIED(metastore_manifest_get(loop, "acme/app", "v1", NULL, &mf) == 0 && mf.lent),
       "after it, the manifest is read again too (one generation for every cache)");
    metastore_manifest_dispose(&mf);

    ok(metastore_blob_get(loop, "acme/app", &blob, &size) == 0 &&
           NO_QUERY(metastore_blob_get(loop, "acme/app", &blob, &size) == 0),
       "(a blob size cached)");
    ok(metastore_begin(loop, 0, NULL) == 0 && QUERIED(accounts_generation(loop) == g) &&
           QUERIED(metastore_blob_get(loop, "acme/app", &blob, &size) == 0) &&
           QUERIED(metastore_repo_origin(loop, "acme/other") == BERTH_ENOTFOUND) && metastore_commit(loop, NULL) == 0,
       "inside a transaction the caches are not used (its snapshot may be older)");
    ok(NO_QUERY(metastore_blob_get(loop, "acme/app", &blob, &size) == 0) &&
           QUERIED(metastore_repo_origin(loop, "acme/other") == BERTH_ENOTFOUND),
       "outside again the cache serves what it had, and kept nothing read inside");

    db_writer_stop(writer);
    manifest_free(p1.mf);
    manifest_free(p2.mf);
    db_close(cli);
    db_close(loop);
}

/* A migration numbered below the highest applied (branches take numbers ahead of each other) is still applied. */
static void test_migration_gap(void)
{
    char p[320];
    snprintf(p, sizeof(p), "%s/gap.db", root);
    db_t *db = db_open(p, 1);
    ok(db != NULL && db_exec(db, "DROP TABLE audit_log; DELETE FROM schema_version WHERE version = 9") == 0,
       "gap: audit_log and its version 9 taken out");
    db_close(db);
    db = db_open(p, 1);
    ok(db != NULL && scalar(db, "SELECT count(*) FROM schema_version WHERE version = 9") == 1 &&
           scalar(db, "SELECT count(*) FROM audit_log") == 0,
       "gap: reopened, the missing migration 9 is applied though 12 is there");
    db_close(db);
}

static int count_rows(void *ctx, const events_row_t *r)
{
    *(int64_t *)ctx = r->id;
    return 0;
}

/* The webhook queue: its bound drops the oldest, cursors prune what every endpoint has. */
static void test_events(void)
{
    char p[320];
    snprintf(p, sizeof(p), "%s/events.db", root);
    db_t *db = db_open(p, 1);
    events_set_limit(100);
    int rc = db_begin(db, 1, NULL);
    for (int i = 0; i < 150 && rc == 0; ++i)
        rc = events_insert(db, "push", "a/b", "x/y", "{}");
    ok(rc == 0 && db_commit(db, NULL) == 0, "events: 150 inserted with a bound of 100");
    ok(events_count(db) == 100 && events_dropped() == 50 && scalar(db, "SELECT min(id) FROM webhook_event") == 51,
       "events: the 50 oldest dropped and counted");
    const char *both[] = {"a", "b"};
    ok(db_begin(db, 1, NULL) == 0 && events_setup(db, both, 2) == 0 && db_commit(db, NULL) == 0,
       "events: two endpoints set up");
    int64_t ca = -1, cb = -1, last = 0;
    ok(events_cursor(db, "a", &ca) == 0 && events_cursor(db, "b", &cb) == 0 && ca == 150 && cb == 150 &&
           events_count(db) == 0,
       "events: new endpoints start after the newest event; what both have is gone");
    db_begin(db, 1, NULL);
    for (int i = 0; i < 3; ++i)
        events_insert(db, "push", "a/b", "x/y", "{}");
    ok(events_cursor_set(db, "a", 153) == 0 && db_commit(db, NULL) == 0 && events_count(db) == 3,
       "events: ids 151-153; a has them all, b none: all kept");
    ok(db_begin(db, 1, NULL) == 0 && events_cursor_set(db, "b", 152) == 0 && db_commit(db, NULL) == 0 &&
           events_count(db) == 1,
       "events: b has 152: only 153 is kept");
    ok(events_read(db, 152, 10, count_rows, &last) == 1 && last == 153, "events: read after 152 gives 153");
    const char *one[] = {"a"};
    ok(db_begin(db, 1, NULL) == 0 && events_setup(db, one, 1) == 0 && db_commit(db, NULL) == 0 &&
           events_count(db) == 0 && scalar(db, "SELECT count(*) FROM webhook_cursor") == 1,
       "events: b unconfigured: its cursor goes, and what a has with it");
    db_begin(db, 1, NULL);
    events_insert(db, "push", "a/b", "x/y", "{}");
    ok(scalar(db, "SELECT max(id) FROM webhook_event") == 154 && events_setup(db, NULL, 0) == 0 &&
           db_commit(db, NULL) == 0 && events_count(db) == 0,
       "events: ids never go back; no endpoint: the queue is emptied");
    events_set_limit(0);
    db_close(db);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--disable") == 0)
        return child_disable(argv[2], argv[3]);
    if (tap_tmpdir(root, sizeof(root), "berth-db") != 0)
        return 1;
    snprintf(path, sizeof(path), "%s/berth.db", root);
    test_statements();
    test_migrations();
    test_migration_gap();
    test_events();
    test_writer();
    test_writer_synced();
    test_generation();
    test_cache();
    tap_rmtree(root);
    return tap_done();
}
