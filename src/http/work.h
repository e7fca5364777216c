/*
 * The worker pools: blocking work (fsync, rename, hashing files, SQLite writes) runs on worker threads and its
 * result comes back to the event loop that asked for it. The request may die meanwhile (a client reset):
 * `req` is then NULL when `done` runs, and `done` must only clean up.
 */
#ifndef BERTH_HTTP_WORK_H
#define BERTH_HTTP_WORK_H

#include <h2o.h>
#include "http/response.h"
#include "http/server.h"

typedef struct work work_t;
typedef void (*work_cb)(work_t *w);

struct work {
    h2o_multithread_message_t _msg;
    work_t **_slot; /* the request's pointer back to us, cleared when the request is disposed */
    work_t *_next;
    thread_ctx_t *tc;
    h2o_req_t *req;           /* NULL once the request is gone */
    work_cb run;              /* on a worker thread: must not touch req */
    work_cb done;             /* on the loop thread: answers (if req) and frees the work */
    char rid[REQ_ID_MAX + 1]; /* the request's id, for the lines logged by run and done ("" for none) */
};

/* I/O work (fsync, rename, database writes); CPU-heavy password checks; upstream fetches of the mirrors, which
 * may take minutes and so get threads of their own. */
typedef enum { WORK_IO = 0, WORK_CPU = 1, WORK_FETCH = 2 } work_kind_t;

/** Start `nthreads` I/O workers, `ncpu` workers for CPU-heavy jobs and `nfetch` for mirror fetches (0: none). */
void work_pool_start(unsigned nthreads, unsigned ncpu, unsigned nfetch);
void work_pool_stop(void);

/** Queue `w` (allocated by the caller, freed by its done callback) for `req` on the I/O pool. */
void work_submit(h2o_req_t *req, work_t *w, work_cb run, work_cb done);
/** The same, on the pool of `kind`. */
void work_submit_to(work_kind_t kind, h2o_req_t *req, work_t *w, work_cb run, work_cb done);

/** Run `run(w)` on the pool of `kind` for no request: nothing comes back to a loop, and `run` frees `w`. */
void work_detached(work_kind_t kind, work_t *w, work_cb run);

/** A database write as a worker job: `fn(m, w)` runs in the writer's next transaction, its result in `rc`. */
typedef struct {
    work_t super;
    metastore_write_fn fn;
    int rc;
} write_work_t;

/**
 * Queue `w` (the first member of the caller's struct, whose `fn` gets `w` as its argument); `done` runs on the loop.
 */
void work_write(h2o_req_t *req, write_work_t *w, metastore_write_fn fn, work_cb done);

/** The receiver callback each loop registers for work_done. */
void work_on_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);

#endif
