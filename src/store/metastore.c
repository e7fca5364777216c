#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "store/metastore.h"
#include "util/log.h"
#include "util/status.h"
#include "util/hash.h"

/* Prepared statements, made on first use and kept for the connection's life. */
enum {
    Q_BLOB_GET,
    Q_MANIFEST_BY_TAG,
    Q_MANIFEST_BY_DIGEST,
    Q_REPO_ID,
    Q_REPO_INSERT,
    Q_TAGS,
    Q_CATALOG,
    Q_BLOB_INSERT,
    Q_REPO_BLOB_INSERT,
    Q_HAS_REPO_BLOB,
    Q_HAS_MANIFEST,
    Q_MANIFEST_INSERT,
    Q_MANIFEST_ID,
    Q_REF_INSERT,
    Q_TAG_UPSERT,
    Q_MANIFEST_DELETE,
    Q_TAG_DELETE,
    Q_BLOB_UNLINK,
    Q_BLOB_REPOS,
    Q_REFERRERS,
    Q_REFERRERS_TYPE,
    Q_REPO_ORIGIN,
    Q_TAG_CHECKED,
    Q__COUNT
};

static const char *queries[Q__COUNT] = {
    [Q_BLOB_GET] = "SELECT b.size FROM repository r JOIN repository_blob rb ON rb.repository_id = r.id "
                   "JOIN blob b ON b.digest = rb.digest WHERE r.name = ?1 AND rb.digest = ?2",
    [Q_MANIFEST_BY_TAG] = "SELECT m.digest, m.media_type, m.content, t.checked_at FROM repository r "
                          "JOIN tag t ON t.repository_id = r.id "
                          "JOIN manifest m ON m.id = t.manifest_id WHERE r.name = ?1 AND t.name = ?2",
    [Q_MANIFEST_BY_DIGEST] = "SELECT m.digest, m.media_type, m.content FROM repository r "
                             "JOIN manifest m ON m.repository_id = r.id WHERE r.name = ?1 AND m.digest = ?2",
    [Q_REPO_ID] = "SELECT id FROM repository WHERE name = ?1",
    [Q_REPO_INSERT] = "INSERT INTO repository(name, created_at, public, mirror) VALUES (?1, ?2, ?3, ?4)",
    [Q_TAGS] = "SELECT t.name FROM tag t WHERE t.repository_id = ?1 AND t.name > ?2 ORDER BY t.name LIMIT ?3",
    [Q_CATALOG] = "SELECT name FROM repository WHERE name > ?1 ORDER BY name LIMIT ?2",
    [Q_BLOB_INSERT] = "INSERT INTO blob(digest, size, created_at) VALUES (?1, ?2, ?3) ON CONFLICT(digest) DO NOTHING",
    [Q_REPO_BLOB_INSERT] = "INSERT INTO repository_blob(repository_id, digest, created_at) VALUES (?1, ?2, ?3) "
                           "ON CONFLICT DO NOTHING",
    [Q_HAS_REPO_BLOB] = "SELECT 1 FROM repository_blob WHERE repository_id = ?1 AND digest = ?2",
    [Q_HAS_MANIFEST] = "SELECT 1 FROM manifest WHERE repository_id = ?1 AND digest = ?2",
    [Q_MANIFEST_INSERT] = "INSERT INTO manifest(repository_id, digest, media_type, size, content, artifact_type, subject, "
                          "annotations, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
                          "ON CONFLICT(repository_id, digest) DO NOTHING",
    [Q_MANIFEST_ID] = "SELECT id FROM manifest WHERE repository_id = ?1 AND digest = ?2",
    [Q_REF_INSERT] = "INSERT INTO manifest_ref(manifest_id, kind, digest, size, media_type, foreign_layer) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [Q_TAG_UPSERT] = "INSERT INTO tag(repository_id, name, manifest_id, updated_at, checked_at) VALUES (?1, ?2, ?3, ?4, ?5) "
                     "ON CONFLICT(repository_id, name) DO UPDATE SET manifest_id = excluded.manifest_id, "
                     "updated_at = CASE WHEN manifest_id = excluded.manifest_id THEN updated_at ELSE excluded.updated_at END, "
                     "checked_at = excluded.checked_at",
    [Q_MANIFEST_DELETE] = "DELETE FROM manifest WHERE repository_id = (SELECT id FROM repository WHERE name = ?1) "
                          "AND digest = ?2",
    [Q_TAG_DELETE] = "DELETE FROM tag WHERE repository_id = (SELECT id FROM repository WHERE name = ?1) AND name = ?2",
    [Q_BLOB_UNLINK] = "DELETE FROM repository_blob WHERE repository_id = (SELECT id FROM repository WHERE name = ?1) "
                      "AND digest = ?2",
    [Q_BLOB_REPOS] = "SELECT r.name, b.size FROM blob b JOIN repository_blob rb ON rb.digest = b.digest "
                     "JOIN repository r ON r.id = rb.repository_id WHERE b.digest = ?1 ORDER BY r.name LIMIT ?2",
    [Q_REFERRERS] = "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations FROM repository r "
                    "JOIN manifest m ON m.repository_id = r.id WHERE r.name = ?1 AND m.subject = ?2 ORDER BY m.digest",
    [Q_REFERRERS_TYPE] = "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations FROM repository r "
                         "JOIN manifest m ON m.repository_id = r.id WHERE r.name = ?1 AND m.subject = ?2 "
                         "AND m.artifact_type = ?3 ORDER BY m.digest",
    [Q_REPO_ORIGIN] = "SELECT mirror FROM repository WHERE name = ?1",
    [Q_TAG_CHECKED] = "UPDATE tag SET checked_at = ?3 WHERE repository_id = (SELECT id FROM repository WHERE name = ?1) "
                      "AND name = ?2",
};

