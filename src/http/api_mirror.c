/*
 * Pull-through mirroring, the HTTP side: the handlers of mirrored repositories, and the requests that follow a
 * fetch of mirror/fetch.h (the engine: single flight, verifying, storing) and stream it to their clients.
 *
 * A manifest request waits for its flight to end, then answers from the database; a blob request streams the bytes
 * from the file the fetch is writing, as they arrive, and ends the response only once the digest is verified.
 *
 * Threads: followers live on their request's loop; the engine wakes a follower that caught up (on the fetch
 * thread, under its lock) and the wake-up reaches the loop as a message (thread_ctx_t.mirror_wake).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "http/api.h"
#include "http/work.h"
#include "mirror/fetch.h"
#include "mirror/mirror.h"
#include "mirror/pulled.h"
#include "mirror/route.h"
#include "mirror/tags.h"
#include "oci/name.h"
#include "util/log.h"
#include "util/status.h"

#define CHUNK (256 * 1024)
#define TAG_LISTS_BUDGET (32u << 20) /* the upstreams' tag lists kept (mirror/tags.h), in all */

typedef struct {
    h2o_generator_t super;
    mirror_follower_t mf;
    h2o_multithread_message_t msg;
    h2o_multithread_receiver_t *rx; /* the loop of the request */
    route_t *r;
    h2o_req_t *req; /* NULL once the request is gone */
    int started, sending, answered;
    uint64_t off;
    char *buf;
} follower_t;

/* this loop's receiver of the engine's wake-ups (registered by on_loop_init) */
static __thread h2o_multithread_receiver_t wake_rx;

static void follower_pump(follower_t *fo);

/* ---- running fetches on the fetch pool ---- */

typedef struct {
    work_t super;
    void (*fn)(void *arg);
    void *arg;
} fetch_job_t;

static void fetch_job_run(work_t *w)
{
    fetch_job_t *job = (fetch_job_t *)w;
    void (*fn)(void *) = job->fn;
    void *arg = job->arg;
    free(job); /* a detached job is its run's to free */
    fn(arg);
}

static void spawn_fetch(void (*fn)(void *arg), void *arg)
{
    fetch_job_t *job = malloc(sizeof(*job));
    job->fn = fn;
    job->arg = arg;
    work_detached(WORK_FETCH, &job->super, fetch_job_run);
}

/* A pull's record (mirror/pulled.h): a short database write, on the I/O pool. */
static void spawn_record(void (*fn)(void *arg), void *arg)
{
    fetch_job_t *job = malloc(sizeof(*job));
    job->fn = fn;
    job->arg = arg;
    work_detached(WORK_IO, &job->super, fetch_job_run);
}

static void on_server_start(void)
{
    mirror_fetch_env_t env = {
        .blobs = &berth.store->blobs,
        .storage_root = berth.cfg.storage_root,
        .writer = berth.store->writer,
        .manifest_max_size = berth.cfg.storage_manifest_max_size,
        .blob_max_size = berth.cfg.http_max_body_size,
        .spawn = spawn_fetch,
    };
    mirror_fetch_init(&env);
    mirror_tags_init(NULL, TAG_LISTS_BUDGET);
    mirror_pulled_init(berth.store->writer, spawn_record);
}

static void on_server_stop(void)
{
    mirror_pulled_init(NULL, NULL);
    mirror_fetch_stop();
    mirror_tags_stop();
}

/* ---- followers (on the request's loop) ---- */

static void follower_free(follower_t *fo)
{
    mirror_follower_dispose(&fo->mf);
    free(fo->buf);
    free(fo);
}

/* The request is gone: leave the flight; if a wake-up is on its way, its handler frees us. */
static void follower_dispose(void *p)
{
    follower_t *fo = *(follower_t **)p;
    fo->req = NULL;
    if (!mirror_unfollow(&fo->mf))
        follower_free(fo);
}

/* The engine's wake-up, on the fetch thread: on to the request's loop. */
static void on_progress(mirror_follower_t *mf)
{
    follower_t *fo = H2O_STRUCT_FROM_MEMBER(follower_t, mf, mf);
    h2o_multithread_send_message(fo->rx, &fo->msg);
}

static void follower_error(follower_t *fo, const mirror_fetch_progress_t *p)
{
    h2o_req_t *req = fo->req;
    fo->answered = 1;
    if (p->retry_after[0] != '\0')
        res_header(req, "retry-after", p->retry_after);
    res_error(req, p->err, p->message,
              json_pack("{s:s,s:s}", "upstream", p->what->m->cfg->upstream, p->what->is_blob ? "digest" : "reference",
                        p->what->ref));
}

static void on_proceed(h2o_generator_t *self, h2o_req_t *req)
{
    follower_t *fo = (follower_t *)self;
    fo->sending = 0;
    follower_pump(fo);
}

