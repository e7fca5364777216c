#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/audit.h"
#include "store/db.h"
#include "util/log.h"
#include "util/status.h"
#include "util/time.h"

enum { Q_INSERT, Q_PRUNE, Q_LIST, Q__COUNT };

static db_query_t queries[Q__COUNT] = {
    [Q_INSERT] = {"INSERT INTO audit_log(at, actor, token_id, action, repository, reference, digest, address, detail, "
                  "count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"},
    [Q_PRUNE] = {"DELETE FROM audit_log WHERE at < ?1"},
    /* ?2 a name; ?4 the prefix "ns/" of a namespace pattern */
    [Q_LIST] = {"SELECT id, at, actor, token_id, action, repository, reference, digest, address, detail, count "
                "FROM audit_log WHERE at >= ?1 AND (?2 IS NULL OR repository = ?2 OR "
                "(?4 IS NOT NULL AND substr(repository, 1, length(?4)) = ?4)) AND (?3 IS NULL OR actor = ?3) "
                "ORDER BY id"},
};

static const char *nz(const char *s)
{
    return s != NULL ? s : "";
}

static int insert(metastore_t *m, const audit_record_t *r, int64_t at, int64_t count)
{
    sqlite3_stmt *s = db_stmt(m, &queries[Q_INSERT]);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, at);
    db_bind_text(s, 2, nz(r->actor));
    sqlite3_bind_int64(s, 3, r->token_id);
    db_bind_text(s, 4, nz(r->action));
    db_bind_text(s, 5, nz(r->repository));
    db_bind_text(s, 6, nz(r->reference));
    db_bind_text(s, 7, nz(r->digest));
    db_bind_text(s, 8, nz(r->address));
    db_bind_text(s, 9, nz(r->detail));
    sqlite3_bind_int64(s, 10, count);
    return db_run(m, s) == 0 ? 0 : BERTH_ERROR;
}

int audit_insert(metastore_t *m, const audit_record_t *r)
{
    return insert(m, r, time_now_s(), 1);
}

/* ---- the queue of records without a write of their own ---- */

typedef struct {
    audit_record_t r; /* strings malloc'd */
    int64_t at, count;
} queued_t;

static struct {
    pthread_mutex_t mu;
    queued_t *items;
    unsigned n;
    uint64_t dropped;
} q = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0};

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static int same(const char *a, const char *b)
{
    return strcmp(nz(a), nz(b)) == 0;
}

void audit_queue(const audit_record_t *r)
{
    int64_t now = time_now_s();
    pthread_mutex_lock(&q.mu);
    if (strcmp(nz(r->action), "login.failed") == 0) {
        /* a burst of failures from one address: one row, counted (look back a little: bursts are consecutive) */
        for (unsigned i = q.n, seen = 0; i-- > 0 && seen < 64; ++seen) {
            queued_t *e = &q.items[i];
            if (same(e->r.action, r->action) && same(e->r.actor, r->actor) && same(e->r.address, r->address) &&
                same(e->r.detail, r->detail)) {
                e->count++;
                pthread_mutex_unlock(&q.mu);
                return;
            }
        }
    }
    if (q.n == AUDIT_QUEUE_MAX) {
        q.dropped++;
        pthread_mutex_unlock(&q.mu);
        return;
    }
    if (q.items == NULL)
        q.items = malloc(AUDIT_QUEUE_MAX * sizeof(*q.items));
    queued_t *e = &q.items[q.n++];
    e->at = now;
    e->count = 1;
    e->r = (audit_record_t){dup_or_null(r->actor),     r->token_id,
                            dup_or_null(r->action),    dup_or_null(r->repository),
                            dup_or_null(r->reference), dup_or_null(r->digest),
                            dup_or_null(r->address),   dup_or_null(r->detail)};
    pthread_mutex_unlock(&q.mu);
}

unsigned audit_queued(void)
{
    pthread_mutex_lock(&q.mu);
    unsigned n = q.n + (q.dropped != 0);
    pthread_mutex_unlock(&q.mu);
    return n;
}

static void record_free(audit_record_t *r)
{
    free((char *)r->actor);
    free((char *)r->action);
    free((char *)r->repository);
    free((char *)r->reference);
    free((char *)r->digest);
    free((char *)r->address);
    free((char *)r->detail);
}

int audit_flush(metastore_t *m, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&q.mu);
    queued_t *items = q.items;
    unsigned n = q.n;
    uint64_t dropped = q.dropped;
    q.items = NULL;
    q.n = 0;
    q.dropped = 0;
    pthread_mutex_unlock(&q.mu);
    int rc = 0;
    for (unsigned i = 0; i < n; ++i) {
        if (rc == 0)
            rc = insert(m, &items[i].r, items[i].at, items[i].count);
        record_free(&items[i].r);
    }
    free(items);
    if (dropped != 0) {
        char detail[64];
        snprintf(detail, sizeof(detail), "%llu records dropped: the queue was full", (unsigned long long)dropped);
        log_warn("audit: %s", detail);
        audit_record_t r = {.actor = "berth", .action = "audit.dropped", .detail = detail};
        if (rc == 0)
            rc = insert(m, &r, time_now_s(), (int64_t)dropped);
    }
    if (rc != 0)
        log_error("audit: cannot record %u queued records", n);
    return rc;
}

int audit_prune(metastore_t *m, int64_t before)
{
    sqlite3_stmt *s = db_stmt(m, &queries[Q_PRUNE]);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, before);
    return db_run(m, s) == 0 ? db_changes(m) : BERTH_ERROR;
}

int audit_list(metastore_t *m, int64_t since, const char *repo, const char *actor,
               void (*cb)(void *ctx, const audit_row_t *row), void *ctx)
{
    char prefix[300];
    int ns = 0;
    size_t len = repo != NULL ? strlen(repo) : 0;
    if (len >= 2 && len < sizeof(prefix) && repo[len - 1] == '*' && repo[len - 2] == '/') {
        snprintf(prefix, sizeof(prefix), "%.*s", (int)len - 1, repo);
        ns = 1;
    }
    sqlite3_stmt *s = db_stmt(m, &queries[Q_LIST]);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, since);
    db_bind_text(s, 2, repo);
    db_bind_text(s, 3, actor);
    db_bind_text(s, 4, ns ? prefix : NULL);
    int n = 0, rc;
    while ((rc = db_step(m, s)) == 1) {
#define T(i) ((const char *)sqlite3_column_text(s, i))
        audit_row_t row = {sqlite3_column_int64(s, 0),
                           sqlite3_column_int64(s, 1),
                           sqlite3_column_int64(s, 3),
                           sqlite3_column_int64(s, 10),
                           T(2),
                           T(4),
                           T(5),
                           T(6),
                           T(7),
                           T(8),
                           T(9)};
#undef T
        cb(ctx, &row);
        ++n;
    }
    db_done(m, s);
    return rc < 0 ? rc : n;
}