int metastore_new_repos_public;

/*
 * The read cache: a loop's connection remembers manifests and blob sizes it read, each stamped with the
 * generation in effect before the query. The writer bumps the generation after every commit that changed a row
 * (before anyone is told the write is done), which invalidates every entry at once: a client never reads back
 * older data than it wrote, and the hot path of a pull (manifest by tag, HEAD blob) costs no SQLite query and
 * none of its file locking while nothing is written.
 */
#define CACHE_SLOTS 1024          /* per connection, direct-mapped */
#define CACHE_MAX_CONTENT 16384   /* larger manifests are read from SQLite every time (bounds the cache: 16 MiB) */
static uint64_t generation = 1;

typedef struct {
    uint64_t gen; /* 0: empty */
    uint64_t hash;
    char *key;    /* kind, repository, '\n', reference */
    digest_t digest;
    char *media_type;
    void *content;
    size_t size;    /* manifest bytes, or the blob's size */
    int64_t checked_at;
} cache_entry_t;

struct metastore {
    sqlite3 *db;
    sqlite3_stmt *stmts[Q__COUNT];
    cache_entry_t *cache; /* NULL: no cache (the writer's connection) */
};

static uint64_t current_generation(void)
{
    return __atomic_load_n(&generation, __ATOMIC_ACQUIRE);
}

uint64_t metastore_generation(void)
{
    return current_generation();
}

void metastore_enable_cache(metastore_t *m)
{
    if (m->cache == NULL)
        m->cache = calloc(CACHE_SLOTS, sizeof(*m->cache));
}

static void cache_clear(cache_entry_t *e)
{
    free(e->key);
    free(e->media_type);
    free(e->content);
    memset(e, 0, sizeof(*e));
}

/* over kind, repo, '\n', ref */
static uint64_t cache_hash(char kind, const char *repo, const char *ref)
{
    uint64_t h = hash_fnv(HASH_FNV_INIT, &kind, 1);
    h = hash_fnv(h, repo, strlen(repo));
    h = hash_fnv(h, "\n", 1);
    return hash_fnv(h, ref, strlen(ref));
}