static void on_stop(h2o_generator_t *self, h2o_req_t *req)
{
    ((follower_t *)self)->answered = 1;
}

/* Begin the answer: a manifest's from the database, a blob's headers. 0 to go on with the blob's bytes, else -1. */
static int follower_start(follower_t *fo, const mirror_fetch_progress_t *p)
{
    h2o_req_t *req = fo->req;
    if (p->state == MIRROR_FETCH_FAIL) {
        follower_error(fo, p);
        return -1;
    }
    if (!p->what->is_blob) { /* the manifest is in the database now (or was, stale) */
        fo->answered = 1;
        api_manifest_get(fo->r);
        return -1;
    }
    fo->started = 1;
    req->res.status = 200;
    req->res.reason = "OK";
    if (p->size != UINT64_MAX)
        req->res.content_length = p->size;
    res_header(req, "docker-content-digest", p->what->digest.str);
    res_headerf(req, "etag", "\"%s\"", p->what->digest.str);
    h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, H2O_STRLIT("application/octet-stream"), 1);
    fo->super.proceed = on_proceed;
    fo->super.stop = on_stop;
    h2o_start_response(req, &fo->super);
    if (method_is(req, "HEAD")) {
        fo->answered = 1;
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return -1;
    }
    return 0;
}

/* Move the response along as far as the flight allows; if it must wait, the engine wakes us. */
static void follower_pump(follower_t *fo)
{
    h2o_req_t *req = fo->req;
    if (fo->answered || fo->sending)
        return;
    mirror_fetch_progress_t p;
    mirror_follower_poll(&fo->mf, fo->off, &p);
    if (p.state == MIRROR_FETCH_WAIT)
        return;
    if (!fo->started && follower_start(fo, &p) != 0)
        return;
    if (fo->off < p.have) {
        size_t want = p.have - fo->off > CHUNK ? CHUNK : (size_t)(p.have - fo->off);
        ssize_t n;
        if (fo->buf == NULL)
            fo->buf = malloc(CHUNK);
        while ((n = pread(p.fd, fo->buf, want, (off_t)fo->off)) < 0 && errno == EINTR)
            ;
        if (n <= 0) {
            log_error("mirror: cannot read the blob being fetched: %s", n < 0 ? strerror(errno) : "short file");
            fo->answered = 1;
            h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
            return;
        }
        fo->off += (uint64_t)n;
        int final = p.state == MIRROR_FETCH_DONE && fo->off == p.have;
        h2o_iovec_t v = h2o_iovec_init(fo->buf, (size_t)n);
        fo->sending = !final;
        fo->answered = final;
        h2o_send(req, &v, 1, final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
        return;
    }
    if (p.state == MIRROR_FETCH_DONE || p.state == MIRROR_FETCH_FAIL) {
        /* all sent and verified: end it; or the fetch failed after the response began: the client sees a reset */
        fo->answered = 1;
        h2o_send(req, NULL, 0, p.state == MIRROR_FETCH_DONE ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_ERROR);
    }
}

static void on_wake(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        follower_t *fo = H2O_STRUCT_FROM_MEMBER(follower_t, msg.link, messages->next);
        h2o_linklist_unlink(&fo->msg.link);
        mirror_follower_woken(&fo->mf);
        if (fo->req == NULL) /* gone meanwhile: follower_dispose (on this loop) left the freeing to us */
            follower_free(fo);
        else
            follower_pump(fo);
    }
}

/* Follow the flight for (kind, local name, ref), starting it if there is none. */
static void follow(route_t *r, int is_blob, const digest_t *d, int by_tag, const metastore_manifest_t *cached)
{
    h2o_req_t *req = r->req;
    mirror_fetch_what_t what = {r->mirror, r->name, r->upstream_name, r->ref, is_blob, by_tag};
    if (d != NULL)
        what.digest = *d;
    if (cached != NULL) {
        what.cached = 1;
        what.cached_digest = cached->digest;
    }
    follower_t *fo = calloc(1, sizeof(*fo));
    fo->mf.wake = on_progress;
    fo->rx = &wake_rx;
    fo->r = r;
    fo->req = req;
    int started = mirror_follow(&fo->mf, &what);
    if (started < 0) {
        free(fo);
        res_error(req, ERR_INTERNAL, NULL, NULL);
        return;
    }
    follower_t **slot = h2o_mem_alloc_shared(&req->pool, sizeof(*slot), follower_dispose);
    *slot = fo;
    if (!started)
        follower_pump(fo); /* a blob already arriving: start at once */
}

/* ---- the handlers ---- */

