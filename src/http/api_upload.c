/*
 * Blob uploads: POST starts a session (or, with ?digest=, uploads the whole blob at once), PATCH appends a
 * chunk, PUT ?digest= finishes, GET reports progress, DELETE cancels.
 *
 * On HTTP/1 berth reads an upload's body itself as it arrives (http/stream.h): each piece is hashed and written
 * into the session's file at once. Otherwise h2o hands over a request body only once it has arrived whole, in
 * memory or in an unlinked temp file that h2o owns and frees when the client goes away; it is then copied into the
 * session's file on the loop thread, a slice per turn of the loop (store/body.h: hashing as it goes, punching the
 * copied pages out of h2o's temp file). Either way the request's dispose hook stops the copy, and a stopped copy
 * cuts the file back to where the chunk began. Verification, fsync, rename and the database write run on a worker.
 */
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/time.h>
#include "http/api.h"
#include "http/gate.h"
#include "http/stream.h"
#include "http/work.h"
#include "oci/name.h"
#include "oci/range.h"
#include "store/body.h"
#include "util/log.h"
#include "util/status.h"
#include "util/time.h"

typedef struct copy copy_t;
typedef void (*copy_cb)(copy_t *c);

struct copy {
    stream_sink_t sink; /* a body read as it arrives (http/stream.h) */
    stream_t *stream;   /* while it arrives */
    int failed;         /* errno of a failed write: the rest of the body is thrown away, then the error answered */
    h2o_timeout_entry_t timer;
    h2o_req_t *req; /* NULL once the request is gone */
    copy_t **slot;
    upload_t *up;
    body_copy_t body;
    copy_cb then; /* called on success, with req alive */
    char *name;   /* the repository (malloc'd: outlives the request) */
    digest_t digest;
    double t_recv; /* seconds the body took to arrive (h2o's timestamps) */
};

typedef struct {
    work_t super;
    upload_t *up;
    char *name;
    digest_t digest;
    uint64_t size;
    int rc;
    quota_t quota;                                    /* when rc is OVER_QUOTA */
    int err;                                          /* errno of a failed upload_finish, or 0 */
    double t_recv, t_copy, queued_at, t_queued, t_db; /* phases in seconds, for the debug log */
    upload_phases_t phases;
    body_copy_t body; /* the copy, whose hashing thread (if any) the worker joins first */
} finish_t;

/* How long the body took to arrive, from its first byte (or the request's) to the handler. */
static double body_seconds(h2o_req_t *req)
{
    const struct timeval *b = &req->timestamps.request_body_begin_at;
    if (b->tv_sec == 0 && b->tv_usec == 0)
        b = &req->timestamps.request_begin_at;
    return (double)(req->processed_at.at.tv_sec - b->tv_sec) +
           (double)(req->processed_at.at.tv_usec - b->tv_usec) / 1e6;
}

static void set_upload_headers(h2o_req_t *req, const char *name, const char *uuid, uint64_t offset)
{
    res_headerf(req, "location", "/v2/%s/blobs/uploads/%s", name, uuid);
    res_header(req, "docker-upload-uuid", uuid);
    /* distribution's convention, which clients parse: "0-0" for an empty session */
    res_headerf(req, "range", "0-%llu", (unsigned long long)(offset ? offset - 1 : 0));
}

static void copy_free(copy_t *c)
{
    if (c->slot != NULL && c->req != NULL)
        *c->slot = NULL;
    free(c->name);
    free(c);
}

static void on_copy_req_dispose(void *p)
{
    copy_t *c = *(copy_t **)p;
    if (c == NULL)
        return;
    c->req = NULL;
    if (c->stream != NULL) { /* the client went away mid-body: forget the partial chunk */
        stream_forget(c->stream, &c->sink);
        body_copy_abandon(&c->body, c->up);
        upload_release(&berth.store->uploads, c->up);
        copy_free(c);
    }
}

/* ---- a body read as it arrives ---- */

static void on_stream_data(stream_sink_t *k, const char *p, size_t n)
{
    copy_t *c = H2O_STRUCT_FROM_MEMBER(copy_t, sink, k);
    if (c->failed == 0 && body_copy_feed(&c->body, c->up, p, n) != 0)
        c->failed = errno != 0 ? errno : EIO;
}