static int cache_key_is(const cache_entry_t *e, char kind, const char *repo, const char *ref)
{
    size_t rl = strlen(repo);
    return e->key[0] == kind && strncmp(e->key + 1, repo, rl) == 0 && e->key[1 + rl] == '\n' && strcmp(e->key + 2 + rl, ref) == 0;
}

/* The live entry for (kind, repo, ref), or NULL; *slot is where it belongs. */
static cache_entry_t *cache_find(metastore_t *m, char kind, const char *repo, const char *ref, cache_entry_t **slot)
{
    uint64_t h = cache_hash(kind, repo, ref);
    cache_entry_t *e = &m->cache[h % CACHE_SLOTS];
    *slot = e;
    if (e->gen == current_generation() && e->hash == h && cache_key_is(e, kind, repo, ref))
        return e;
    return NULL;
}

/* Fill `e` (the slot cache_find named) with a key; the caller fills the rest. */
static void cache_fill(cache_entry_t *e, uint64_t gen, char kind, const char *repo, const char *ref)
{
    cache_clear(e);
    if (asprintf(&e->key, "%c%s\n%s", kind, repo, ref) < 0) {
        e->key = NULL;
        return;
    }
    e->hash = cache_hash(kind, repo, ref);
    e->gen = gen;
}

static int exec(metastore_t *m, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(m->db, sql, NULL, NULL, &err) != SQLITE_OK) {
        log_error("sqlite: %s: %s", sql, err ? err : "?");
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

static sqlite3_stmt *stmt(metastore_t *m, int q)
{
    sqlite3_stmt *s = m->stmts[q];
    if (s == NULL) {
        if (sqlite3_prepare_v3(m->db, queries[q], -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
            log_error("sqlite prepare: %s: %s", queries[q], sqlite3_errmsg(m->db));
            return NULL;
        }
        m->stmts[q] = s;
    } else {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
    return s;
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

static int step_error(metastore_t *m, int q)
{
    log_error("sqlite: %s: %s", queries[q], sqlite3_errmsg(m->db));
    return BERTH_ERROR;
}

static int migrate(metastore_t *m)
{
    if (exec(m, "BEGIN IMMEDIATE") != 0)
        return -1;
    if (exec(m, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "applied_at INTEGER NOT NULL)") != 0)
        goto Error;
    int current = metastore_schema_version(m);
    for (const metastore_migration_t *mg = metastore_migrations; mg->sql; ++mg) {
        if (mg->version <= current)
            continue;
        log_info("applying schema %s", mg->name);
        if (exec(m, mg->sql) != 0)
            goto Error;
        char sql[256];
        snprintf(sql, sizeof(sql), "INSERT INTO schema_version VALUES (%d, '%s', %lld)", mg->version, mg->name,
                 (long long)time(NULL));
        if (exec(m, sql) != 0)
            goto Error;
    }
    return exec(m, "COMMIT");
Error:
    exec(m, "ROLLBACK");
    return -1;
}

metastore_t *metastore_open(const char *path, int do_migrate)
{
    metastore_t *m = calloc(1, sizeof(*m));
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &m->db, flags, NULL) != SQLITE_OK) {
        log_error("cannot open %s: %s", path, m->db ? sqlite3_errmsg(m->db) : "out of memory");
        goto Error;
    }
    sqlite3_busy_timeout(m->db, 10000);
    if (exec(m, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON") != 0)
        goto Error;
    if (do_migrate && migrate(m) != 0)
        goto Error;
    return m;
Error:
    metastore_close(m);
    return NULL;
}

void metastore_close(metastore_t *m)
{
    if (m == NULL)
        return;
    if (m->cache != NULL) {
        for (size_t i = 0; i < CACHE_SLOTS; ++i)
            cache_clear(&m->cache[i]);
        free(m->cache);
    }
    for (int i = 0; i < Q__COUNT; ++i)
        sqlite3_finalize(m->stmts[i]);
    /* other modules keep statements on the connection too (store/accounts.c); sqlite3_close refuses while any live */
    for (sqlite3_stmt *s; (s = sqlite3_next_stmt(m->db, NULL)) != NULL;)
        sqlite3_finalize(s);
    sqlite3_close(m->db);
    free(m);
}

int metastore_schema_version(metastore_t *m)
{
    sqlite3_stmt *s;
    int v = 0;
    if (sqlite3_prepare_v2(m->db, "SELECT max(version) FROM schema_version", -1, &s, NULL) != SQLITE_OK)
        return 0;
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return v;
}

sqlite3 *metastore_db(metastore_t *m)
{
    return m->db;
}

static int tx_exec(metastore_t *m, const char *sql, const char **err)
{
    if (sqlite3_exec(m->db, sql, NULL, NULL, NULL) == SQLITE_OK)
        return 0;
    if (err)
        *err = sqlite3_errmsg(m->db);
    return BERTH_ERROR;
}

int metastore_begin(metastore_t *m, int write, const char **err)
{
    return tx_exec(m, write ? "BEGIN IMMEDIATE" : "BEGIN", err);
}

int metastore_commit(metastore_t *m, const char **err)
{
    return tx_exec(m, "COMMIT", err);
}

void metastore_rollback(metastore_t *m)
{
    tx_exec(m, "ROLLBACK", NULL);
}

int metastore_ping(metastore_t *m)
{
    return metastore_schema_version(m) > 0 ? 0 : -1;
}

int metastore_blob_get(metastore_t *m, const char *repo, const digest_t *d, uint64_t *size)
{
    cache_entry_t *slot = NULL, *e;
    uint64_t gen = current_generation();
    if (m->cache != NULL && (e = cache_find(m, 'b', repo, d->str, &slot)) != NULL) {
        *size = e->size;
        return 0;
    }
    sqlite3_stmt *s = stmt(m, Q_BLOB_GET);
    if (s == NULL)
        return BERTH_ERROR;
    bind_text(s, 1, repo);
    bind_text(s, 2, d->str);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *size = (uint64_t)sqlite3_column_int64(s, 0);
        if (slot != NULL) {
            cache_fill(slot, gen, 'b', repo, d->str);
            slot->size = *size;
        }
        rc = 0;
    } else {
        rc = rc == SQLITE_DONE ? BERTH_ENOTFOUND : step_error(m, Q_BLOB_GET);
    }
    sqlite3_reset(s);
    return rc;
}

int metastore_manifest_get(metastore_t *m, const char *repo, const char *tag, const digest_t *d, metastore_manifest_t *out)
{
    int q = tag ? Q_MANIFEST_BY_TAG : Q_MANIFEST_BY_DIGEST;
    cache_entry_t *slot = NULL, *e;
    uint64_t gen = current_generation();
    if (m->cache != NULL && (e = cache_find(m, tag ? 't' : 'd', repo, tag ? tag : d->str, &slot)) != NULL) {
        /* lent, not copied: valid until the next call on this connection */
        *out = (metastore_manifest_t){e->digest, e->media_type, e->content, e->size, e->checked_at, 1};
        return 0;
    }
    sqlite3_stmt *s = stmt(m, q);
    if (s == NULL)
        return BERTH_ERROR;
    bind_text(s, 1, repo);
    bind_text(s, 2, tag ? tag : d->str);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *dg = (const char *)sqlite3_column_text(s, 0);
        if (digest_parse(&out->digest, dg, strlen(dg)) != DIGEST_OK) {
            sqlite3_reset(s);
            log_error("database holds a bad digest: %s", dg);
            return BERTH_ERROR;
        }
        out->media_type = strdup((const char *)sqlite3_column_text(s, 1));
        out->size = (size_t)sqlite3_column_bytes(s, 2);
        out->content = malloc(out->size ? out->size : 1);
        memcpy(out->content, sqlite3_column_blob(s, 2), out->size);
        out->checked_at = tag ? sqlite3_column_int64(s, 3) : 0;
        out->lent = 0;
        if (slot != NULL && out->size <= CACHE_MAX_CONTENT) {
            /* the cache takes the copies and lends them */
            cache_fill(slot, gen, tag ? 't' : 'd', repo, tag ? tag : d->str);
            slot->digest = out->digest;
            slot->media_type = out->media_type;
            slot->content = out->content;
            slot->size = out->size;
            slot->checked_at = out->checked_at;
            out->lent = 1;
        }
        rc = 0;
    } else {
        rc = rc == SQLITE_DONE ? BERTH_ENOTFOUND : step_error(m, q);
    }
    sqlite3_reset(s);
    return rc;
}

void metastore_manifest_dispose(metastore_manifest_t *mf)
{
    if (!mf->lent) {
        free(mf->media_type);
        free(mf->content);
    }
    mf->media_type = NULL;
    mf->content = NULL;
}

static int repo_id(metastore_t *m, const char *repo, int64_t *id)
{
    sqlite3_stmt *s = stmt(m, Q_REPO_ID);
    if (s == NULL)
        return BERTH_ERROR;
    bind_text(s, 1, repo);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(s, 0);
        rc = 0;
    } else {
        rc = rc == SQLITE_DONE ? BERTH_ENOTFOUND : step_error(m, Q_REPO_ID);
    }
    sqlite3_reset(s);
    return rc;
}

static int list_names(metastore_t *m, int q, sqlite3_stmt *s, metastore_name_cb cb, void *ctx)
{
    int n = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        cb(ctx, (const char *)sqlite3_column_text(s, 0));
        ++n;
    }
    if (rc != SQLITE_DONE)
        n = step_error(m, q);
    sqlite3_reset(s);
    return n;
}

