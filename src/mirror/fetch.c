/* The fetch engine of the pull-through mirrors; see fetch.h. */
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "mirror/fetch.h"
#include "oci/manifest.h"
#include "util/log.h"
#include "util/status.h"

#define ACCEPT_MANIFESTS MT_OCI_INDEX ", " MT_OCI_MANIFEST ", " MT_DOCKER_LIST ", " MT_DOCKER_MANIFEST

struct mirror_flight {
    mirror_flight_t *next;
    char *key;
    mirror_fetch_what_t what; /* its strings are the flight's copies */
    /* under mu */
    mirror_fetch_state_t state;
    uint64_t size, have; /* a blob: its size (UINT64_MAX until known), the bytes in `fd` so far */
    int fd;
    err_code_t err;
    char errmsg[256], retry_after[32];
    mirror_follower_t *followers;
    unsigned refs; /* the fetch, and each follower */
};

static mirror_fetch_env_t env;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static mirror_flight_t *flights;
static int stopping; /* set by the main thread, read by the fetches: atomic (a flag; nothing rides on it) */

void mirror_fetch_init(const mirror_fetch_env_t *e)
{
    env = *e;
    if (env.upstream == NULL)
        env.upstream = upstream_fetch;
    __atomic_store_n(&stopping, 0, __ATOMIC_RELAXED);
}

void mirror_fetch_stop(void)
{
    __atomic_store_n(&stopping, 1, __ATOMIC_RELAXED);
}

/* ---- flights ---- */

static void flight_unref_locked(mirror_flight_t *f)
{
    if (--f->refs != 0)
        return;
    if (f->fd >= 0)
        close(f->fd);
    free(f->key);
    free((char *)f->what.local);
    free((char *)f->what.up);
    free((char *)f->what.ref);
    free(f);
}

/* Wake the followers that wait for progress (under mu). */
static void wake_locked(mirror_flight_t *f)
{
    for (mirror_follower_t *fo = f->followers; fo != NULL; fo = fo->_next) {
        if (fo->_waiting && !fo->_wake_pending) {
            fo->_waiting = 0;
            fo->_wake_pending = 1;
            fo->wake(fo);
        }
    }
}

/* The fetch ended: record the outcome, take the flight out of the table (later requests find the store), wake all. */
static void flight_end(mirror_flight_t *f, mirror_fetch_state_t state)
{
    pthread_mutex_lock(&mu);
    f->state = state;
    for (mirror_flight_t **p = &flights; *p != NULL; p = &(*p)->next) {
        if (*p == f) {
            *p = f->next;
            break;
        }
    }
    for (mirror_follower_t *fo = f->followers; fo != NULL; fo = fo->_next)
        fo->_waiting = 1;
    wake_locked(f);
    flight_unref_locked(f);
    pthread_mutex_unlock(&mu);
}

