/*
 * The HTTP server: one h2o event loop per thread, each with its own SO_REUSEPORT listener and its own SQLite
 * read connection; optional TLS with ALPN h2; graceful shutdown on SIGTERM/SIGINT.
 */
#ifndef BERTH_HTTP_SERVER_H
#define BERTH_HTTP_SERVER_H

#include <h2o.h>
#include "store/blobstore.h"
#include "store/metastore.h"
#include "store/upload.h"
#include "config/config.h"

/** Process-wide state, set up by server_run. */
typedef struct {
    config_t cfg;
    char *db_path;
    blobstore_t blobs;
    uploads_t uploads;
    metastore_writer_t *writer;
    h2o_globalconf_t globalconf;
    SSL_CTX *ssl_ctx;
} berth_t;

extern berth_t berth;

/** Per event-loop state. `ctx` comes first so that a request's `conn->ctx` leads here. */
typedef struct {
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    metastore_t *db;                        /* this thread's read connection */
    struct auth_cache *auth;                /* caches of verified credentials (auth/principal.h) */
    h2o_multithread_receiver_t work_done;   /* results of worker jobs (work.h) */
    h2o_multithread_receiver_t mirror_wake; /* progress of mirror fetches (api_mirror.c) */
    h2o_multithread_receiver_t shutdown;    /* the main thread's "stop" */
    h2o_timeout_t zero_timeout;             /* runs a callback on the next turn of the loop */
    int listen_fd;
    h2o_socket_t *listener;
    unsigned max_conns;
    h2o_linklist_t socks;                   /* accepted sockets, to tell busy connections from idle ones at shutdown */
    size_t inflight;                        /* requests being handled (router.c) */
    int stopping;
    pthread_t thread;
} thread_ctx_t;

static inline thread_ctx_t *thread_ctx_of(h2o_req_t *req)
{
    return (thread_ctx_t *)req->conn->ctx;
}

/** Run the server with `cfg` (ownership passes to berth) until a signal stops it. Returns the exit status. */
int server_run(config_t *cfg);

#endif