int metastore_tags_list(metastore_t *m, const char *repo, const char *last, long limit, metastore_name_cb cb, void *ctx)
{
    int64_t id;
    int rc = repo_id(m, repo, &id);
    if (rc != 0)
        return rc;
    sqlite3_stmt *s = stmt(m, Q_TAGS);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, id);
    bind_text(s, 2, last ? last : "");
    sqlite3_bind_int64(s, 3, limit);
    return list_names(m, Q_TAGS, s, cb, ctx);
}

int metastore_catalog(metastore_t *m, const char *last, long limit, metastore_name_cb cb, void *ctx)
{
    sqlite3_stmt *s = stmt(m, Q_CATALOG);
    if (s == NULL)
        return BERTH_ERROR;
    bind_text(s, 1, last ? last : "");
    sqlite3_bind_int64(s, 2, limit);
    return list_names(m, Q_CATALOG, s, cb, ctx);
}

/* Run a statement that returns no rows. */
static int run(metastore_t *m, int q, sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : step_error(m, q);
}

/* The id of `repo`, creating it (pushed here, or by a mirror: then public whatever the mode) if absent. */
static int repo_ensure(metastore_t *m, const char *repo, int mirror, int64_t *id)
{
    int rc = repo_id(m, repo, id);
    if (rc != BERTH_ENOTFOUND)
        return rc;
    sqlite3_stmt *s = stmt(m, Q_REPO_INSERT);
    if (s == NULL)
        return BERTH_ERROR;
    bind_text(s, 1, repo);
    sqlite3_bind_int64(s, 2, time(NULL));
    sqlite3_bind_int(s, 3, mirror || metastore_new_repos_public);
    sqlite3_bind_int(s, 4, mirror);
    if (run(m, Q_REPO_INSERT, s) != 0)
        return BERTH_ERROR;
    *id = sqlite3_last_insert_rowid(m->db);
    return 0;
}

