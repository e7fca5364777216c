/*
 * Pull-through mirroring (mirror/mirror.h picks the upstream): a manifest or blob a mirrored repository lacks is
 * fetched from the upstream on a fetch thread, verified, stored and recorded as if it had been pushed.
 *
 * Single flight: one fetch per missing object. Every request for it (the first included) follows the fetch: a
 * manifest request waits for it to end, then answers from the database; a blob request streams the bytes from the
 * file the fetch is writing, as they arrive, and ends the response only once the digest is verified. A request
 * that goes away leaves the fetch running for the others and for the cache.
 *
 * Threads: followers live on their request's loop; the fetch thread wakes a follower that caught up by a message
 * to its loop (thread_ctx_t.mirror_wake). All flight and follower state shared between them is under `mu`.
 */
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "http/api.h"
#include "http/work.h"
#include "mirror/mirror.h"
#include "mirror/route.h"
#include "mirror/upstream.h"
#include "oci/manifest.h"
#include "oci/name.h"
#include "util/log.h"
#include "util/status.h"

#define CHUNK (256 * 1024)
#define ACCEPT_MANIFESTS MT_OCI_INDEX ", " MT_OCI_MANIFEST ", " MT_DOCKER_LIST ", " MT_DOCKER_MANIFEST

typedef enum { FL_WAIT, FL_BODY, FL_DONE, FL_FAIL } fl_state_t;

typedef struct follower follower_t;

typedef struct flight {
    work_t work; /* the fetch job */
    struct flight *next;
    char *key;
    const mirror_t *m;
    char *local, *up, *ref; /* berth's and the upstream's repository names; the tag or digest */
    int is_blob, by_tag;
    digest_t digest;        /* the blob, or the manifest asked for by digest */
    int cached;             /* a manifest by tag: a copy is here (stale), pointing at `cached_digest` */
    digest_t cached_digest;
    /* under mu */
    fl_state_t state;
    uint64_t size, have; /* a blob: its size (UINT64_MAX until known), the bytes in `fd` so far */
    int fd;
    err_code_t err;
    char errmsg[256], retry_after[32];
    follower_t *followers;
    unsigned refs; /* the fetch, and each follower */
} flight_t;

struct follower {
    h2o_generator_t super;
    h2o_multithread_message_t msg;
    h2o_multithread_receiver_t *rx; /* the loop of the request */
    follower_t *next;
    flight_t *f;
    route_t *r;
    h2o_req_t *req; /* NULL once the request is gone */
    int queued;     /* msg is on its way to the loop */
    int waiting;    /* caught up: wake me on progress */
    int started, sending, answered;
    uint64_t off;
    char *buf;
};

static void follower_pump(follower_t *fo);

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static flight_t *flights;
static volatile int stopping;

/* ---- flights ---- */

static void flight_unref_locked(flight_t *f)
{
    if (--f->refs != 0)
        return;
    if (f->fd >= 0)
        close(f->fd);
    free(f->key);
    free(f->local);
    free(f->up);
    free(f->ref);
    free(f);
}

/* Wake the followers that wait for progress (under mu). */
static void wake_locked(flight_t *f)
{
    for (follower_t *fo = f->followers; fo != NULL; fo = fo->next) {
        if (fo->waiting && !fo->queued) {
            fo->waiting = 0;
            fo->queued = 1;
            h2o_multithread_send_message(fo->rx, &fo->msg);
        }
    }
}

/* The fetch ended: record the outcome, take the flight out of the table (later requests find the store), wake all. */
static void flight_end(flight_t *f, fl_state_t state)
{
    pthread_mutex_lock(&mu);
    f->state = state;
    for (flight_t **p = &flights; *p != NULL; p = &(*p)->next) {
        if (*p == f) {
            *p = f->next;
            break;
        }
    }
    for (follower_t *fo = f->followers; fo != NULL; fo = fo->next)
        fo->waiting = 1;
    wake_locked(f);
    flight_unref_locked(f);
    pthread_mutex_unlock(&mu);
}

static void flight_fail(flight_t *f, err_code_t err, const char *retry_after, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void flight_fail(flight_t *f, err_code_t err, const char *retry_after, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->errmsg, sizeof(f->errmsg), fmt, ap);
    va_end(ap);
    f->err = err;
    snprintf(f->retry_after, sizeof(f->retry_after), "%s", retry_after ? retry_after : "");
    if (err != ERR_MANIFEST_UNKNOWN && err != ERR_BLOB_UNKNOWN)
        __atomic_add_fetch((uint64_t *)&f->m->errors, 1, __ATOMIC_RELAXED);
    flight_end(f, FL_FAIL);
}

