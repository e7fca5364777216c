#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "store/db.h"
#include "store/events.h"
#include "util/log.h"
#include "util/status.h"
#include "util/time.h"

enum { Q_INSERT, Q_TRIM, Q_CURSOR, Q_CURSOR_SET, Q_PRUNE, Q_READ, Q_COUNT, Q_MAX_ID, Q_CURSOR_NEW, Q__COUNT };

static db_query_t queries[Q__COUNT] = {
    [Q_INSERT] = {"INSERT INTO webhook_event(created_at, action, repository, media_type, event) "
                  "VALUES (?1, ?2, ?3, ?4, ?5)"},
    [Q_TRIM] = {"DELETE FROM webhook_event WHERE id <= ?1"},
    [Q_CURSOR] = {"SELECT delivered FROM webhook_cursor WHERE endpoint = ?1"},
    [Q_CURSOR_SET] = {"UPDATE webhook_cursor SET delivered = max(delivered, ?2) WHERE endpoint = ?1"},
    [Q_PRUNE] = {"DELETE FROM webhook_event WHERE id <= (SELECT min(delivered) FROM webhook_cursor)"},
    [Q_READ] = {"SELECT id, action, repository, media_type, event FROM webhook_event WHERE id > ?1 ORDER BY id "
                "LIMIT ?2"},
    [Q_COUNT] = {"SELECT count(*) FROM webhook_event"},
    /* the newest id ever given (sqlite_sequence: AUTOINCREMENT's), even when the table is empty */
    [Q_MAX_ID] = {"SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'webhook_event'), 0)"},
    [Q_CURSOR_NEW] = {"INSERT INTO webhook_cursor(endpoint, delivered) VALUES (?1, ?2) ON CONFLICT DO NOTHING"},
};

static unsigned limit;
static uint64_t dropped;        /* atomic */
static int64_t last_drop_log_s; /* the writer thread's */

void events_set_limit(unsigned queue_size)
{
    limit = queue_size;
}

int events_enabled(void)
{
    return limit != 0;
}

uint64_t events_dropped(void)
{
    return __atomic_load_n(&dropped, __ATOMIC_RELAXED);
}

static int64_t scalar(metastore_t *m, int q)
{
    sqlite3_stmt *s = db_stmt(m, &queries[q]);
    if (s == NULL)
        return BERTH_ERROR;
    int rc = db_step(m, s);
    int64_t v = rc == 1 ? sqlite3_column_int64(s, 0) : rc == 0 ? 0 : BERTH_ERROR;
    db_done(m, s);
    return v;
}

int events_insert(metastore_t *m, const char *action, const char *repository, const char *media_type, const char *json)
{
    if (limit == 0)
        return 0;
    sqlite3_stmt *s = db_stmt(m, &queries[Q_INSERT]);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, time_now_s());
    db_bind_text(s, 2, action);
    db_bind_text(s, 3, repository);
    db_bind_text(s, 4, media_type ? media_type : "");
    db_bind_text(s, 5, json);
    if (db_run(m, s) != 0)
        return BERTH_ERROR;
    /* full: the oldest go (ids are consecutive, so the bound is a subtraction); a push is never refused for it */
    int64_t id = db_last_id(m);
    if (id <= (int64_t)limit)
        return 0;
    int n = db_run_keyed(m, &queries[Q_TRIM], id - (int64_t)limit, NULL);
    if (n < 0)
        return BERTH_ERROR;
    if (n > 0) {
        uint64_t total = __atomic_add_fetch(&dropped, (uint64_t)n, __ATOMIC_RELAXED);
        int64_t now = time_now_s();
        if (now - last_drop_log_s >= 10) { /* a line every 10 s at most, however many pushes */
            last_drop_log_s = now;
            log_warn("webhooks: the queue is full (notifications.queue_size %u): the oldest undelivered events are "
                     "dropped (%llu so far)",
                     limit, (unsigned long long)total);
        }
    }
    return 0;
}

/* ---- pulls: queued in memory, inserted in batches ---- */

typedef struct {
    char *action, *repository, *media_type, *json;
} pending_t;

static struct {
    pthread_mutex_t mu;
    pending_t *items;
    unsigned n;
} q = {PTHREAD_MUTEX_INITIALIZER, NULL, 0};

void events_queue(const char *action, const char *repository, const char *media_type, const char *json)
{
    pthread_mutex_lock(&q.mu);
    if (q.n == EVENTS_MEMORY_MAX) {
        pthread_mutex_unlock(&q.mu);
        __atomic_add_fetch(&dropped, 1, __ATOMIC_RELAXED);
        return;
    }
    if (q.items == NULL)
        q.items = malloc(EVENTS_MEMORY_MAX * sizeof(*q.items));
    q.items[q.n++] =
        (pending_t){strdup(action), strdup(repository), strdup(media_type ? media_type : ""), strdup(json)};
    pthread_mutex_unlock(&q.mu);
}

