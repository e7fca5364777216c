/*
 * The HTTP server: one h2o event loop per thread, each with its own SO_REUSEPORT listener and its own read
 * connection to the store; the worker pools (http/work.h); optional TLS with ALPN h2; graceful shutdown on
 * SIGTERM/SIGINT. It names no handler: it hands every request to the router (http/router.h), and modules of the
 * HTTP layer that keep state per event loop register hooks (server_hooks_t), wired by main.c.
 */
#ifndef BERTH_HTTP_SERVER_H
#define BERTH_HTTP_SERVER_H

#include <stdatomic.h>
#include <h2o.h>
#include "config/config.h"
#include "store/store.h"

/** Process-wide state of the HTTP layer, set up by server_run for the handlers. */
typedef struct {
    config_t cfg;   /* a copy of server_run's (the strings are the caller's) */
    store_t *store; /* the caller's */
    h2o_globalconf_t globalconf;
    SSL_CTX *ssl_ctx;
    atomic_int terminating; /* SIGTERM came: /readyz answers 503 from now on, also during http.shutdown_delay */
} berth_t;

extern berth_t berth;

/** Per event-loop state. `ctx` comes first so that a request's `conn->ctx` leads here. */
typedef struct {
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    metastore_t *db;                      /* this thread's read connection */
    h2o_multithread_receiver_t work_done; /* results of worker jobs (work.h) */
    h2o_multithread_receiver_t shutdown;  /* the main thread's "stop" */
    h2o_timeout_t zero_timeout;           /* runs a callback on the next turn of the loop */
    int listen_fd;
    int spare_fd; /* a descriptor kept to shed connections with when out of them */
    h2o_socket_t *listener;
    size_t max_conns;
    size_t nconns;        /* connections open (http/conns.c) */
    h2o_linklist_t conns; /* and their records */
    size_t inflight;      /* requests being handled (router.c) */
    int stopping;
    pthread_t thread;
} thread_ctx_t;

static inline thread_ctx_t *thread_ctx_of(h2o_req_t *req)
{
    return (thread_ctx_t *)req->conn->ctx;
}

/** What a module of the HTTP layer does as the server starts and stops; any hook may be NULL. */
typedef struct {
    void (*start)(void);                    /* once, after the worker pools started, before the loops start */
    void (*loop_init)(thread_ctx_t *tc);    /* on each loop's thread, before it accepts connections */
    void (*loop_dispose)(thread_ctx_t *tc); /* on each loop's thread, after its last request */
    void (*stop)(void);                     /* once at shutdown, after the loops ended, before the workers stop */
} server_hooks_t;

/**
 * Block SIGTERM and SIGINT in the calling thread and every thread it starts from now on, so that server_run alone
 * takes them: call first, before any thread is started.
 */
void server_block_signals(void);

/**
 * Serve `store` with `cfg` (both must outlive the call) until SIGTERM or SIGINT, calling the `hooks` (a NULL-terminated
 * list) of the HTTP layer's modules. Returns the exit status.
 */
int server_run(const config_t *cfg, store_t *store, const server_hooks_t *const *hooks);

#endif