/* What the upstream did, for the log: "status 503: <body>" or "no answer: <why>". */
static const char *describe(const upstream_resp_t *resp, char *buf, size_t len)
{
    if (resp->status != 0)
        snprintf(buf, len, "status %ld%s%s", resp->status, resp->error[0] ? ": " : "", resp->error);
    else
        snprintf(buf, len, "no answer: %s", resp->error);
    return buf;
}

/* An upstream answer that is not the object: the error a client sees. */
static void fail_from_upstream(flight_t *f, const upstream_resp_t *resp)
{
    const char *what = f->is_blob ? "blob" : "manifest";
    if (resp->status == 404 || resp->status == 401 || resp->status == 403) {
        /* Docker Hub answers 401 for a repository that does not exist */
        flight_fail(f, f->is_blob ? ERR_BLOB_UNKNOWN : ERR_MANIFEST_UNKNOWN, NULL, "the upstream registry has no %s %s in %s", what,
                    f->ref, f->up);
    } else if (resp->status == 429) {
        log_warn("mirror %s: 429 for %s %s@%s", f->m->cfg->upstream, what, f->up, f->ref);
        flight_fail(f, ERR_TOOMANYREQUESTS, resp->retry_after, "the upstream registry limits requests; try again later");
    } else {
        char why[320];
        log_warn("mirror %s: cannot fetch %s %s@%s: %s", f->m->cfg->upstream, what, f->up, f->ref, describe(resp, why, sizeof(why)));
        flight_fail(f, ERR_UNAVAILABLE, resp->retry_after, "the upstream registry is unavailable");
    }
}

/* ---- fetching manifests ---- */

typedef struct {
    char *buf;
    size_t len, max;
} body_t;

static int body_data(void *ctx, const void *p, size_t n)
{
    body_t *b = ctx;
    if (stopping || b->len + n > b->max)
        return -1;
    if (b->buf == NULL && (b->buf = malloc(b->max)) == NULL)
        return -1;
    memcpy(b->buf + b->len, p, n);
    b->len += n;
    return 0;
}

typedef struct {
    flight_t *f;
    const digest_t *d;
    const manifest_t *mf;
    const body_t *body;
    time_t now;
} store_manifest_t;

static int store_manifest(metastore_t *m, void *arg)
{
    store_manifest_t *s = arg;
    return metastore_mirror_manifest_put(m, s->f->local, s->d, s->mf, s->body->buf, s->body->len, s->f->by_tag ? s->f->ref : NULL,
                                         s->now);
}

typedef struct {
    flight_t *f;
    time_t now;
} tag_op_t;

static int tag_checked(metastore_t *m, void *arg)
{
    tag_op_t *t = arg;
    return metastore_tag_checked(m, t->f->local, t->f->ref, t->now);
}

static int tag_gone(metastore_t *m, void *arg)
{
    tag_op_t *t = arg;
    return metastore_tag_delete(m, t->f->local, t->f->ref);
}

/* The upstream failed while a copy is here: serve the copy. */
static void serve_stale(flight_t *f, const upstream_resp_t *resp)
{
    __atomic_add_fetch((uint64_t *)&f->m->stale, 1, __ATOMIC_RELAXED);
    char why[320];
    log_warn("mirror %s: serving the cached %s:%s, the upstream failed (%s)", f->m->cfg->upstream, f->local, f->ref,
             describe(resp, why, sizeof(why)));
    flight_end(f, FL_DONE);
}

