/*
 * The pull-through mirror's fetch engine: a manifest or blob a mirrored repository lacks (or a tag due for
 * revalidation) is fetched from the upstream on a fetch thread, verified, stored through store/ and recorded as if
 * it had been pushed.
 *
 * Single flight: one fetch per missing object. Every request for it (the first included) follows the flight: a
 * manifest request waits for it to end, then answers from the database; a blob request streams the bytes from the
 * file the fetch is writing, as they arrive, and ends its response only once the digest is verified. A follower
 * that goes away leaves the fetch running for the others and for the cache.
 *
 * Threads: the fetch runs on a thread of the caller's (mirror_fetch_env_t.spawn) and tells a follower that caught
 * up about progress through the follower's `wake` callback, which must hand the news to the follower's own thread
 * (an event loop). All flight and follower state shared between them is under one lock of the engine's.
 */
#ifndef BERTH_MIRROR_FETCH_H
#define BERTH_MIRROR_FETCH_H

#include <stdint.h>
#include "mirror/mirror.h"
#include "mirror/upstream.h"
#include "oci/digest.h"
#include "oci/errors.h"
#include "store/blobstore.h"
#include "store/metastore.h"

/** upstream_fetch's signature: how the engine reaches an upstream (a test gives a fake one). */
typedef int (*mirror_upstream_fn)(upstream_t *u, const char *method, const char *name, const char *kind,
                                  const char *ref, const char *accept, int whole_timeout, const upstream_sink_t *sink,
                                  upstream_resp_t *resp);

/** What the engine stores with and runs on. Every pointer is the caller's and must outlive the fetches. */
typedef struct {
    blobstore_t *blobs;         /* where a verified blob goes */
    const char *storage_root;   /* a blob being fetched is written under <storage_root>/tmp, beside the blob store */
    metastore_writer_t *writer; /* records what was fetched */
    uint64_t manifest_max_size; /* a larger manifest is refused (storage.manifest_max_size) */
    uint64_t blob_max_size;     /* a larger blob is refused (http.max_body_size: what a push may send) */
    /* Run fn(arg) on a thread where it may block for minutes (the fetch pool), never on an event loop. */
    void (*spawn)(void (*fn)(void *arg), void *arg);
    mirror_upstream_fn upstream; /* NULL: upstream_fetch */
} mirror_fetch_env_t;

/** Set up the engine with a copy of `env`, before the first mirror_follow; also undoes mirror_fetch_stop. */
void mirror_fetch_init(const mirror_fetch_env_t *env);
/** Make running fetches stop (at shutdown): their transfers abort, and the flights fail. */
void mirror_fetch_stop(void);

/** What a fetch is for. mirror_follow copies the strings: the flight owns its copies. */
typedef struct {
    const mirror_t *m;   /* the mirror serving the repository */
    const char *local;   /* berth's name for the repository */
    const char *up;      /* the upstream's name for it */
    const char *ref;     /* the tag or digest, as the client asked */
    int is_blob, by_tag; /* a blob; a manifest by tag (else by digest) */
    digest_t digest;     /* the blob, or the manifest asked for by digest */
    int cached;          /* a manifest by tag: a copy is here (stale), pointing at `cached_digest`: revalidate it */
    digest_t cached_digest;
} mirror_fetch_what_t;

typedef enum {
    MIRROR_FETCH_WAIT, /* nothing to serve yet */
    MIRROR_FETCH_BODY, /* a blob arriving: `have` bytes in `fd` so far */
    MIRROR_FETCH_DONE, /* stored (a manifest: in the database now, or was, stale; a blob: all of it in `fd`) */
    MIRROR_FETCH_FAIL, /* failed: `err` and its message for the client */
} mirror_fetch_state_t;

typedef struct mirror_flight mirror_flight_t;

/**
 * One request following a flight, embedded in the caller's own follower. The caller sets `wake` before
 * mirror_follow; the fields that start with _ are the engine's.
 *
 * `wake` is called (on the fetch's thread, under the engine's lock: it must not call back into the engine) when
 * the follower, having polled and been told to wait, may move on. It is not called again before the caller, on
 * its own thread, has called mirror_follower_woken.
 */
typedef struct mirror_follower {
    void (*wake)(struct mirror_follower *fo);
    struct mirror_follower *_next;
    mirror_flight_t *_flight;
    int _waiting;      /* caught up: wake me on progress */
    int _wake_pending; /* woken, and mirror_follower_woken not called yet */
} mirror_follower_t;

/**
 * Follow the flight fetching `what`, starting it (env.spawn) if there is none. Returns 1 if it started the
 * flight, 0 if it joined a running one (whose blob may already be arriving: poll at once), -1 if it could not
 * (out of memory; `fo` follows nothing). Once following, `fo` holds the flight: mirror_unfollow, then
 * mirror_follower_dispose when no wake is pending any more.
 */
int mirror_follow(mirror_follower_t *fo, const mirror_fetch_what_t *what);

/** Where the flight is, for a follower. The pointers are the flight's, valid while the follower holds it. */
typedef struct {
    mirror_fetch_state_t state;
    uint64_t have; /* a blob: the bytes in `fd` so far */
    uint64_t size; /* a blob: its size, UINT64_MAX until known */
    int fd;        /* a blob (BODY, DONE): the file it is written to; pread it, never close it */
    const mirror_fetch_what_t *what;
    err_code_t err;          /* FAIL: the error for the client */
    const char *message;     /* FAIL: its message, NULL for the code's own */
    const char *retry_after; /* FAIL: the Retry-After to send, "" for none */
} mirror_fetch_progress_t;

/**
 * The flight's progress, for a follower that has read `off` bytes of the blob (0 for a manifest). If that leaves
 * the follower nothing to do (WAIT, or BODY with no bytes past `off`) it will be woken on the next progress.
 */
void mirror_follower_poll(mirror_follower_t *fo, uint64_t off, mirror_fetch_progress_t *out);

/** The wake-up arrived on the follower's thread: `wake` may be called again. */
void mirror_follower_woken(mirror_follower_t *fo);

/**
 * Leave the flight (the request went away; the fetch goes on): no `wake` is called after this returns. Returns 1
 * if a wake-up is still on its way to the follower (keep `fo` until it arrives), else 0.
 */
int mirror_unfollow(mirror_follower_t *fo);

/** Let go of the flight after mirror_unfollow: the last one out (fetch or follower) frees it. */
void mirror_follower_dispose(mirror_follower_t *fo);

#endif