static int blob_link(metastore_t *m, const char *repo, int mirror, const digest_t *d, uint64_t size)
{
    int64_t id, now = time(NULL);
    if (repo_ensure(m, repo, mirror, &id) != 0)
        return BERTH_ERROR;
    sqlite3_stmt *s = stmt(m, Q_BLOB_INSERT);
    if (s == NULL)
        return BERTH_ERROR;
    bind_text(s, 1, d->str);
    sqlite3_bind_int64(s, 2, (int64_t)size);
    sqlite3_bind_int64(s, 3, now);
    if (run(m, Q_BLOB_INSERT, s) != 0)
        return BERTH_ERROR;
    if ((s = stmt(m, Q_REPO_BLOB_INSERT)) == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, id);
    bind_text(s, 2, d->str);
    sqlite3_bind_int64(s, 3, now);
    return run(m, Q_REPO_BLOB_INSERT, s);
}

int metastore_blob_link(metastore_t *m, const char *repo, const digest_t *d, uint64_t size)
{
    return blob_link(m, repo, 0, d, size);
}

int metastore_mirror_blob_link(metastore_t *m, const char *repo, const digest_t *d, uint64_t size)
{
    return blob_link(m, repo, 1, d, size);
}

/* 1 if the statement q with (id, digest) returns a row, 0 if not, BERTH_ERROR. */
static int exists(metastore_t *m, int q, int64_t id, const char *digest)
{
    sqlite3_stmt *s = stmt(m, q);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, id);
    bind_text(s, 2, digest);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : step_error(m, q);
}