static void fetch_manifest(flight_t *f)
{
    upstream_resp_t resp;
    const char *ref = f->ref;
    time_t now = time(NULL);

    if (f->cached) {
        /* revalidate: a HEAD does not count against Docker Hub's pull limit */
        int rc = upstream_fetch(f->m->up, "HEAD", f->up, "manifests", f->ref, ACCEPT_MANIFESTS, 1, NULL, &resp);
        digest_t d;
        if (rc == 0 && resp.status / 100 == 2 && digest_parse(&d, resp.digest, strlen(resp.digest)) == DIGEST_OK &&
            digest_equal(&d, &f->cached_digest)) {
            tag_op_t t = {f, now};
            metastore_write(berth.writer, tag_checked, &t);
            flight_end(f, FL_DONE);
            return;
        }
        if (rc == 0 && resp.status == 404) {
            tag_op_t t = {f, now};
            log_info("mirror %s: tag %s:%s is gone upstream", f->m->cfg->upstream, f->up, f->ref);
            metastore_write(berth.writer, tag_gone, &t);
            flight_fail(f, ERR_MANIFEST_UNKNOWN, NULL, "the upstream registry no longer has %s:%s", f->up, f->ref);
            return;
        }
        if (rc != 0 || resp.status / 100 != 2) {
            serve_stale(f, &resp);
            return;
        }
        /* the tag moved (or the upstream sends no digest on HEAD): fetch it */
        __atomic_add_fetch((uint64_t *)&f->m->fetches, 1, __ATOMIC_RELAXED);
    }

    body_t body = {NULL, 0, berth.cfg.storage_manifest_max_size};
    upstream_sink_t sink = {NULL, body_data, &body};
    int rc = upstream_fetch(f->m->up, "GET", f->up, "manifests", ref, ACCEPT_MANIFESTS, 1, &sink, &resp);
    if (rc != 0 || resp.status != 200) {
        free(body.buf);
        if (f->cached && resp.status != 404)
            serve_stale(f, &resp);
        else if (rc != 0 && resp.status == 200)
            flight_fail(f, ERR_UNAVAILABLE, NULL, "the upstream registry sent a manifest over %llu bytes, or stopped",
                        (unsigned long long)body.max);
        else
            fail_from_upstream(f, &resp);
        return;
    }
    digest_t d, claimed;
    digest_compute(&d, f->by_tag ? DIGEST_SHA256 : f->digest.algo, body.buf ? body.buf : "", body.len);
    int has_claim = digest_parse(&claimed, resp.digest, strlen(resp.digest)) == DIGEST_OK && claimed.algo == d.algo;
    if ((!f->by_tag && !digest_equal(&d, &f->digest)) || (has_claim && !digest_equal(&d, &claimed))) {
        log_error("mirror %s: manifest %s@%s: the upstream sent content of digest %s", f->m->cfg->upstream, f->up, ref, d.str);
        free(body.buf);
        flight_fail(f, ERR_UNAVAILABLE, NULL, "the upstream registry sent a manifest that does not match its digest");
        return;
    }
    manifest_t *mf;
    char err[256];
    /* the upstream's Content-Type may carry parameters ("; charset=utf-8"): the media type is what precedes them */
    size_t ctlen = strcspn(resp.content_type, ";");
    while (ctlen > 0 && resp.content_type[ctlen - 1] == ' ')
        --ctlen;
    if (manifest_parse(&mf, resp.content_type, ctlen, body.buf ? body.buf : "", body.len, err, sizeof(err)) != MANIFEST_OK) {
        log_error("mirror %s: manifest %s@%s is not one berth stores: %s", f->m->cfg->upstream, f->up, ref, err);
        free(body.buf);
        flight_fail(f, ERR_UNAVAILABLE, NULL, "the upstream registry sent a manifest berth cannot store: %s", err);
        return;
    }
    store_manifest_t s = {f, &d, mf, &body, now};
    rc = metastore_write(berth.writer, store_manifest, &s);
    manifest_free(mf);
    free(body.buf);
    if (rc != 0) {
        flight_fail(f, ERR_INTERNAL, NULL, "cannot store the manifest");
        return;
    }
    flight_end(f, FL_DONE);
}

/* ---- fetching blobs ---- */

typedef struct {
    flight_t *f;
    char tmp[BLOBSTORE_PATH_MAX];
    digest_hasher_t *h;
    uint64_t limit;
    int failed;
} blob_sink_t;

static int blob_start(void *ctx, const upstream_resp_t *resp)
{
    blob_sink_t *b = ctx;
    flight_t *f = b->f;
    if (resp->length > 0 && (uint64_t)resp->length > b->limit)
        return -1;
    snprintf(b->tmp, sizeof(b->tmp), "%s/tmp/mirror.XXXXXX", berth.cfg.storage_root);
    int fd = mkstemp(b->tmp);
    if (fd < 0) {
        log_error("mirror: cannot create %s: %s", b->tmp, strerror(errno));
        b->tmp[0] = '\0';
        return -1;
    }
    pthread_mutex_lock(&mu);
    f->fd = fd;
    f->size = resp->length >= 0 ? (uint64_t)resp->length : UINT64_MAX;
    f->state = FL_BODY;
    for (follower_t *fo = f->followers; fo != NULL; fo = fo->next)
        fo->waiting = 1; /* everyone may start the response now */
    wake_locked(f);
    pthread_mutex_unlock(&mu);
    return 0;
}

