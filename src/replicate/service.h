/*
 * The server's replication: a thread of its own that runs the replication rules (replicate/replicate.h) on their
 * schedules, and the push rules with on_push for a repository soon after a manifest was pushed to it. Pushes only
 * queue the repository's name (in memory, deduplicated, bounded): a push is never slowed by replication, and a
 * slow or dead remote holds up nothing but this thread. What the queue loses (a restart, an overflow) the catch-up
 * finds: at start every rule runs once, and a scheduled rule again every `schedule`.
 */
#ifndef BERTH_REPLICATE_SERVICE_H
#define BERTH_REPLICATE_SERVICE_H

#include "config/config.h"
#include "store/store.h"

typedef struct replicate_service replicate_service_t;

/**
 * Start the thread for the rules of `cfg` on `store` (both must outlive it). NULL when there are no rules (nothing to
 * run), and NULL with *failed set when it cannot start (logged).
 */
replicate_service_t *replicate_service_start(const config_t *cfg, store_t *store, int *failed);

/**
 * A manifest was pushed to `repo`: queue it for the on_push rules that cover it. Never blocks on I/O (a short lock);
 * callable from any thread, the event loops included. `s` may be NULL.
 */
void replicate_service_notify(replicate_service_t *s, const char *repo);

/** Stop the thread (a transfer in progress is aborted; its next run finishes it) and free everything. NULL is fine. */
void replicate_service_stop(replicate_service_t *s);

#endif