/* A push checks that everything the manifest references is here; a mirror (checked_at != 0: when the upstream
 * served it) stores what the upstream serves and fetches the rest when asked for it. */
static int manifest_put(metastore_t *m, const char *repo, const digest_t *d, const manifest_t *mf, const void *body, size_t len,
                        const char *const *tags, size_t ntags, int64_t checked_at, digest_t *missing)
{
    int64_t rid, mid, now = time(NULL);
    if (repo_ensure(m, repo, checked_at != 0, &rid) != 0)
        return BERTH_ERROR;
    for (size_t i = 0; i < mf->nrefs && checked_at == 0; ++i) {
        const manifest_ref_t *r = &mf->refs[i];
        if (r->foreign)
            continue;
        int rc = exists(m, r->kind == REF_MANIFEST ? Q_HAS_MANIFEST : Q_HAS_REPO_BLOB, rid, r->digest.str);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            *missing = r->digest;
            return BERTH_EMISSING;
        }
    }
    sqlite3_stmt *s = stmt(m, Q_MANIFEST_INSERT);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, rid);
    bind_text(s, 2, d->str);
    bind_text(s, 3, mf->media_type);
    sqlite3_bind_int64(s, 4, (int64_t)len);
    sqlite3_bind_blob(s, 5, body, (int)len, SQLITE_STATIC);
    bind_text(s, 6, mf->artifact_type);
    bind_text(s, 7, mf->has_subject ? mf->subject.str : NULL);
    bind_text(s, 8, mf->annotations_json);
    sqlite3_bind_int64(s, 9, now);
    if (run(m, Q_MANIFEST_INSERT, s) != 0)
        return BERTH_ERROR;
    if (sqlite3_changes(m->db) == 1) {
        mid = sqlite3_last_insert_rowid(m->db);
        for (size_t i = 0; i < mf->nrefs; ++i) {
            const manifest_ref_t *r = &mf->refs[i];
            if ((s = stmt(m, Q_REF_INSERT)) == NULL)
                return BERTH_ERROR;
            sqlite3_bind_int64(s, 1, mid);
            sqlite3_bind_int(s, 2, r->kind);
            bind_text(s, 3, r->digest.str);
            sqlite3_bind_int64(s, 4, r->size);
            bind_text(s, 5, r->media_type);
            sqlite3_bind_int(s, 6, r->foreign);
            if (run(m, Q_REF_INSERT, s) != 0)
                return BERTH_ERROR;
        }
    } else {
        if ((s = stmt(m, Q_MANIFEST_ID)) == NULL)
            return BERTH_ERROR;
        sqlite3_bind_int64(s, 1, rid);
        bind_text(s, 2, d->str);
        int rc = sqlite3_step(s);
        mid = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        if (rc != SQLITE_ROW)
            return step_error(m, Q_MANIFEST_ID);
    }
    for (size_t i = 0; i < ntags; ++i) {
        if ((s = stmt(m, Q_TAG_UPSERT)) == NULL)
            return BERTH_ERROR;
        sqlite3_bind_int64(s, 1, rid);
        bind_text(s, 2, tags[i]);
        sqlite3_bind_int64(s, 3, mid);
        sqlite3_bind_int64(s, 4, now);
        sqlite3_bind_int64(s, 5, checked_at);
        if (run(m, Q_TAG_UPSERT, s) != 0)
            return BERTH_ERROR;
    }
    return 0;
}