void api_mirror_manifest_get(route_t *r)
{
    digest_t d;
    reference_t kind = reference_parse(r->ref, strlen(r->ref), &d);
    if (kind == REFERENCE_ETAG) {
        res_error(r->req, ERR_MANIFEST_UNKNOWN, "invalid tag", json_pack("{s:s}", "tag", r->ref));
        return;
    }
    if (kind == REFERENCE_EDIGEST || kind == REFERENCE_EUNSUPPORTED) {
        api_digest_refuse(r->req, kind == REFERENCE_EUNSUPPORTED ? DIGEST_EUNSUPPORTED : DIGEST_EMALFORMED, r->ref);
        return;
    }
    int by_tag = kind == REFERENCE_TAG;
    metastore_manifest_t mf;
    int rc = metastore_manifest_get(r->tc->db, r->name, by_tag ? r->ref : NULL, &d, &mf);
    if (rc == BERTH_ERROR) {
        res_error(r->req, ERR_INTERNAL, NULL, NULL);
        return;
    }
    if (rc == 0) {
        int fresh = !by_tag || (uint64_t)(time(NULL) - mf.checked_at) * 1000 < r->mirror->cfg->tag_ttl_ms;
        if (fresh) {
            api_manifest_send(r, &mf);
            return;
        }
    }
    follow(r, 0, by_tag ? NULL : &d, by_tag, rc == 0 ? &mf : NULL);
    if (rc == 0)
        metastore_manifest_dispose(&mf);
}

void api_mirror_blob_get(route_t *r)
{
    digest_t d;
    uint64_t size;
    if (api_digest_arg(r->req, r->ref, &d) != 0)
        return;
    int rc = metastore_blob_get(r->tc->db, r->name, &d, &size);
    if (rc == 0) {
        api_blob_send(r, &d, size);
        return;
    }
    if (rc != BERTH_ENOTFOUND) {
        res_error(r->req, ERR_INTERNAL, NULL, NULL);
        return;
    }
    if (method_is(r->req, "HEAD") && *r->mirror->cfg->prefix == '\0' &&
        metastore_repo_origin(r->tc->db, r->name) == BERTH_ENOTFOUND) {
        /* Under the mirror of every name, a name not here yet may be about to be pushed: clients HEAD each blob
         * before they upload it. Fetching here would turn the name into a mirrored repository and refuse the push
         * (and download what the client is about to send). A pull asks with GET, or for a manifest first. */
        res_error(r->req, ERR_BLOB_UNKNOWN, NULL, json_pack("{s:s}", "digest", d.str));
        return;
    }
    follow(r, 1, &d, 0, NULL);
}

/* Which mirror, if any, serves this request's repository; see api.h. */
/* A push to mirrored repository r->name (r->mirror's), from a caller allowed to push there. */
static void refuse_push(route_t *r)
{
    char msg[512];
    snprintf(msg, sizeof(msg), "%s mirrors %s: pushes to it are not accepted", r->name, r->mirror->cfg->upstream);
    res_error(r->req, ERR_DENIED, msg, json_pack("{s:s}", "name", r->name));
}

/* ?ns= names a registry no mirror here serves, and r->name is a mirrored copy. */
static void refuse_ns(route_t *r)
{
    const char *ns = req_query(r->req, "ns", 0);
    res_error(r->req, ERR_NAME_UNKNOWN, "no mirror here serves that registry",
              json_pack("{s:s,s:s}", "name", r->name, "ns", ns != NULL ? ns : ""));
}

int api_mirror_route(route_t *r, void (**refuse)(route_t *r))
{
    if (nmirrors == 0)
        return 0;
    h2o_req_t *req = r->req;
    const char *ns = req_query(req, "ns", 0);
    mirror_route_t *rt = h2o_mem_alloc_pool(&req->pool, sizeof(*rt)); /* r->name and r->upstream_name point into it */
    switch (mirror_route(r->tc->db, r->name, ns, r->push, rt)) {
    case MIRROR_ROUTE_HOSTED:
        if (rt->local[0] != '\0')
            r->name = rt->local;
        return 0;
    case MIRROR_ROUTE_MIRRORED:
        r->mirror = rt->m;
        r->name = rt->local;
        r->upstream_name = rt->up;
        return 0;
    case MIRROR_ROUTE_DENY_PUSH:
        r->mirror = rt->m;
        r->name = rt->local;
        *refuse = refuse_push;
        return 1;
    case MIRROR_ROUTE_NO_MIRROR:
        *refuse = refuse_ns;
        return 1;
    case MIRROR_ROUTE_ERROR:
        break;
    }
    res_error(req, ERR_INTERNAL, NULL, NULL);
    return -1;
}

static void on_loop_init(thread_ctx_t *tc)
{
    h2o_multithread_register_receiver(tc->ctx.queue, &wake_rx, on_wake);
}

const server_hooks_t api_mirror_hooks = {.start = on_server_start, .loop_init = on_loop_init, .stop = on_server_stop};