static void flight_fail(mirror_flight_t *f, err_code_t err, const char *retry_after, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void flight_fail(mirror_flight_t *f, err_code_t err, const char *retry_after, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->errmsg, sizeof(f->errmsg), fmt, ap);
    va_end(ap);
    f->err = err;
    snprintf(f->retry_after, sizeof(f->retry_after), "%s", retry_after ? retry_after : "");
    if (err != ERR_MANIFEST_UNKNOWN && err != ERR_BLOB_UNKNOWN)
        __atomic_add_fetch((uint64_t *)&f->what.m->errors, 1, __ATOMIC_RELAXED);
    flight_end(f, MIRROR_FETCH_FAIL);
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
static void fail_from_upstream(mirror_flight_t *f, const upstream_resp_t *resp)
{
    const mirror_fetch_what_t *w = &f->what;
    const char *what = w->is_blob ? "blob" : "manifest";
    if (resp->status == 404 || resp->status == 401 || resp->status == 403) {
        /* Docker Hub answers 401 for a repository that does not exist */
        flight_fail(f, w->is_blob ? ERR_BLOB_UNKNOWN : ERR_MANIFEST_UNKNOWN, NULL,
                    "the upstream registry has no %s %s in %s", what, w->ref, w->up);
    } else if (resp->status == 429) {
        log_warn("mirror %s: 429 for %s %s@%s", w->m->cfg->upstream, what, w->up, w->ref);
        flight_fail(f, ERR_TOOMANYREQUESTS, resp->retry_after,
                    "the upstream registry limits requests; try again later");
    } else {
        char why[320];
        log_warn("mirror %s: cannot fetch %s %s@%s: %s", w->m->cfg->upstream, what, w->up, w->ref,
                 describe(resp, why, sizeof(why)));
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
    if (__atomic_load_n(&stopping, __ATOMIC_RELAXED) || b->len + n > b->max)
        return -1;
    if (b->buf == NULL && (b->buf = malloc(b->max)) == NULL)
        return -1;
    memcpy(b->buf + b->len, p, n);
    b->len += n;
    return 0;
}

typedef struct {
    mirror_flight_t *f;
    const digest_t *d;
    const manifest_t *mf;
    const body_t *body;
    time_t now;
} store_manifest_t;

static int store_manifest(metastore_t *m, void *arg)
{
    store_manifest_t *s = arg;
    const mirror_fetch_what_t *w = &s->f->what;
    return metastore_mirror_manifest_put(m, w->local, s->d, s->mf, s->body->buf, s->body->len,
                                         w->by_tag ? w->ref : NULL, s->now);
}

typedef struct {
    mirror_flight_t *f;
    time_t now;
} tag_op_t;

static int tag_checked(metastore_t *m, void *arg)
{
    tag_op_t *t = arg;
    return metastore_tag_checked(m, t->f->what.local, t->f->what.ref, t->now);
}

static int tag_gone(metastore_t *m, void *arg)
{
    tag_op_t *t = arg;
    return metastore_tag_delete(m, t->f->what.local, t->f->what.ref);
}

/* The upstream failed while a copy is here: serve the copy. */
static void serve_stale(mirror_flight_t *f, const upstream_resp_t *resp)
{
    __atomic_add_fetch((uint64_t *)&f->what.m->stale, 1, __ATOMIC_RELAXED);
    char why[320];
    log_warn("mirror %s: serving the cached %s:%s, the upstream failed (%s)", f->what.m->cfg->upstream, f->what.local,
             f->what.ref, describe(resp, why, sizeof(why)));
    flight_end(f, MIRROR_FETCH_DONE);
}

/* A cached tag: ask the upstream whether it still points at the copy here. 1 if that ended the flight, 0 to fetch. */
static int revalidate(mirror_flight_t *f, time_t now)
{
    const mirror_fetch_what_t *w = &f->what;
    upstream_resp_t resp;
    /* a HEAD does not count against Docker Hub's pull limit */
    int rc = env.upstream(w->m->up, "HEAD", w->up, "manifests", w->ref, ACCEPT_MANIFESTS, 1, NULL, &resp);
    digest_t d;
    if (rc == 0 && resp.status / 100 == 2 && digest_parse(&d, resp.digest, strlen(resp.digest)) == DIGEST_OK &&
        digest_equal(&d, &w->cached_digest)) {
        tag_op_t t = {f, now};
        metastore_write(env.writer, tag_checked, &t);
        flight_end(f, MIRROR_FETCH_DONE);
        return 1;
    }
    if (rc == 0 && resp.status == 404) {
        tag_op_t t = {f, now};
        log_info("mirror %s: tag %s:%s is gone upstream", w->m->cfg->upstream, w->up, w->ref);
        metastore_write(env.writer, tag_gone, &t);
        flight_fail(f, ERR_MANIFEST_UNKNOWN, NULL, "the upstream registry no longer has %s:%s", w->up, w->ref);
        return 1;
    }
    if (rc != 0 || resp.status / 100 != 2) {
        serve_stale(f, &resp);
        return 1;
    }
    /* the tag moved (or the upstream sends no digest on HEAD): fetch it */
    __atomic_add_fetch((uint64_t *)&w->m->fetches, 1, __ATOMIC_RELAXED);
    return 0;
}

static void fetch_manifest(mirror_flight_t *f)
{
    const mirror_fetch_what_t *w = &f->what;
    upstream_resp_t resp;
    const char *ref = w->ref;
    time_t now = time(NULL);

    if (w->cached && revalidate(f, now))
        return;
    body_t body = {NULL, 0, env.manifest_max_size};
    upstream_sink_t sink = {NULL, body_data, &body};
    int rc = env.upstream(w->m->up, "GET", w->up, "manifests", ref, ACCEPT_MANIFESTS, 1, &sink, &resp);
    if (rc != 0 || resp.status != 200) {
        free(body.buf);
        if (w->cached && resp.status != 404)
            serve_stale(f, &resp);
        else if (rc != 0 && resp.status == 200)
            flight_fail(f, ERR_UNAVAILABLE, NULL, "the upstream registry sent a manifest over %llu bytes, or stopped",
                        (unsigned long long)body.max);
        else
            fail_from_upstream(f, &resp);
        return;
    }
    digest_t d, claimed;
    digest_compute(&d, w->by_tag ? DIGEST_SHA256 : w->digest.algo, body.buf ? body.buf : "", body.len);
    int has_claim = digest_parse(&claimed, resp.digest, strlen(resp.digest)) == DIGEST_OK && claimed.algo == d.algo;
    if ((!w->by_tag && !digest_equal(&d, &w->digest)) || (has_claim && !digest_equal(&d, &claimed))) {
        log_error("mirror %s: manifest %s@%s: the upstream sent content of digest %s", w->m->cfg->upstream, w->up, ref,
                  d.str);
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
    if (manifest_parse(&mf, resp.content_type, ctlen, body.buf ? body.buf : "", body.len, err, sizeof(err)) !=
        MANIFEST_OK) {
        log_error("mirror %s: manifest %s@%s is not one berth stores: %s", w->m->cfg->upstream, w->up, ref, err);
        free(body.buf);
        flight_fail(f, ERR_UNAVAILABLE, NULL, "the upstream registry sent a manifest berth cannot store: %s", err);
        return;
    }
    store_manifest_t s = {f, &d, mf, &body, now};
    rc = metastore_write(env.writer, store_manifest, &s);
    manifest_free(mf);
    free(body.buf);
    if (rc != 0) {
        flight_fail(f, ERR_INTERNAL, NULL, "cannot store the manifest");
        return;
    }
    flight_end(f, MIRROR_FETCH_DONE);
}

/* ---- fetching blobs ---- */

typedef struct {
    mirror_flight_t *f;
    char tmp[BLOBSTORE_PATH_MAX];
    digest_hasher_t *h;
    uint64_t limit;
    int failed;
} blob_sink_t;

static int blob_start(void *ctx, const upstream_resp_t *resp)
{
    blob_sink_t *b = ctx;
    mirror_flight_t *f = b->f;
    if (resp->length > 0 && (uint64_t)resp->length > b->limit)
        return -1;
    snprintf(b->tmp, sizeof(b->tmp), "%s/tmp/mirror.XXXXXX", env.storage_root);
    int fd = mkstemp(b->tmp);
    if (fd < 0) {
        log_error("mirror: cannot create %s: %s", b->tmp, strerror(errno));
        b->tmp[0] = '\0';
        return -1;
    }
    pthread_mutex_lock(&mu);
    f->fd = fd;
    f->size = resp->length >= 0 ? (uint64_t)resp->length : UINT64_MAX;
    f->state = MIRROR_FETCH_BODY;
    for (mirror_follower_t *fo = f->followers; fo != NULL; fo = fo->_next)
        fo->_waiting = 1; /* everyone may start the response now */
    wake_locked(f);
    pthread_mutex_unlock(&mu);
    return 0;
}

static int blob_data(void *ctx, const void *p, size_t n)
{
    blob_sink_t *b = ctx;
    mirror_flight_t *f = b->f;
    if (__atomic_load_n(&stopping, __ATOMIC_RELAXED) || f->have + n > b->limit ||
        (f->size != UINT64_MAX && f->have + n > f->size))
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
    mirror_flight_t *f;
    uint64_t size;
} link_t;

/* The file is checked inside the write transaction: garbage collection and berth fsck --repair remove a blob file only
 * under the database's write lock, so a file still there now cannot go before its row is committed. */
static int link_blob(metastore_t *m, void *arg)
{
    link_t *l = arg;
    if (!blobstore_has(env.blobs, &l->f->what.digest)) {
        log_error("mirror: blob %s: its file went before it was recorded", l->f->what.digest.str);
        return BERTH_ENOTFOUND;
    }
    return metastore_mirror_blob_link(m, l->f->what.local, &l->f->what.digest, l->size);
}

/* The blob's file is already here (another repository has it): the upstream need only confirm this repository
 * has it. */
static void confirm_blob(mirror_flight_t *f, int fd, uint64_t size)
{
    const mirror_fetch_what_t *w = &f->what;
    upstream_resp_t resp;
    if (env.upstream(w->m->up, "HEAD", w->up, "blobs", w->ref, NULL, 1, NULL, &resp) != 0 || resp.status / 100 != 2) {
        close(fd);
        fail_from_upstream(f, &resp);
        return;
    }
    link_t l = {f, size};
    if (metastore_write(env.writer, link_blob, &l) != 0) {
        close(fd);
        flight_fail(f, ERR_INTERNAL, NULL, "cannot record the blob");
        return;
    }
    pthread_mutex_lock(&mu);
    f->fd = fd;
    f->size = f->have = size;
    pthread_mutex_unlock(&mu);
    flight_end(f, MIRROR_FETCH_DONE);
}

static void fetch_blob(mirror_flight_t *f)
{
    const mirror_fetch_what_t *w = &f->what;
    uint64_t size;
    int fd = blobstore_open(env.blobs, &w->digest, &size);
    if (fd >= 0) {
        confirm_blob(f, fd, size);
        return;
    }
    blob_sink_t b = {f, "", digest_hasher_new(w->digest.algo), env.blob_max_size, 0};
    upstream_sink_t sink = {blob_start, blob_data, &b};
    upstream_resp_t resp;
    int rc = env.upstream(w->m->up, "GET", w->up, "blobs", w->ref, NULL, 0, &sink, &resp);
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
    if (!digest_equal(&got, &w->digest) || (f->size != UINT64_MAX && f->have != f->size)) {
        log_error("mirror %s: blob %s@%s: the upstream sent %llu bytes of digest %s", w->m->cfg->upstream, w->up,
                  w->ref, (unsigned long long)f->have, got.str);
        unlink(b.tmp);
        flight_fail(f, ERR_UNAVAILABLE, NULL, "the upstream registry sent a blob that does not match its digest");
        return;
    }
    if (fsync(f->fd) != 0 || blobstore_commit(env.blobs, b.tmp, &w->digest) != 0 ||
        metastore_write(env.writer, link_blob, &l) != 0) {
        log_error("mirror: cannot store blob %s: %s", w->digest.str, strerror(errno));
        unlink(b.tmp);
        flight_fail(f, ERR_INTERNAL, NULL, "cannot store the blob");
        return;
    }
    pthread_mutex_lock(&mu);
    f->size = f->have;
    pthread_mutex_unlock(&mu);
    flight_end(f, MIRROR_FETCH_DONE);
}

/* On a fetch thread (env.spawn): the fetch holds one reference, dropped as the flight ends. */
static void fetch_run(void *arg)
{
    mirror_flight_t *f = arg;
    if (f->what.is_blob) {
        __atomic_add_fetch((uint64_t *)&f->what.m->fetches, 1, __ATOMIC_RELAXED);
        fetch_blob(f);
    } else {
        if (!f->what.cached)
            __atomic_add_fetch((uint64_t *)&f->what.m->fetches, 1, __ATOMIC_RELAXED);
        fetch_manifest(f);
    }
}

/* ---- followers ---- */

/* A flight for `what`, holding `key`, with the fetch's reference; NULL (and `key` freed) if out of memory. */
static mirror_flight_t *flight_new(char *key, const mirror_fetch_what_t *what)
{
    mirror_flight_t *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        free(key);
        return NULL;
    }
    f->key = key;
    f->what = *what;
    f->what.local = strdup(what->local);
    f->what.up = strdup(what->up);
    f->what.ref = strdup(what->ref);
    f->fd = -1;
    f->size = UINT64_MAX;
    f->refs = 1;
    if (f->what.local == NULL || f->what.up == NULL || f->what.ref == NULL) {
        flight_unref_locked(f); /* nobody else knows it yet */
        return NULL;
    }
    return f;
}

int mirror_follow(mirror_follower_t *fo, const mirror_fetch_what_t *what)
{
    char *key;
    if (asprintf(&key, "%c%s\n%s", what->is_blob ? 'b' : 'm', what->local, what->ref) < 0)
        return -1;
    pthread_mutex_lock(&mu);
    mirror_flight_t *f = flights;
    while (f != NULL && strcmp(f->key, key) != 0)
        f = f->next;
    int start = f == NULL;
    if (start) {
        if ((f = flight_new(key, what)) == NULL) {
            pthread_mutex_unlock(&mu);
            return -1; /* flight_new freed the key */
        }
        key = NULL;
        f->next = flights;
        flights = f;
    }
    fo->_flight = f;
    ++f->refs;
    fo->_next = f->followers;
    f->followers = fo;
    fo->_waiting = 1;
    fo->_wake_pending = 0;
    pthread_mutex_unlock(&mu);
    free(key);
    if (start)
        env.spawn(fetch_run, f);
    return start;
}

void mirror_follower_poll(mirror_follower_t *fo, uint64_t off, mirror_fetch_progress_t *out)
{
    mirror_flight_t *f = fo->_flight;
    pthread_mutex_lock(&mu);
    *out = (mirror_fetch_progress_t){f->state, f->have, f->size, f->fd, &f->what};
    if (f->state == MIRROR_FETCH_WAIT || (f->state == MIRROR_FETCH_BODY && off >= f->have))
        fo->_waiting = 1;
    if (f->state == MIRROR_FETCH_FAIL) {
        out->err = f->err;
        out->message = f->errmsg[0] ? f->errmsg : NULL;
        out->retry_after = f->retry_after;
    }
    pthread_mutex_unlock(&mu);
}

void mirror_follower_woken(mirror_follower_t *fo)
{
    pthread_mutex_lock(&mu);
    fo->_wake_pending = 0;
    pthread_mutex_unlock(&mu);
}

int mirror_unfollow(mirror_follower_t *fo)
{
    pthread_mutex_lock(&mu);
    for (mirror_follower_t **q = &fo->_flight->followers; *q != NULL; q = &(*q)->_next) {
        if (*q == fo) {
            *q = fo->_next;
            break;
        }
    }
    int pending = fo->_wake_pending;
    pthread_mutex_unlock(&mu);
    return pending;
}

void mirror_follower_dispose(mirror_follower_t *fo)
{
    pthread_mutex_lock(&mu);
    flight_unref_locked(fo->_flight);
    pthread_mutex_unlock(&mu);
    fo->_flight = NULL;
}