int metastore_manifest_put(metastore_t *m, const char *repo, const digest_t *d, const manifest_t *mf, const void *body,
                           size_t len, const char *const *tags, size_t ntags, digest_t *missing)
{
    return manifest_put(m, repo, d, mf, body, len, tags, ntags, 0, missing);
}

int metastore_mirror_manifest_put(metastore_t *m, const char *repo, const digest_t *d, const manifest_t *mf, const void *body,
                                  size_t len, const char *tag, int64_t checked_at)
{
    digest_t unused;
    return manifest_put(m, repo, d, mf, body, len, &tag, tag != NULL, checked_at > 0 ? checked_at : 1, &unused);
}

int metastore_tag_checked(metastore_t *m, const char *repo, const char *tag, int64_t checked_at)
{
    sqlite3_stmt *s = stmt(m, Q_TAG_CHECKED);
    if (s == NULL)
        return BERTH_ERROR;
    bind_text(s, 1, repo);
    bind_text(s, 2, tag);
    sqlite3_bind_int64(s, 3, checked_at);
    if (run(m, Q_TAG_CHECKED, s) != 0)
        return BERTH_ERROR;
    return sqlite3_changes(m->db) > 0 ? 0 : BERTH_ENOTFOUND;
}

int metastore_repo_origin(metastore_t *m, const char *repo)
{
    sqlite3_stmt *s = stmt(m, Q_REPO_ORIGIN);
    if (s == NULL)
        return BERTH_ERROR;
    bind_text(s, 1, repo);
    int rc = sqlite3_step(s);
    rc = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) != 0 : rc == SQLITE_DONE ? BERTH_ENOTFOUND : step_error(m, Q_REPO_ORIGIN);
    sqlite3_reset(s);
    return rc;
}

/* Run a DELETE of (repo, key): 0 if it removed a row, BERTH_ENOTFOUND if none. */
static int delete_one(metastore_t *m, int q, const char *repo, const char *key)
{
    sqlite3_stmt *s = stmt(m, q);
    if (s == NULL)
        return BERTH_ERROR;
    bind_text(s, 1, repo);
    bind_text(s, 2, key);
    if (run(m, q, s) != 0)
        return BERTH_ERROR;
    return sqlite3_changes(m->db) > 0 ? 0 : BERTH_ENOTFOUND;
}

int metastore_manifest_delete(metastore_t *m, const char *repo, const digest_t *d)
{
    return delete_one(m, Q_MANIFEST_DELETE, repo, d->str);
}

int metastore_tag_delete(metastore_t *m, const char *repo, const char *tag)
{
    return delete_one(m, Q_TAG_DELETE, repo, tag);
}

int metastore_blob_unlink(metastore_t *m, const char *repo, const digest_t *d)
{
    return delete_one(m, Q_BLOB_UNLINK, repo, d->str);
}

int metastore_blob_repos(metastore_t *m, const digest_t *d, long limit, uint64_t *size, void (*cb)(void *ctx, const char *repo),
                         void *ctx)
{
    sqlite3_stmt *s = stmt(m, Q_BLOB_REPOS);
    if (s == NULL)
        return BERTH_ERROR;
    bind_text(s, 1, d->str);
    sqlite3_bind_int64(s, 2, limit);
    int n = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        *size = (uint64_t)sqlite3_column_int64(s, 1);
        cb(ctx, (const char *)sqlite3_column_text(s, 0));
        ++n;
    }
    if (rc != SQLITE_DONE)
        n = step_error(m, Q_BLOB_REPOS);
    sqlite3_reset(s);
    return n;
}