static void on_stream_end(stream_sink_t *k, int how)
{
    copy_t *c = H2O_STRUCT_FROM_MEMBER(copy_t, sink, k);
    h2o_req_t *req = c->req;
    c->stream = NULL;
    if (how == STREAM_OK && c->failed == 0) {
        body_copy_end(&c->body, c->up);
        *c->slot = NULL;
        c->slot = NULL;
        c->then(c);
        return;
    }
    body_copy_abandon(&c->body, c->up); /* after a failed write too: its hashing thread ends */
    upload_release(&berth.store->uploads, c->up);
    if (req != NULL && how != STREAM_GONE) {
        if (c->failed != 0)
            res_errno(req, c->failed, "cannot store the upload");
        else if (how == STREAM_TOO_LARGE)
            res_error(req, ERR_TOO_LARGE, "the body is larger than http.max_body_size", NULL);
        else
            res_error(req, ERR_BLOB_UPLOAD_INVALID, "broken chunked transfer encoding", NULL);
    }
    copy_free(c);
}

/* One slice per turn of the loop, so that a large body never holds the loop for long. */
static void copy_step(h2o_timeout_entry_t *entry)
{
    copy_t *c = H2O_STRUCT_FROM_MEMBER(copy_t, timer, entry);
    h2o_req_t *req = c->req;
    if (req == NULL) { /* the client went away mid-body: forget the partial chunk */
        body_copy_abandon(&c->body, c->up);
        upload_release(&berth.store->uploads, c->up);
        copy_free(c);
        return;
    }
    switch (body_copy_step(&c->body, c->up, req->entity.base, req->entity.len)) {
    case BODY_COPY_MORE:
        h2o_timeout_link(req->conn->ctx->loop, &thread_ctx_of(req)->zero_timeout, &c->timer);
        return;
    case BODY_COPY_DONE:
        *c->slot = NULL;
        c->slot = NULL;
        c->then(c);
        return;
    default: {
        int e = errno;
        upload_release(&berth.store->uploads, c->up);
        res_errno(req, e, "cannot store the upload");
        copy_free(c);
        return;
    }
    }
}

/* Copy the request body into session `up` (busy), then call `then`. */
static void copy_body(route_t *r, upload_t *up, const digest_t *digest, copy_cb then)
{
    copy_t *c = calloc(1, sizeof(*c));
    c->req = r->req;
    c->up = up;
    c->then = then;
    c->name = strdup(r->name);
    if (digest)
        c->digest = *digest;
    c->timer.cb = copy_step;
    body_copy_init(&c->body, up);
    c->slot = h2o_mem_alloc_shared(&r->req->pool, sizeof(*c->slot), on_copy_req_dispose);
    *c->slot = c;
    uint64_t len;
    if ((c->stream = stream_pending(r->req, &len)) != NULL) { /* received and copied at once: no receive phase */
        c->sink = (stream_sink_t){on_stream_data, on_stream_end};
        if (len >= BODY_HASH_BEHIND_MIN) /* UINT64_MAX when chunked */
            body_copy_hash_behind(&c->body, up);
        stream_receive(c->stream, &c->sink); /* may end, and free c, before it returns */
        return;
    }
    c->t_recv = body_seconds(r->req);
    copy_step(&c->timer);
}

/* ---- finishing: verify, store, record ---- */

/* The file is checked inside the write transaction (see metastore_blob_link): garbage collection may have removed
 * an unreferenced blob of the same digest between the rename and now. */
#define OVER_QUOTA 1 /* positive: the refused blob is recorded unlinked, for garbage collection (committed) */

static int link_blob(metastore_t *m, void *arg)
{
    finish_t *f = arg;
    if (!blobstore_has(&berth.store->blobs, &f->digest))
        return BERTH_ENOTFOUND;
    int rc = quota_check_blob(m, f->name, &f->digest, f->size, &f->quota);
    if (rc == BERTH_EQUOTA)
        return quota_refused_blob(m, &f->digest, f->size) == 0 ? OVER_QUOTA : BERTH_ERROR;
    return rc != 0 ? rc : metastore_blob_link(m, f->name, &f->digest, f->size);
}

