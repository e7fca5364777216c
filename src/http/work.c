/*
 * The worker pools (work.h): three, each a FIFO of jobs served by its own threads. I/O work (fsync, rename, database
 * writes); CPU-heavy password checks, so that a burst of logins (yescrypt: tens of ms and 16 MiB each) neither starves
 * uploads nor runs more hashes at once than there are cores; and the mirrors' upstream fetches, which may take
 * minutes and so must not hold up the other two. A request's job comes back to its loop as an h2o message
 * (work_on_done); until then the request's pool holds a pointer to the job that its disposal clears, so a job whose
 * request died first only cleans up. A detached job belongs to no request and nothing comes back.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "http/work.h"
#include "util/log.h"

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    work_t *head, **tail;
    int stopping;
    unsigned n;
    pthread_t *threads;
} pool_t;

static pool_t pools[3] = {{PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER},
                          {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER},
                          {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER}};

static void *worker_main(void *arg)
{
    pool_t *pool = arg;
    pthread_mutex_lock(&pool->mu);
    for (;;) {
        while (pool->head == NULL && !pool->stopping)
            pthread_cond_wait(&pool->cond, &pool->mu);
        if (pool->head == NULL)
            break;
        work_t *w = pool->head;
        if ((pool->head = w->_next) == NULL)
            pool->tail = &pool->head;
        pthread_mutex_unlock(&pool->mu);
        thread_ctx_t *tc = w->tc; /* NULL for a detached job, which may be freed by its run */
        if (tc != NULL)
            log_set_request(w->rid[0] != '\0' ? w->rid : NULL);
        w->run(w);
        if (tc != NULL) {
            log_set_request(NULL);
            h2o_multithread_send_message(&tc->work_done, &w->_msg);
        }
        pthread_mutex_lock(&pool->mu);
    }
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}

static void pool_start(pool_t *pool, unsigned nthreads)
{
    pool->tail = &pool->head;
    pool->n = nthreads;
    pool->threads = calloc(nthreads, sizeof(pthread_t));
    for (unsigned i = 0; i < nthreads; ++i)
        pthread_create(&pool->threads[i], NULL, worker_main, pool);
}

static void pool_stop(pool_t *pool)
{
    pthread_mutex_lock(&pool->mu);
    pool->stopping = 1;
    pthread_cond_broadcast(&pool->cond);
    pthread_mutex_unlock(&pool->mu);
    for (unsigned i = 0; i < pool->n; ++i)
        pthread_join(pool->threads[i], NULL);
    free(pool->threads);
}

void work_pool_start(unsigned nthreads, unsigned ncpu, unsigned nfetch)
{
    pool_start(&pools[WORK_IO], nthreads);
    pool_start(&pools[WORK_CPU], ncpu);
    pool_start(&pools[WORK_FETCH], nfetch);
}

void work_pool_stop(void)
{
    for (int i = 0; i < 3; ++i)
        pool_stop(&pools[i]);
}

static void enqueue(pool_t *pool, work_t *w)
{
    w->_next = NULL;
    pthread_mutex_lock(&pool->mu);
    *pool->tail = w;
    pool->tail = &w->_next;
    pthread_cond_signal(&pool->cond);
    pthread_mutex_unlock(&pool->mu);
}

void work_detached(work_kind_t kind, work_t *w, work_cb run)
{
    *w = (work_t){.run = run};
    enqueue(&pools[kind], w);
}

static void on_req_dispose(void *p)
{
    work_t *w = *(work_t **)p;
    if (w != NULL)
        w->req = NULL;
}

void work_submit_to(work_kind_t kind, h2o_req_t *req, work_t *w, work_cb run, work_cb done)
{
    pool_t *pool = &pools[kind];
    w->tc = thread_ctx_of(req);
    w->req = req;
    w->run = run;
    w->done = done;
    const char *id = req_id(req);
    snprintf(w->rid, sizeof(w->rid), "%s", id != NULL ? id : "");
    w->_msg = (h2o_multithread_message_t){{NULL, NULL}};
    w->_slot = h2o_mem_alloc_shared(&req->pool, sizeof(*w->_slot), on_req_dispose);
    *w->_slot = w;
    enqueue(pool, w);
}

void work_submit(h2o_req_t *req, work_t *w, work_cb run, work_cb done)
{
    work_submit_to(WORK_IO, req, w, run, done);
}

static void write_run(work_t *w)
{
    write_work_t *ww = (write_work_t *)w;
    ww->rc = metastore_write(berth.store->writer, ww->fn, ww);
}

void work_write(h2o_req_t *req, write_work_t *w, metastore_write_fn fn, work_cb done)
{
    w->fn = fn;
    work_submit(req, &w->super, write_run, done);
}

void work_on_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        work_t *w = H2O_STRUCT_FROM_MEMBER(work_t, _msg.link, messages->next);
        h2o_linklist_unlink(&w->_msg.link);
        if (w->req != NULL)
            *w->_slot = NULL;     /* the request lives on; detach so its disposal no longer reaches us */
        char rid[sizeof(w->rid)]; /* done frees w */
        memcpy(rid, w->rid, sizeof(rid));
        const char *prev = log_set_request(rid[0] != '\0' ? rid : NULL);
        w->done(w);
        log_set_request(prev);
    }
}
