/*
 * Copying a request body into an upload session, one slice per call, so that an event loop can copy a large
 * body between other work. The copy is the one cost berth adds to a push (bench/push-phases.sh), kept small
 * three ways:
 *   - each slice is written, then hashed, in pieces small enough that the hash reads them from the CPU cache;
 *   - the writeback of each slice starts at once (upload_writeback), so the disk works while the loop copies
 *     and the final fsync finds little left to write;
 *   - the whole pages of the body already copied are punched out (MADV_REMOVE). A large body lives in a shared
 *     mapping of an unlinked temp file (h2o spills it there), where this frees the page cache and the blocks
 *     and cancels their writeback: the body is not held twice in memory, never written to disk from the temp
 *     file, and the freed pages are reused, still warm, for the session file. On the heap it fails and changes
 *     nothing.
 * The body's memory stays the caller's: it must be alive during each call, and the bytes copied are destroyed.
 */
#ifndef BERTH_STORE_BODY_H
#define BERTH_STORE_BODY_H

#include <stddef.h>
#include <stdint.h>
#include "store/upload.h"

#define BODY_COPY_SLICE (4 * 1024 * 1024)      /* bytes copied per call */
#define BODY_COPY_PIECE (256 * 1024)           /* bytes written, then hashed while still in the CPU cache */
#define BODY_HASH_BEHIND_MIN (8 * 1024 * 1024) /* bodies from this size on may be hashed on a thread of their own */

typedef struct body_hash body_hash_t;

/* What body_copy_step returns, besides BERTH_ERROR. */
#define BODY_COPY_DONE 0
#define BODY_COPY_MORE 1

/** The progress of one body's copy: plain data, owned by the caller (nothing to free). */
typedef struct {
    uint64_t start;      /* the session's offset before this body: where an unfinished copy cuts the file back to */
    size_t done;         /* bytes of the body copied so far */
    size_t dropped;      /* bytes of the body whose whole pages were given back */
    size_t synced;       /* bytes of the body whose writeback was started (body_copy_feed) */
    body_hash_t *behind; /* the thread hashing what body_copy_feed wrote, or NULL (hashed as it is written) */
    double t_start;      /* when the copy began (monotonic seconds) */
    double seconds;      /* how long the copy took, once done (for the debug log) */
} body_copy_t;

/** Start the copy of a body into the busy session `up` at its current offset: fills `c`. */
void body_copy_init(body_copy_t *c, const upload_t *up);

/**
 * Copy and hash the next slice (BODY_COPY_SLICE bytes at most) of the `len` bytes at `body` into `up`, start its
 * writeback, and punch the whole pages of `body` copied so far out of their mapping. `body` and `len` are the
 * same at every call of one copy. Returns BODY_COPY_MORE (call again), BODY_COPY_DONE (c->seconds is set), or
 * BERTH_ERROR (logged, errno kept: the session is cut back to c->start). The session stays busy either way:
 * the caller releases it.
 */
int body_copy_step(body_copy_t *c, upload_t *up, void *body, size_t len);

/**
 * The other way to copy, for a body that arrives in pieces (http/stream.h): write and hash the `n` bytes at `p`,
 * starting the writeback of every BODY_COPY_SLICE bytes. 0, or BERTH_ERROR (logged, errno kept: the session is cut
 * back to c->start).
 */
int body_copy_feed(body_copy_t *c, upload_t *up, const char *p, size_t n);
/** The last piece was fed: start the writeback of the rest, and set c->seconds. */
void body_copy_end(body_copy_t *c, upload_t *up);

/**
 * Hash a fed body on a thread of its own, reading back from the session's file (the page cache) what
 * body_copy_feed wrote, so that the loop only receives and writes while the hash runs beside it. Call right after
 * body_copy_init. Does nothing if the session has no running hash or too many such threads run (the body is then
 * hashed as it is written). While the thread runs the session's hash is the thread's: body_copy_join gives it back.
 */
void body_copy_hash_behind(body_copy_t *c, upload_t *up);
/**
 * After body_copy_end: wait until the hashing thread hashed everything written, and end it. Blocking: call on a
 * worker. Without a thread, does nothing. If a read failed, the session's hash is dropped (upload_finish then
 * hashes the file).
 */
void body_copy_join(body_copy_t *c, upload_t *up);

/** Give up a copy before it is done (the body went away): end the hashing thread (waiting for at most one piece)
 * and cut the session back to where this body began. */
void body_copy_abandon(body_copy_t *c, upload_t *up);

#endif
