#include <stdio.h>
#include <string.h>
#include "store/db.h"
#include "store/quota.h"
#include "util/status.h"

static db_query_t q_check_blob = {"SELECT q.bytes, q.used, EXISTS(SELECT 1 FROM quota_blob WHERE ns = q.ns AND "
                                  "digest = ?2) FROM quota q WHERE q.ns = ?1",
                                  0};
static db_query_t q_get = {"SELECT ns, bytes, used FROM quota WHERE ns = ?1", 0};
static db_query_t q_list = {"SELECT ns, bytes, used FROM quota ORDER BY ns", 0};
static db_query_t q_refused = {"INSERT INTO blob(digest, size, created_at) VALUES (?1, ?2, unixepoch()) "
                               "ON CONFLICT DO NOTHING",
                               0};
static db_query_t q_refused_queue = {"INSERT INTO gc_blob VALUES (?1, unixepoch()) ON CONFLICT DO NOTHING", 0};
static db_query_t q_remove = {"DELETE FROM quota WHERE ns = ?1", 0};
static db_query_t q_upsert = {"INSERT INTO quota(ns, bytes, used) VALUES (?1, ?2, 0) "
                              "ON CONFLICT DO UPDATE SET bytes = excluded.bytes",
                              0};
static db_query_t q_totals = {"SELECT blobs, bytes, gc_runs, gc_freed_bytes FROM store_totals WHERE id = 1", 0};
static db_query_t q_forget = {"DELETE FROM quota_blob WHERE ns = ?1", 0};
static db_query_t q_count = {"INSERT INTO quota_blob SELECT ?1, rb.digest, count(*) FROM repository_blob rb "
                             "JOIN repository r ON r.id = rb.repository_id WHERE r.ns = ?1 GROUP BY rb.digest",
                             0};
static db_query_t q_used = {"UPDATE quota SET used = (SELECT coalesce(sum(b.size), 0) FROM quota_blob x JOIN blob b ON "
                            "b.digest = x.digest WHERE x.ns = ?1) WHERE ns = ?1",
                            0};
/* each namespace's distinct blobs; shared: linked by another namespace too */
static db_query_t q_usage_ns = {
    "WITH l AS (SELECT DISTINCT r.ns, rb.digest FROM repository_blob rb JOIN repository r ON r.id = rb.repository_id), "
    "c AS (SELECT digest, count(*) AS n FROM l GROUP BY digest) "
    "SELECT l.ns, sum(CASE WHEN c.n = 1 THEN b.size ELSE 0 END), sum(CASE WHEN c.n > 1 THEN b.size ELSE 0 END), "
    "count(*) FROM l JOIN c ON c.digest = l.digest JOIN blob b ON b.digest = l.digest "
    "WHERE ?1 IS NULL OR l.ns = ?1 GROUP BY l.ns ORDER BY l.ns",
    0};
/* each repository's blobs; shared: linked by another repository too */
static db_query_t q_usage_repo = {
    "SELECT r.name, sum(CASE WHEN (SELECT count(*) FROM repository_blob x WHERE x.digest = rb.digest) = 1 THEN b.size "
    "ELSE 0 END), sum(CASE WHEN (SELECT count(*) FROM repository_blob x WHERE x.digest = rb.digest) > 1 THEN b.size "
    "ELSE 0 END), count(*) FROM repository r JOIN repository_blob rb ON rb.repository_id = r.id "
    "JOIN blob b ON b.digest = rb.digest WHERE r.ns = ?1 AND (?2 IS NULL OR r.name = ?2) GROUP BY r.name "
    "ORDER BY r.name",
    0};

const char *quota_format_size(uint64_t bytes, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)bytes;
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0]))
        v /= 1024, ++u;
    if (u == 0)
        snprintf(buf, len, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, len, "%.1f %s", v, units[u]);
    return buf;
}

void quota_ns_of(const char *repo, char *ns)
{
    size_t n = strcspn(repo, "/");
    if (n > NAME_MAX_LEN)
        n = NAME_MAX_LEN;
    memcpy(ns, repo, n);
    ns[n] = '\0';
}

/* Run `q` bound to text `a` (and `b`, and int64 `i` when >= 0): 0 or BERTH_ERROR. */
static int run(db_t *db, db_query_t *q, const char *a, const char *b, int64_t i)
{
    sqlite3_stmt *s = db_stmt(db, q);
    if (s == NULL)
        return BERTH_ERROR;
    db_bind_text(s, 1, a);
    if (b != NULL)
        db_bind_text(s, 2, b);
    if (i >= 0)
        sqlite3_bind_int64(s, 2, i);
    return db_run(db, s);
}

static void read_quota(sqlite3_stmt *s, quota_t *q)
{
    snprintf(q->ns, sizeof(q->ns), "%s", (const char *)sqlite3_column_text(s, 0));
    q->bytes = (uint64_t)sqlite3_column_int64(s, 1);
    q->used = (uint64_t)sqlite3_column_int64(s, 2);
}