static void finish_run(work_t *w)
{
    finish_t *f = (finish_t *)w;
    char dir[BLOBSTORE_PATH_MAX];
    double t0 = time_mono_s();
    f->t_queued = t0 - f->queued_at;
    body_copy_join(&f->body, f->up);
    errno = 0;
    f->rc = upload_finish_unsynced(&berth.store->uploads, f->up, &f->digest, &berth.store->blobs, &f->size, dir,
                                   &f->phases);
    f->err = f->rc != 0 ? errno : 0;
    if (f->rc == 0) { /* the blob's folder is fsynced with those of concurrent finishes, before the commit */
        double t1 = time_mono_s();
        f->rc = metastore_write_synced(berth.store->writer, link_blob, f, dir);
        f->t_db = time_mono_s() - t1;
    }
}

static void finish_done(work_t *w)
{
    finish_t *f = (finish_t *)w;
    h2o_req_t *req = w->req;
    if (f->rc == 0)
        log_debug("blob %s: %llu bytes; receive %.3f s, copy+hash %.3f s, queue %.3f s, hash %.3f s, fsync %.3f s, "
                  "rename %.3f s, db %.3f s",
                  f->digest.str, (unsigned long long)f->size, f->t_recv, f->t_copy, f->t_queued, f->phases.hash,
                  f->phases.fsync, f->phases.commit, f->t_db);
    if (req != NULL) {
        if (f->rc == 0) {
            res_headerf(req, "location", "/v2/%s/blobs/%s", f->name, f->digest.str);
            res_header(req, "docker-content-digest", f->digest.str);
            res_empty(req, 201);
        } else if (f->rc == BERTH_EDIGEST) {
            res_error(req, ERR_DIGEST_INVALID, NULL, json_pack("{s:s}", "digest", f->digest.str));
        } else if (f->rc == OVER_QUOTA) {
            api_quota_refuse(req, &f->quota, f->size);
        } else if (f->rc == BERTH_ENOTFOUND) { /* the session is gone with its bytes: the client starts again */
            res_header(req, "retry-after", "1");
            res_error(req, ERR_UNAVAILABLE,
                      "garbage collection removed a blob of this digest while the upload finished: upload it again",
                      json_pack("{s:s}", "digest", f->digest.str));
        } else {
            res_errno(req, f->err, "cannot store the blob");
        }
    }
    free(f->name);
    free(f);
}

static void finish_after_copy(copy_t *c)
{
    finish_t *f = calloc(1, sizeof(*f));
    f->up = c->up;
    f->name = c->name;
    f->digest = c->digest;
    f->t_recv = c->t_recv;
    f->t_copy = c->body.seconds;
    f->body = c->body;
    f->queued_at = time_mono_s();
    c->name = NULL;
    h2o_req_t *req = c->req;
    copy_free(c);
    work_submit(req, &f->super, finish_run, finish_done);
}

/* A chunk hashed on a thread of its own: the thread is joined on a worker before the session is given back. */
typedef struct {
    work_t super;
    upload_t *up;
    char *name;
    body_copy_t body;
} chunk_t;

static void chunk_join(work_t *w)
{
    chunk_t *k = (chunk_t *)w;
    body_copy_join(&k->body, k->up);
}

static void chunk_done(work_t *w)
{
    chunk_t *k = (chunk_t *)w;
    if (w->req != NULL)
        set_upload_headers(w->req, k->name, k->up->uuid, k->up->offset);
    upload_release(&berth.store->uploads, k->up);
    if (w->req != NULL)
        res_empty(w->req, 202);
    free(k->name);
    free(k);
}

static void patch_after_copy(copy_t *c)
{
    h2o_req_t *req = c->req;
    log_debug("upload %s: chunk of %zu bytes; receive %.3f s, copy+hash %.3f s", c->up->uuid, c->body.done, c->t_recv,
              c->body.seconds);
    if (c->body.behind != NULL) {
        chunk_t *k = calloc(1, sizeof(*k));
        k->up = c->up;
        k->name = c->name;
        k->body = c->body;
        c->name = NULL;
        copy_free(c);
        work_submit(req, &k->super, chunk_join, chunk_done);
        return;
    }
    set_upload_headers(req, c->name, c->up->uuid, c->up->offset);
    upload_release(&berth.store->uploads, c->up);
    copy_free(c);
    res_empty(req, 202);
}