unsigned events_queued(void)
{
    pthread_mutex_lock(&q.mu);
    unsigned n = q.n;
    pthread_mutex_unlock(&q.mu);
    return n;
}

int events_flush(metastore_t *m, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&q.mu);
    pending_t *items = q.items;
    unsigned n = q.n;
    q.items = NULL;
    q.n = 0;
    pthread_mutex_unlock(&q.mu);
    int rc = 0;
    for (unsigned i = 0; i < n; ++i) {
        if (rc == 0)
            rc = events_insert(m, items[i].action, items[i].repository, items[i].media_type, items[i].json);
        free(items[i].action);
        free(items[i].repository);
        free(items[i].media_type);
        free(items[i].json);
    }
    free(items);
    if (rc != 0)
        log_error("webhooks: cannot store %u pull events", n);
    return rc;
}

/* ---- cursors ---- */

int events_setup(metastore_t *m, const char *const *endpoints, size_t n)
{
    /* the cursors of endpoints gone: a statement of its own, as the list varies */
    char *sql = strdup("DELETE FROM webhook_cursor WHERE endpoint NOT IN (''");
    for (size_t i = 0; i < n; ++i) {
        char *more = sqlite3_mprintf("%s, %Q", sql, endpoints[i]);
        free(sql);
        sql = strdup(more);
        sqlite3_free(more);
    }
    char *full = sqlite3_mprintf("%s)", sql);
    free(sql);
    int rc = db_exec(m, full);
    sqlite3_free(full);
    if (rc != 0)
        return BERTH_ERROR;
    int64_t newest = scalar(m, Q_MAX_ID);
    if (newest < 0)
        return BERTH_ERROR;
    for (size_t i = 0; i < n; ++i) {
        sqlite3_stmt *s = db_stmt(m, &queries[Q_CURSOR_NEW]);
        if (s == NULL)
            return BERTH_ERROR;
        db_bind_text(s, 1, endpoints[i]);
        sqlite3_bind_int64(s, 2, newest);
        if (db_run(m, s) != 0)
            return BERTH_ERROR;
    }
    if (n == 0)
        return db_exec(m, "DELETE FROM webhook_event");
    return db_run_keyed(m, &queries[Q_PRUNE], 0, NULL) < 0 ? BERTH_ERROR : 0;
}

int events_cursor(metastore_t *m, const char *endpoint, int64_t *delivered)
{
    sqlite3_stmt *s = db_stmt(m, &queries[Q_CURSOR]);
    if (s == NULL)
        return BERTH_ERROR;
    db_bind_text(s, 1, endpoint);
    int rc = db_step(m, s);
    *delivered = rc == 1 ? sqlite3_column_int64(s, 0) : 0;
    db_done(m, s);
    return rc < 0 ? BERTH_ERROR : 0;
}

int events_cursor_set(metastore_t *m, const char *endpoint, int64_t delivered)
{
    sqlite3_stmt *s = db_stmt(m, &queries[Q_CURSOR_SET]);
    if (s == NULL)
        return BERTH_ERROR;
    db_bind_text(s, 1, endpoint);
    sqlite3_bind_int64(s, 2, delivered);
    if (db_run(m, s) != 0)
        return BERTH_ERROR;
    s = db_stmt(m, &queries[Q_PRUNE]);
    return s != NULL && db_run(m, s) == 0 ? 0 : BERTH_ERROR;
}

int events_read(metastore_t *m, int64_t after, int max, int (*cb)(void *ctx, const events_row_t *row), void *ctx)
{
    sqlite3_stmt *s = db_stmt(m, &queries[Q_READ]);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, after);
    sqlite3_bind_int(s, 2, max);
    int n = 0, rc;
    while ((rc = db_step(m, s)) == 1) {
        events_row_t row = {sqlite3_column_int64(s, 0), (const char *)sqlite3_column_text(s, 1),
                            (const char *)sqlite3_column_text(s, 2), (const char *)sqlite3_column_text(s, 3),
                            (const char *)sqlite3_column_text(s, 4)};
        ++n;
        if (cb(ctx, &row) != 0)
            break;
    }
    db_done(m, s);
    return rc < 0 ? rc : n;
}

int events_count(metastore_t *m)
{
    int64_t n = scalar(m, Q_COUNT);
    return n < 0 ? BERTH_ERROR : (int)n;
}
