/*
 * The webhook queue (schema/012_webhook_queue.sql): events, stored as the JSON of distribution's event, wait in the
 * database until every configured endpoint has delivered them (or filtered them out), so that a restart loses none.
 * A push's or delete's event is inserted by the write itself, in its transaction; pulls, which have no write, are
 * queued in memory (bounded) and inserted in batches by the store's chores thread. At most `queue_size` events wait:
 * beyond, the oldest are dropped, counted and logged. Each endpoint keeps a cursor: the last event id it has.
 * Delivery itself (HTTP, filters, retries) is notify/'s.
 */
#ifndef BERTH_STORE_EVENTS_H
#define BERTH_STORE_EVENTS_H

#include <stdint.h>
#include "store/metastore.h"

/** Pull events the memory queue holds between flushes; more are dropped (counted). */
#define EVENTS_MEMORY_MAX 4096

/** The bound on waiting events (notifications.queue_size); set once at start-up. 0: no events are kept. */
void events_set_limit(unsigned queue_size);
/** Whether events are kept at all (an endpoint is configured). */
int events_enabled(void);

/** Insert an event inside the caller's write (`json` the distribution event): 0 or BERTH_ERROR. */
int events_insert(metastore_t *m, const char *action, const char *repository, const char *media_type, const char *json);
/** Queue an event (copied) for the next flush; thread-safe. For pulls. */
void events_queue(const char *action, const char *repository, const char *media_type, const char *json);
/** Events queued in memory, not yet flushed. */
unsigned events_queued(void);
/** Insert the queued events inside the caller's write (a metastore_write callback; `arg` unused): 0 or BERTH_ERROR. */
int events_flush(metastore_t *m, void *arg);
/** Events dropped since start: the queue (database or memory) was full. */
uint64_t events_dropped(void);

/**
 * At start-up, inside a write: the cursors of endpoints no longer configured go, a new endpoint starts after the
 * newest event (it gets what happens from now on), and events every endpoint has are deleted; with no endpoint, every
 * event is. 0 or BERTH_ERROR.
 */
int events_setup(metastore_t *m, const char *const *endpoints, size_t n);
/** The cursor of `endpoint` (0 if it has none): 0 or BERTH_ERROR. */
int events_cursor(metastore_t *m, const char *endpoint, int64_t *delivered);
/** Move the cursor of `endpoint` inside a write, and delete the events every endpoint has: 0 or BERTH_ERROR. */
int events_cursor_set(metastore_t *m, const char *endpoint, int64_t delivered);

/** An event as read; strings valid during the callback only. */
typedef struct {
    int64_t id;
    const char *action, *repository, *media_type, *json;
} events_row_t;
/** Up to `limit` events after id `after`, oldest first: the count, or BERTH_ERROR. cb returns 0 to go on, 1 to stop. */
int events_read(metastore_t *m, int64_t after, int limit, int (*cb)(void *ctx, const events_row_t *row), void *ctx);
/** Events waiting (for tests and the log): the count, or BERTH_ERROR. */
int events_count(metastore_t *m);

#endif