static int blob_data(void *ctx, const void *p, size_t n)
{
    blob_sink_t *b = ctx;
    flight_t *f = b->f;
    if (stopping || f->have + n > b->limit || (f->size != UINT64_MAX && f->have + n > f->size))
        return -1;
    for (size_t done = 0; done < n;) {
        ssize_t w = write(f->fd, (const char *)p + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            log_error("mirror: cannot write %s: %s", b->tmp, strerror(errno));
            b->failed = 1;
            return -1;
        }
        done += (size_t)w;
    }
    digest_hasher_update(b->h, p, n);
    pthread_mutex_lock(&mu);
    f->have += n;
    wake_locked(f);
    pthread_mutex_unlock(&mu);
    return 0;
}

typedef struct {
    flight_t *f;
    uint64_t size;
} link_t;

static int link_blob(metastore_t *m, void *arg)
{
    link_t *l = arg;
    return metastore_mirror_blob_link(m, l->f->local, &l->f->digest, l->size);
}

/* The blob's file is already here (another repository has it): the upstream need only confirm this repository has it. */
static void confirm_blob(flight_t *f, int fd, uint64_t size)
{
    upstream_resp_t resp;
    if (upstream_fetch(f->m->up, "HEAD", f->up, "blobs", f->ref, NULL, 1, NULL, &resp) != 0 || resp.status / 100 != 2) {
        close(fd);
        fail_from_upstream(f, &resp);
        return;
    }
    link_t l = {f, size};
    if (metastore_write(berth.writer, link_blob, &l) != 0) {
        close(fd);
        flight_fail(f, ERR_INTERNAL, NULL, "cannot record the blob");
        return;
    }
    pthread_mutex_lock(&mu);
    f->fd = fd;
    f->size = f->have = size;
    pthread_mutex_unlock(&mu);
    flight_end(f, FL_DONE);
}

static void fetch_blob(flight_t *f)
{
    uint64_t size;
    int fd = blobstore_open(&berth.blobs, &f->digest, &size);
    if (fd >= 0) {
        confirm_blob(f, fd, size);
        return;
    }
    blob_sink_t b = {f, "", digest_hasher_new(f->digest.algo), berth.cfg.http_max_body_size, 0};
    upstream_sink_t sink = {blob_start, blob_data, &b};
    upstream_resp_t resp;
    int rc = upstream_fetch(f->m->up, "GET", f->up, "blobs", f->ref, NULL, 0, &sink, &resp);
    digest_t got;
    digest_hasher_final(b.h, &got);
    digest_hasher_free(b.h);
    if (rc != 0 || resp.status != 200) {
        if (b.tmp[0] != '\0')
            unlink(b.tmp);
        if (resp.status == 200 || b.failed)
            flight_fail(f, ERR_UNAVAILABLE, NULL, "the upstream registry stopped sending the blob");
        else
            fail_from_upstream(f, &resp);
        return;
    }
    if (b.tmp[0] == '\0') { /* a 200 without a body: start was never called */
        flight_fail(f, ERR_UNAVAILABLE, NULL, "the upstream registry sent an empty answer");
        return;
    }
    link_t l = {f, f->have};
    if (!digest_equal(&got, &f->digest) || (f->size != UINT64_MAX && f->have != f->size)) {
        log_error("mirror %s: blob %s@%s: the upstream sent %llu bytes of digest %s", f->m->cfg->upstream, f->up, f->ref,
                  (unsigned long long)f->have, got.str);
        unlink(b.tmp);
        flight_fail(f, ERR_UNAVAILABLE, NULL, "the upstream registry sent a blob that does not match its digest");
        return;
    }
    if (fsync(f->fd) != 0 || blobstore_commit(&berth.blobs, b.tmp, &f->digest) != 0 ||
        metastore_write(berth.writer, link_blob, &l) != 0) {
        log_error("mirror: cannot store blob %s: %s", f->digest.str, strerror(errno));
        unlink(b.tmp);
        flight_fail(f, ERR_INTERNAL, NULL, "cannot store the blob");
        return;
    }
    pthread_mutex_lock(&mu);
    f->size = f->have;
    pthread_mutex_unlock(&mu);
    flight_end(f, FL_DONE);
}

static void fetch_run(work_t *w)
{
    flight_t *f = (flight_t *)w;
    if (f->is_blob) {
        __atomic_add_fetch((uint64_t *)&f->m->fetches, 1, __ATOMIC_RELAXED);
        fetch_blob(f);
    } else {
        if (!f->cached)
            __atomic_add_fetch((uint64_t *)&f->m->fetches, 1, __ATOMIC_RELAXED);
        fetch_manifest(f);
    }
}

