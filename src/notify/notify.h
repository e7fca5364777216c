/*
 * Webhooks (docs/webhooks.md): the configuration's notifications.endpoints get the registry's events in
 * distribution's envelope (or as CloudEvents), delivered from the database queue (store/events.h) by one thread per
 * endpoint, in order, at least once, with retries and exponential backoff. Nothing here blocks a request: the HTTP
 * layer builds an event (notify_event_json) and stores it with its write (events_insert) or, for a pull, queues it
 * (events_queue); a delivery thread finds it after notify_kick() or within a second.
 * The HTTP client is berth serve's (the mirrors' libcurl, opened on first use): given with notify_set_poster.
 */
#ifndef BERTH_NOTIFY_NOTIFY_H
#define BERTH_NOTIFY_NOTIFY_H

#include <stddef.h>
#include <stdint.h>
#include "config/config.h"
#include "store/metastore.h"

/**
 * POST `body` (`len` bytes) to `url` with the `nheaders` header lines `headers` ("Name: value"), within
 * `timeout_ms`: 0 with the status in *status, -1 with the reason in `err` (no answer), -2 when there is no HTTP client
 * (libcurl cannot be loaded). Called on the delivery threads.
 */
typedef int (*notify_post_fn)(const char *url, const char *const *headers, size_t nheaders, const char *body,
                              size_t len, long timeout_ms, long *status, char *err, size_t errlen);
void notify_set_poster(notify_post_fn fn);

/**
 * Set up from `cfg` (kept: it must outlive notify_stop) with the database at `db_path` and its writer `w`: the
 * queue's bound, the cursors of the endpoints (store/events.h's events_setup), and the `source` of the events
 * (`addr`: how the registry is reached, host:port). Starts a delivery thread per enabled endpoint. 0 or -1 (logged).
 * Without endpoints nothing is started and no event is ever made.
 */
int notify_start(const config_t *cfg, const char *db_path, metastore_writer_t *w, const char *addr);
/** Stop the delivery threads (an attempt in flight ends within its timeout); their cursors are saved. */
void notify_stop(void);

/** The actions (CONFIG_ACTION_*) some enabled endpoint takes: 0 when events need not be made at all. Cheap. */
unsigned notify_actions(void);
/** Wake the delivery threads: an event was committed. Cheap; any thread. */
void notify_kick(void);

/** What an event is about, as distribution's event has it. Strings may be NULL (omitted or ""). */
typedef struct {
    const char *action; /* "push", "pull", "delete" */
    const char *repository, *tag, *digest, *media_type;
    int64_t size;       /* -1: unknown (omitted) */
    const char *base;   /* the registry's URL (for target.url), no trailing slash */
    const char *addr;   /* the client's address */
    const char *host;   /* the request's Host */
    const char *method; /* the request's method */
    const char *useragent;
    const char *actor; /* the account name; NULL or "" for anonymous */
} notify_event_t;

/** Distribution's event for `e`, with a new id and the time now: malloc'd JSON (the caller frees). Any thread. */
char *notify_event_json(const notify_event_t *e);

/** Whether repository `repo` is covered by a pattern of `patterns` (a name, a namespace followed by a slash and a
 * star, or a star alone; as the lifecycle rules), none covering all. Pure. */
int notify_repo_matches(char *const *patterns, size_t n, const char *repo);

#endif