/* ---- handlers ---- */

/* Acquire the session named in the URL, answering the error if it cannot be had. */
static upload_t *acquire(route_t *r)
{
    upload_t *up = NULL;
    switch (upload_acquire(&berth.store->uploads, r->ref, r->name, &up)) {
    case 0:
        return up;
    case BERTH_ENOTFOUND:
        res_error(r->req, ERR_BLOB_UPLOAD_UNKNOWN, NULL, NULL);
        return NULL;
    case BERTH_EBUSY:
        res_error(r->req, ERR_BLOB_UPLOAD_INVALID, "another request is writing to this upload", NULL);
        return NULL;
    default:
        res_errno(r->req, errno, "cannot open the upload");
        return NULL;
    }
}

/* The length of a request's body, whoever reads it (UINT64_MAX: chunked, not known yet). */
static uint64_t body_len(h2o_req_t *req)
{
    uint64_t len;
    return stream_pending(req, &len) != NULL ? len : req->entity.len;
}

/* A chunk's Content-Range must start where the session stands and match the body's length. */
static int check_content_range(route_t *r, upload_t *up)
{
    size_t len;
    uint64_t a, b;
    const char *cr = req_header(r->req, "content-range", &len);
    if (cr == NULL)
        return 0;
    if (content_range_parse(cr, len, &a, &b) != 0 || a != up->offset || b - a + 1 != body_len(r->req)) {
        set_upload_headers(r->req, r->name, up->uuid, up->offset);
        upload_release(&berth.store->uploads, up);
        res_error(r->req, ERR_RANGE_INVALID, "Content-Range does not continue the upload", NULL);
        return -1;
    }
    return 0;
}

/* ---- cross-repository mount ---- */

typedef struct {
    write_work_t super;
    char *name;
    digest_t digest;
    uint64_t size;
    quota_t quota;
} mount_t;

static int mount_write(metastore_t *m, void *arg)
{
    mount_t *mt = arg;
    int rc = quota_check_blob(m, mt->name, &mt->digest, mt->size, &mt->quota);
    return rc != 0 ? rc : metastore_blob_mount(m, mt->name, &mt->digest);
}

static void mount_done(work_t *w)
{
    mount_t *mt = (mount_t *)w;
    if (w->req != NULL) {
        if (mt->super.rc == 0) {
            res_headerf(w->req, "location", "/v2/%s/blobs/%s", mt->name, mt->digest.str);
            res_header(w->req, "docker-content-digest", mt->digest.str);
            res_empty(w->req, 201);
        } else if (mt->super.rc == BERTH_EQUOTA) {
            api_quota_refuse(w->req, &mt->quota, mt->size);
        } else if (mt->super.rc == BERTH_ENOTFOUND) { /* collected meanwhile: as the spec says, a normal upload */
            char uuid[UPLOAD_UUID_LEN + 1];
            if (upload_create(&berth.store->uploads, mt->name, mt->digest.algo, uuid) != 0) {
                res_errno(w->req, errno, "cannot start an upload");
            } else {
                set_upload_headers(w->req, mt->name, uuid, 0);
                res_empty(w->req, 202);
            }
        } else {
            res_error(w->req, ERR_INTERNAL, "cannot mount the blob", NULL);
        }
    }
    free(mt->name);
    free(mt);
}

typedef struct {
    route_t *r;
    int found;
} holders_t;

/* Automatic mount: the blob counts as found only in a repository the caller may pull. */
static void found_repo(void *ctx, const char *repo)
{
    holders_t *h = ctx;
    if (!h->found && (auth_actions(h->r->tc->db, h->r->who, repo) & ACTION_PULL) != 0)
        h->found = 1;
}

/*
 * ?mount=<digest>[&from=<repo>]: link a blob the registry holds instead of uploading it again. With `from`, the
 * blob must be in that repository; without, in any repository the caller may pull (automatic mount). Returns
 * 1 if it answered (mounted, or refused bad input), 0 to go on with a normal upload.
 */