/* ---- followers (on the request's loop) ---- */

static void follower_free(follower_t *fo)
{
    pthread_mutex_lock(&mu);
    flight_unref_locked(fo->f);
    pthread_mutex_unlock(&mu);
    free(fo->buf);
    free(fo);
}

/* The request is gone: leave the flight; if a wake-up is on its way, its handler frees us. */
static void follower_dispose(void *p)
{
    follower_t *fo = *(follower_t **)p;
    pthread_mutex_lock(&mu);
    for (follower_t **q = &fo->f->followers; *q != NULL; q = &(*q)->next) {
        if (*q == fo) {
            *q = fo->next;
            break;
        }
    }
    fo->req = NULL;
    int queued = fo->queued;
    pthread_mutex_unlock(&mu);
    if (!queued)
        follower_free(fo);
}

static void follower_error(follower_t *fo, flight_t *f)
{
    h2o_req_t *req = fo->req;
    fo->answered = 1;
    if (f->retry_after[0] != '\0')
        res_header(req, "retry-after", f->retry_after);
    res_error(req, f->err, f->errmsg[0] ? f->errmsg : NULL,
              json_pack("{s:s,s:s}", "upstream", f->m->cfg->upstream, f->is_blob ? "digest" : "reference", f->ref));
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

/* Move the response along as far as the flight allows; if it must wait, ask to be woken. */
static void follower_pump(follower_t *fo)
{
    flight_t *f = fo->f;
    h2o_req_t *req = fo->req;
    if (fo->answered || fo->sending)
        return;
    pthread_mutex_lock(&mu);
    fl_state_t state = f->state;
    uint64_t have = f->have, size = f->size;
    if (state == FL_WAIT || (state == FL_BODY && fo->off >= have))
        fo->waiting = 1;
    pthread_mutex_unlock(&mu);

    if (state == FL_WAIT)
        return;
    if (!fo->started) {
        if (state == FL_FAIL) {
            follower_error(fo, f);
            return;
        }
        if (!f->is_blob) { /* the manifest is in the database now (or was, stale) */
            fo->answered = 1;
            api_manifest_get(fo->r);
            return;
        }
        fo->started = 1;
        req->res.status = 200;
        req->res.reason = "OK";
        if (size != UINT64_MAX)
            req->res.content_length = size;
        res_header(req, "docker-content-digest", f->digest.str);
        res_headerf(req, "etag", "\"%s\"", f->digest.str);
        h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, H2O_STRLIT("application/octet-stream"), 1);
        fo->super.proceed = on_proceed;
        fo->super.stop = on_stop;
        h2o_start_response(req, &fo->super);
        if (method_is(req, "HEAD")) {
            fo->answered = 1;
            h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
            return;
        }
    }
    if (fo->off < have) {
        size_t want = have - fo->off > CHUNK ? CHUNK : (size_t)(have - fo->off);
        ssize_t n;
        if (fo->buf == NULL)
            fo->buf = malloc(CHUNK);
        while ((n = pread(f->fd, fo->buf, want, (off_t)fo->off)) < 0 && errno == EINTR)
            ;
        if (n <= 0) {
            log_error("mirror: cannot read the blob being fetched: %s", n < 0 ? strerror(errno) : "short file");
            fo->answered = 1;
            h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
            return;
        }
        fo->off += (uint64_t)n;
        int final = state == FL_DONE && fo->off == have;
        h2o_iovec_t v = h2o_iovec_init(fo->buf, (size_t)n);
        fo->sending = !final;
        fo->answered = final;
        h2o_send(req, &v, 1, final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
        return;
    }
    if (state == FL_DONE || state == FL_FAIL) {
        /* all sent and verified: end it; or the fetch failed after the response began: the client sees a reset */
        fo->answered = 1;
        h2o_send(req, NULL, 0, state == FL_DONE ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_ERROR);
    }
}

void api_mirror_on_wake(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        follower_t *fo = H2O_STRUCT_FROM_MEMBER(follower_t, msg.link, messages->next);
        h2o_linklist_unlink(&fo->msg.link);
        pthread_mutex_lock(&mu);
        fo->queued = 0;
        int gone = fo->req == NULL;
        pthread_mutex_unlock(&mu);
        if (gone)
            follower_free(fo);
        else
            follower_pump(fo);
    }
}