int quota_get(metastore_t *m, const char *ns, quota_t *q)
{
    sqlite3_stmt *s = db_stmt(m, &q_get);
    if (s == NULL)
        return BERTH_ERROR;
    db_bind_text(s, 1, ns);
    int rc = db_step(m, s);
    if (rc == 1)
        read_quota(s, q);
    db_done(m, s);
    return rc;
}

int quota_check_blob(metastore_t *m, const char *repo, const digest_t *d, uint64_t size, quota_t *q)
{
    quota_ns_of(repo, q->ns);
    sqlite3_stmt *s = db_stmt(m, &q_check_blob);
    if (s == NULL)
        return BERTH_ERROR;
    db_bind_text(s, 1, q->ns);
    db_bind_text(s, 2, d->str);
    int rc = db_step(m, s);
    if (rc == 1) {
        q->bytes = (uint64_t)sqlite3_column_int64(s, 0);
        q->used = (uint64_t)sqlite3_column_int64(s, 1);
        rc = sqlite3_column_int(s, 2) == 0 && q->used + size > q->bytes ? BERTH_EQUOTA : 0;
    }
    db_done(m, s);
    return rc;
}

int quota_check_manifest(metastore_t *m, const char *repo, quota_t *q)
{
    char ns[NAME_MAX_LEN + 1];
    quota_ns_of(repo, ns);
    int rc = quota_get(m, ns, q);
    return rc == 1 ? (q->used > q->bytes ? BERTH_EQUOTA : 0) : rc;
}

int quota_refused_blob(metastore_t *m, const digest_t *d, uint64_t size)
{
    return run(m, &q_refused, d->str, NULL, (int64_t)size) != 0 || run(m, &q_refused_queue, d->str, NULL, -1) != 0
               ? BERTH_ERROR
               : 0;
}

int quota_set(metastore_t *m, const char *ns, uint64_t bytes)
{
    if (bytes == 0)
        return run(m, &q_remove, ns, NULL, -1);
    if (run(m, &q_upsert, ns, NULL, (int64_t)bytes) != 0 || run(m, &q_forget, ns, NULL, -1) != 0 ||
        run(m, &q_count, ns, NULL, -1) != 0 || run(m, &q_used, ns, NULL, -1) != 0)
        return BERTH_ERROR;
    return 0;
}

int quota_list(metastore_t *m, void (*cb)(void *ctx, const quota_t *q), void *ctx)
{
    sqlite3_stmt *s = db_stmt(m, &q_list);
    if (s == NULL)
        return BERTH_ERROR;
    int rc, n = 0;
    while ((rc = db_step(m, s)) == 1) {
        quota_t q;
        read_quota(s, &q);
        cb(ctx, &q);
        ++n;
    }
    db_done(m, s);
    return rc < 0 ? rc : n;
}

static int usage(metastore_t *m, db_query_t *q, const char *a, const char *b,
                 void (*cb)(void *ctx, const quota_usage_t *u), void *ctx)
{
    sqlite3_stmt *s = db_stmt(m, q);
    if (s == NULL)
        return BERTH_ERROR;
    db_bind_text(s, 1, a);
    if (q == &q_usage_repo)
        db_bind_text(s, 2, b);
    int rc, n = 0;
    while ((rc = db_step(m, s)) == 1) {
        quota_usage_t u = {(const char *)sqlite3_column_text(s, 0), (uint64_t)sqlite3_column_int64(s, 1),
                           (uint64_t)sqlite3_column_int64(s, 2), (uint64_t)sqlite3_column_int64(s, 3)};
        cb(ctx, &u);
        ++n;
    }
    db_done(m, s);
    return rc < 0 ? rc : n;
}

int quota_usage_namespaces(metastore_t *m, const char *ns, void (*cb)(void *ctx, const quota_usage_t *u), void *ctx)
{
    return usage(m, &q_usage_ns, ns, NULL, cb, ctx);
}

int quota_usage_repositories(metastore_t *m, const char *ns, const char *repo,
                             void (*cb)(void *ctx, const quota_usage_t *u), void *ctx)
{
    return usage(m, &q_usage_repo, ns, repo, cb, ctx);
}

int quota_totals(metastore_t *m, quota_totals_t *out)
{
    sqlite3_stmt *s = db_stmt(m, &q_totals);
    if (s == NULL)
        return BERTH_ERROR;
    int rc = db_step(m, s);
    if (rc == 1) {
        out->blobs = (uint64_t)sqlite3_column_int64(s, 0);
        out->bytes = (uint64_t)sqlite3_column_int64(s, 1);
        out->gc_runs = (uint64_t)sqlite3_column_int64(s, 2);
        out->gc_freed_bytes = (uint64_t)sqlite3_column_int64(s, 3);
    }
    db_done(m, s);
    return rc == 1 ? 0 : BERTH_ERROR;
}
