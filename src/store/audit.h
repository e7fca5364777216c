/*
 * The audit log (schema/009_audit.sql): who pushed, moved a tag, deleted, logged in, made or revoked a token, changed
 * a permission, when and from where. A record that describes a write is inserted by the write itself, in the same
 * transaction (audit_insert inside a metastore_write callback, or inside the CLI's transaction): the change and its
 * record commit together, with no commit of their own. A record without a write (a login) is queued in memory
 * (audit_queue, bounded) and written by the store's chores thread about once a second, many in one transaction;
 * repeated failed logins of one name from one address fold into one row with a count, and what does not fit in the
 * queue is counted and recorded as one "audit.dropped" row.
 */
#ifndef BERTH_STORE_AUDIT_H
#define BERTH_STORE_AUDIT_H

#include <stdint.h>
#include "store/metastore.h"

/** Records the queue holds between flushes; more are dropped (counted). */
#define AUDIT_QUEUE_MAX 4096

/** One record; every string may be NULL (stored as ""). */
typedef struct {
    const char *actor; /* an account name, "anonymous", or "cli:<unix user>" */
    int64_t token_id;  /* the access token the actor used, 0 for none */
    const char *action;
    const char *repository;
    const char *reference; /* a tag, a digest, a grantee, a token id */
    const char *digest;
    const char *address; /* the client's address (auth/limiter.h), "local" for the CLI */
    const char *detail;
} audit_record_t;

/** Insert `r`, now, inside the caller's write transaction: 0 or BERTH_ERROR. */
int audit_insert(metastore_t *m, const audit_record_t *r);

/** Queue `r` (copied) for the next flush; thread-safe. A failed login ("login.failed") folds into a queued one of
 * the same actor, address and detail. */
void audit_queue(const audit_record_t *r);
/** Records queued and not yet flushed. */
unsigned audit_queued(void);
/** Write the queued records inside the caller's write transaction (a metastore_write callback; `arg` unused): 0 or
 * BERTH_ERROR (the records are then lost, and logged). */
int audit_flush(metastore_t *m, void *arg);

/** Delete the rows older than `before` (unix seconds) inside a write: the count, or BERTH_ERROR. */
int audit_prune(metastore_t *m, int64_t before);

/** A row as listed; strings valid during the callback only. */
typedef struct {
    int64_t id, at, token_id, count;
    const char *actor, *action, *repository, *reference, *digest, *address, *detail;
} audit_row_t;

/**
 * The rows at or after `since` (unix seconds), of repository `repo` (NULL: any; a name or "ns/" + "*"), by `actor`
 * (NULL: any), oldest first: the count, or BERTH_ERROR.
 */
int audit_list(metastore_t *m, int64_t since, const char *repo, const char *actor,
               void (*cb)(void *ctx, const audit_row_t *row), void *ctx);

#endif