/* Follow the flight for (kind, local name, ref), starting it if there is none. */
static void follow(route_t *r, int is_blob, const digest_t *d, int by_tag, const metastore_manifest_t *cached)
{
    h2o_req_t *req = r->req;
    char *key;
    if (asprintf(&key, "%c%s\n%s", is_blob ? 'b' : 'm', r->name, r->ref) < 0) {
        res_error(req, ERR_INTERNAL, NULL, NULL);
        return;
    }
    follower_t *fo = calloc(1, sizeof(*fo));
    fo->rx = &r->tc->mirror_wake;
    fo->r = r;
    fo->req = req;

    pthread_mutex_lock(&mu);
    flight_t *f = flights;
    while (f != NULL && strcmp(f->key, key) != 0)
        f = f->next;
    int start = f == NULL;
    if (start) {
        f = calloc(1, sizeof(*f));
        f->key = key;
        key = NULL;
        f->m = r->mirror;
        f->local = strdup(r->name);
        f->up = strdup(r->upstream_name);
        f->ref = strdup(r->ref);
        f->is_blob = is_blob;
        f->by_tag = by_tag;
        if (d != NULL)
            f->digest = *d;
        if (cached != NULL) {
            f->cached = 1;
            f->cached_digest = cached->digest;
        }
        f->fd = -1;
        f->size = UINT64_MAX;
        f->refs = 1;
        f->next = flights;
        flights = f;
    }
    fo->f = f;
    ++f->refs;
    fo->next = f->followers;
    f->followers = fo;
    fo->waiting = 1;
    pthread_mutex_unlock(&mu);
    free(key);

    follower_t **slot = h2o_mem_alloc_shared(&req->pool, sizeof(*slot), follower_dispose);
    *slot = fo;
    if (start)
        work_detached(WORK_FETCH, &f->work, fetch_run);
    else
        follower_pump(fo); /* a blob already arriving: start at once */
}

/* ---- the handlers ---- */

void api_mirror_manifest_get(route_t *r)
{
    digest_t d;
    int by_tag = memchr(r->ref, ':', strlen(r->ref)) == NULL;
    if (by_tag ? !tag_valid(r->ref, strlen(r->ref)) : api_digest_arg(r->req, r->ref, &d) != 0) {
        if (by_tag)
            res_error(r->req, ERR_MANIFEST_UNKNOWN, "invalid tag", json_pack("{s:s}", "tag", r->ref));
        return;
    }
    metastore_manifest_t mf;
    int rc = metastore_manifest_get(r->tc->db, r->name, by_tag ? r->ref : NULL, &d, &mf);
    if (rc == BERTH_ERROR) {
        res_error(r->req, ERR_INTERNAL, NULL, NULL);
        return;
    }
    if (rc == 0) {
        int fresh = !by_tag || (uint64_t)(time(NULL) - mf.checked_at) * 1000 < r->mirror->cfg->tag_ttl_ms;
        if (fresh) {
            metastore_manifest_dispose(&mf);
            api_manifest_get(r);
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
        api_blob_get(r);
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
int api_mirror_route(route_t *r, int push)
{
    if (nmirrors == 0)
        return 0;
    h2o_req_t *req = r->req;
    const char *ns = req_query(req, "ns", 0);
    mirror_route_t *rt = h2o_mem_alloc_pool(&req->pool, sizeof(*rt)); /* r->name and r->upstream_name point into it */
    switch (mirror_route(r->tc->db, r->name, ns, push, rt)) {
    case MIRROR_ROUTE_HOSTED:
        if (rt->local[0] != '\0')
            r->name = rt->local;
        return 0;
    case MIRROR_ROUTE_MIRRORED:
        r->mirror = rt->m;
        r->name = rt->local;
        r->upstream_name = rt->up;
        return 0;
    case MIRROR_ROUTE_DENY_PUSH: {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s mirrors %s: pushes to it are not accepted", rt->local, rt->m->cfg->upstream);
        res_error(req, ERR_DENIED, msg, json_pack("{s:s}", "name", rt->local));
        return -1;
    }
    case MIRROR_ROUTE_NO_MIRROR:
        res_error(req, ERR_NAME_UNKNOWN, "no mirror here serves that registry", json_pack("{s:s,s:s}", "name", r->name, "ns", ns));
        return -1;
    case MIRROR_ROUTE_ERROR:
        break;
    }
    res_error(req, ERR_INTERNAL, NULL, NULL);
    return -1;
}

void api_mirror_stop(void)
{
    stopping = 1;
}
