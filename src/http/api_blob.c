/* GET and HEAD /v2/<name>/blobs/<digest>: stream a blob file with pread, honouring a single Range. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include "http/api.h"
#include "http/events.h"
#include "http/gate.h"
#include "notify/notify.h"
#include "store/audit.h"
#include "http/work.h"
#include "oci/range.h"
#include "util/log.h"
#include "util/status.h"

#define CHUNK (256 * 1024)

typedef struct {
    h2o_generator_t super;
    int fd;
    uint64_t off, end; /* next byte to send, one past the last */
    char *buf;
} blob_gen_t;

static void gen_close(blob_gen_t *g)
{
    if (g->fd >= 0) {
        close(g->fd);
        g->fd = -1;
    }
}

static void on_dispose(void *p)
{
    gen_close(p);
}

/* Read the next slice and send it; the blob file is immutable, so a short read is corruption or a bug. */
static void do_send(blob_gen_t *g, h2o_req_t *req)
{
    size_t want = g->end - g->off > CHUNK ? CHUNK : (size_t)(g->end - g->off);
    ssize_t n;
    while ((n = pread(g->fd, g->buf, want, (off_t)g->off)) < 0 && errno == EINTR)
        ;
    if (n <= 0) {
        log_error("blob read failed at %llu: %s", (unsigned long long)g->off, n < 0 ? strerror(errno) : "short file");
        gen_close(g);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    g->off += (uint64_t)n;
    h2o_iovec_t v = h2o_iovec_init(g->buf, (size_t)n);
    int final = g->off == g->end;
    if (final)
        gen_close(g);
    h2o_send(req, &v, 1, final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void on_proceed(h2o_generator_t *self, h2o_req_t *req)
{
    const char *prev = log_set_request(req_id(req));
    do_send((blob_gen_t *)self, req);
    log_set_request(prev);
}

static void on_stop(h2o_generator_t *self, h2o_req_t *req)
{
    gen_close((blob_gen_t *)self);
}

void api_blob_get(route_t *r)
{
    h2o_req_t *req = r->req;
    digest_t d;
    uint64_t size;
    if (api_digest_arg(req, r->ref, &d) != 0)
        return;
    int rc = metastore_blob_get(r->tc->db, r->name, &d, &size);
    if (rc == BERTH_ENOTFOUND) {
        res_error(req, ERR_BLOB_UNKNOWN, NULL, json_pack("{s:s}", "digest", d.str));
        return;
    }
    if (rc != 0) {
        res_error(req, ERR_INTERNAL, NULL, NULL);
        return;
    }
    api_blob_send(r, &d, size);
}

void api_blob_send(route_t *r, const digest_t *digest, uint64_t size)
{
    h2o_req_t *req = r->req;
    digest_t d = *digest;
    uint64_t fsize;
    /* a HEAD answers from the database: blob files are immutable, and their presence was checked when they
     * were recorded (a GET still checks the file) */
    int head = method_is(req, "HEAD"), fd = -1;
    if (!head && (fd = blobstore_open(&berth.store->blobs, &d, &fsize)) < 0) {
        if (errno != ENOENT) { /* out of descriptors, say: the blob is there, it cannot be read now */
            res_errno(req, errno, "cannot open the blob");
            return;
        }
        log_error("blob %s is in the database but its file is missing (berth fsck finds such damage)", d.str);
        res_error(req, ERR_BLOB_UNKNOWN, NULL, json_pack("{s:s}", "digest", d.str));
        return;
    }
    if (!head && fsize != size) {
        log_error("blob %s has %llu bytes in the database but its file has %llu (berth fsck finds such damage)", d.str,
                  (unsigned long long)size, (unsigned long long)fsize);
        close(fd);
        res_error(req, ERR_INTERNAL, "the blob's file is damaged", json_pack("{s:s}", "digest", d.str));
        return;
    }

    uint64_t start = 0, end = size; /* [start, end) */
    size_t hlen;
    const char *range = req_header(req, "range", &hlen);
    res_header(req, "docker-content-digest", d.str);
    res_header(req, "accept-ranges", "bytes");
    res_headerf(req, "etag", "\"%s\"", d.str);
    if (range != NULL) {
        uint64_t a, b;
        switch (range_parse(range, hlen, size, &a, &b)) {
        case RANGE_OK:
            start = a;
            end = b + 1;
            req->res.status = 206;
            res_headerf(req, "content-range", "bytes %llu-%llu/%llu", (unsigned long long)a, (unsigned long long)b,
                        (unsigned long long)size);
            break;
        case RANGE_UNSATISFIABLE:
            if (fd >= 0)
                close(fd);
            res_headerf(req, "content-range", "bytes */%llu", (unsigned long long)size);
            res_error(req, ERR_RANGE_INVALID, "requested range not satisfiable", NULL);
            return;
        default:
            break;
        }
    }
    if (req->res.status != 206)
        req->res.status = 200;
    req->res.reason = req->res.status == 206 ? "Partial Content" : "OK";
    req->res.content_length = end - start;
    h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, H2O_STRLIT("application/octet-stream"), 1);

    if (head || start == end) {
        static h2o_generator_t none = {NULL, NULL};
        if (fd >= 0)
            close(fd);
        h2o_start_response(req, &none);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    blob_gen_t *g = h2o_mem_alloc_shared(&req->pool, sizeof(*g), on_dispose);
    g->super.proceed = on_proceed;
    g->super.stop = on_stop;
    g->fd = fd;
    g->off = start;
    g->end = end;
    g->buf = h2o_mem_alloc_pool(&req->pool, CHUNK);
    h2o_start_response(req, &g->super);
    do_send(g, req);
}

typedef struct {
    write_work_t super;
    char *name;
    digest_t digest;
    gate_actor_t actor;
    int notify; /* webhooks take deletes */
    api_origin_t origin;
} unlink_t;

static int unlink_write(metastore_t *m, void *arg)
{
    unlink_t *u = arg;
    int rc = metastore_blob_unlink(m, u->name, &u->digest);
    audit_record_t r = {.actor = u->actor.name,
                        .token_id = u->actor.token_id,
                        .action = "delete.blob",
                        .repository = u->name,
                        .reference = u->digest.str,
                        .digest = u->digest.str,
                        .address = u->actor.addr};
    if (rc == 0)
        rc = audit_insert(m, &r);
    /* application/octet-stream, so that ignoredmediatypes drops blob events as it does in distribution */
    if (rc == 0 && u->notify)
        rc = api_event_store(m, &u->origin, "delete", u->name, NULL, u->digest.str, "application/octet-stream", -1);
    return rc;
}

static void unlink_done(work_t *w)
{
    unlink_t *u = (unlink_t *)w;
    if (u->notify) {
        if (u->super.rc == 0)
            notify_kick();
        api_origin_dispose(&u->origin);
    }
    if (w->req != NULL) {
        if (u->super.rc == 0)
            res_empty(w->req, 202);
        else if (u->super.rc == BERTH_ENOTFOUND)
            res_error(w->req, ERR_BLOB_UNKNOWN, NULL, json_pack("{s:s}", "digest", u->digest.str));
        else
            res_error(w->req, ERR_INTERNAL, NULL, NULL);
    }
    free(u->name);
    free(u);
}

/* The blob leaves this repository only; its file stays for other repositories and the garbage collector. */
void api_blob_delete(route_t *r)
{
    digest_t d;
    if (api_digest_arg(r->req, r->ref, &d) != 0)
        return;
    unlink_t *u = calloc(1, sizeof(*u));
    u->name = strdup(r->name);
    u->digest = d;
    gate_actor(r->req, r->who, &u->actor);
    if ((u->notify = (notify_actions() & CONFIG_ACTION_DELETE) != 0))
        api_origin_init(&u->origin, r->req, &u->actor);
    work_write(r->req, &u->super, unlink_write, unlink_done);
}