int metastore_referrers(metastore_t *m, const char *repo, const digest_t *subject, const char *artifact_type,
                        void (*cb)(void *ctx, const metastore_referrer_t *r), void *ctx)
{
    int q = artifact_type ? Q_REFERRERS_TYPE : Q_REFERRERS;
    sqlite3_stmt *s = stmt(m, q);
    if (s == NULL)
        return BERTH_ERROR;
    bind_text(s, 1, repo);
    bind_text(s, 2, subject->str);
    if (artifact_type)
        bind_text(s, 3, artifact_type);
    int n = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        metastore_referrer_t r = {
            (const char *)sqlite3_column_text(s, 0), (const char *)sqlite3_column_text(s, 1),
            (const char *)sqlite3_column_text(s, 3), (const char *)sqlite3_column_text(s, 4), sqlite3_column_int64(s, 2),
        };
        cb(ctx, &r);
        ++n;
    }
    if (rc != SQLITE_DONE)
        n = step_error(m, q);
    sqlite3_reset(s);
    return n;
}

/* ---- the writer thread: group commit ---- */

typedef struct write_job {
    metastore_write_fn fn;
    void *arg;
    int rc;
    int done;
    struct write_job *next;
} write_job_t;

struct metastore_writer {
    metastore_t *m;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    write_job_t *head, **tail;
    int stopping;
};

static void *writer_main(void *p)
{
    metastore_writer_t *w = p;
    sqlite3_int64 changes = sqlite3_total_changes64(w->m->db);
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->head == NULL && !w->stopping)
            pthread_cond_wait(&w->wake, &w->mu);
        if (w->head == NULL)
            break;
        write_job_t *batch = w->head;
        w->head = NULL;
        w->tail = &w->head;
        pthread_mutex_unlock(&w->mu);

        int ok = exec(w->m, "BEGIN IMMEDIATE") == 0;
        for (write_job_t *j = batch; j; j = j->next) {
            if (!ok) {
                j->rc = BERTH_ERROR;
                continue;
            }
            exec(w->m, "SAVEPOINT job");
            j->rc = j->fn(w->m, j->arg);
            if (j->rc < 0)
                exec(w->m, "ROLLBACK TO job");
            exec(w->m, "RELEASE job");
        }
        if (ok && exec(w->m, "COMMIT") != 0) {
            exec(w->m, "ROLLBACK");
            for (write_job_t *j = batch; j; j = j->next)
                j->rc = BERTH_ERROR;
        } else if (ok && sqlite3_total_changes64(w->m->db) != changes) {
            /* committed: the read caches' entries are stale from now on, before any writer hears "done" */
            changes = sqlite3_total_changes64(w->m->db);
            __atomic_add_fetch(&generation, 1, __ATOMIC_RELEASE);
        }

        pthread_mutex_lock(&w->mu);
        for (write_job_t *j = batch; j; j = j->next)
            j->done = 1;
        pthread_cond_broadcast(&w->done);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

metastore_writer_t *metastore_writer_start(const char *path)
{
    metastore_writer_t *w = calloc(1, sizeof(*w));
    if ((w->m = metastore_open(path, 0)) == NULL) {
        free(w);
        return NULL;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->wake, NULL);
    pthread_cond_init(&w->done, NULL);
    w->tail = &w->head;
    pthread_create(&w->thread, NULL, writer_main, w);
    return w;
}

int metastore_write(metastore_writer_t *w, metastore_write_fn fn, void *arg)
{
    write_job_t job = {fn, arg, 0, 0, NULL};
    pthread_mutex_lock(&w->mu);
    *w->tail = &job;
    w->tail = &job.next;
    pthread_cond_signal(&w->wake);
    while (!job.done)
        pthread_cond_wait(&w->done, &w->mu);
    pthread_mutex_unlock(&w->mu);
    return job.rc;
}

void metastore_writer_stop(metastore_writer_t *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    metastore_close(w->m);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->done);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