static int try_mount(route_t *r, const char *ms)
{
    digest_t d;
    uint64_t size = 0;
    int found;
    if (api_digest_arg(r->req, ms, &d) != 0)
        return 1;
    const char *from = req_query(r->req, "from", 0);
    if (from != NULL && *from != '\0') {
        if (!name_valid(from, strlen(from))) {
            res_error(r->req, ERR_NAME_INVALID, NULL, json_pack("{s:s}", "from", from));
            return 1;
        }
        /* a source the caller may not pull is treated as one without the blob: never a leak across tenants */
        found = (auth_actions(r->tc->db, r->who, from) & ACTION_PULL) != 0 &&
                metastore_blob_get(r->tc->db, from, &d, &size) == 0;
    } else {
        holders_t h = {r, 0};
        found = metastore_blob_repos(r->tc->db, &d, 100, &size, found_repo, &h) > 0 && h.found;
    }
    if (!found)
        return 0;
    mount_t *mt = calloc(1, sizeof(*mt));
    mt->name = strdup(r->name);
    mt->digest = d;
    mt->size = size;
    work_write(r->req, &mt->super, mount_write, mount_done);
    return 1;
}

void api_upload_start(route_t *r)
{
    if (api_space_ok(r->req) != 0)
        return;
    char uuid[UPLOAD_UUID_LEN + 1];
    const char *ds = req_query(r->req, "digest", 0), *ms = req_query(r->req, "mount", 0);
    const char *algo = req_query(r->req, "digest-algorithm", 0);
    digest_t d;
    digest_algo_t a = DIGEST_SHA256;
    if (ms != NULL && *ms != '\0' && try_mount(r, ms))
        return;
    if (ds != NULL && api_digest_arg(r->req, ds, &d) != 0)
        return;
    if (algo != NULL) {
        int i = digest_algo_from_name(algo, strlen(algo));
        if (i < 0) {
            res_error(r->req, ERR_DIGEST_INVALID, "unsupported digest algorithm",
                      json_pack("{s:s}", "digest-algorithm", algo));
            return;
        }
        a = (digest_algo_t)i;
    }
    if (ds != NULL)
        a = d.algo;
    if (upload_create(&berth.store->uploads, r->name, a, uuid) != 0) {
        res_errno(r->req, errno, "cannot start an upload");
        return;
    }
    if (ds == NULL) {
        set_upload_headers(r->req, r->name, uuid, 0);
        res_empty(r->req, 202);
        return;
    }
    /* single-request upload: the body is the whole blob */
    upload_t *up;
    if (upload_acquire(&berth.store->uploads, uuid, r->name, &up) != 0) {
        res_errno(r->req, errno, "cannot open the upload");
        return;
    }
    copy_body(r, up, &d, finish_after_copy);
}

void api_upload_status(route_t *r)
{
    uint64_t off;
    if (upload_peek(&berth.store->uploads, r->ref, r->name, &off) != 0) {
        res_error(r->req, ERR_BLOB_UPLOAD_UNKNOWN, NULL, NULL);
        return;
    }
    set_upload_headers(r->req, r->name, r->ref, off);
    res_empty(r->req, 204);
}

void api_upload_patch(route_t *r)
{
    if (api_space_ok(r->req) != 0)
        return;
    upload_t *up = acquire(r);
    if (up == NULL || check_content_range(r, up) != 0)
        return;
    copy_body(r, up, NULL, patch_after_copy);
}

void api_upload_put(route_t *r)
{
    if (body_len(r->req) > 0 && api_space_ok(r->req) != 0)
        return;
    const char *ds = req_query(r->req, "digest", 0);
    digest_t d;
    if (ds == NULL) {
        res_error(r->req, ERR_DIGEST_INVALID, "the digest query parameter is required", NULL);
        return;
    }
    if (api_digest_arg(r->req, ds, &d) != 0)
        return;
    upload_t *up = acquire(r);
    if (up == NULL || check_content_range(r, up) != 0)
        return;
    copy_body(r, up, &d, finish_after_copy);
}

void api_upload_delete(route_t *r)
{
    upload_t *up = acquire(r);
    if (up == NULL)
        return;
    upload_cancel(&berth.store->uploads, up);
    res_empty(r->req, 204);
}
