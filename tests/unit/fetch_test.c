/*
 * The mirrors' fetch engine (src/mirror/fetch.c) without a server or a network: a real blob store and database in
 * a temporary folder, a fake upstream that answers what each test sets, and followers that stand in for requests.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "mirror/fetch.h"
#include "oci/manifest.h"
#include "store/blobstore.h"
#include "store/metastore.h"
#include "util/status.h"
#include "tap.h"

#define REPO "library/alpine"

static char root[256];
static blobstore_t blobs;
static metastore_t *db;
static metastore_writer_t *writer;
static char prefix[] = "", upstream_url[] = "https://registry.test", ns[] = "registry.test";
static config_mirror_t mcfg = {
    .prefix = prefix, .upstream = upstream_url, .ns = ns, .tag_ttl_ms = 300000, .library = 1};
static mirror_t mirror = {.cfg = &mcfg};

/* ---- the fake upstream ---- */

typedef struct {
    int rc; /* -1: no answer */
    long status;
    const char *content_type, *digest, *retry_after;
    const char *body;
    size_t len;
} answer_t;

static struct {
    answer_t get, head;
    int gets, heads;       /* calls so far */
    char last[512];        /* "GET manifests library/alpine v1" */
    size_t chunk;          /* the body goes to the sink in pieces of this size */
    size_t cut;            /* if not 0: the transfer breaks after this many bytes */
    void (*between)(void); /* after the sink's start, and after each piece */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int gate_closed; /* every call waits while set */
} up = {.chunk = 1000, .mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static int fake_upstream(upstream_t *u, const char *method, const char *name, const char *kind, const char *ref,
                         const char *accept, int whole_timeout, const upstream_sink_t *sink, upstream_resp_t *resp)
{
    int head = strcmp(method, "HEAD") == 0;
    const answer_t *a = head ? &up.head : &up.get;
    pthread_mutex_lock(&up.mu);
    while (up.gate_closed)
        pthread_cond_wait(&up.cond, &up.mu);
    ++*(head ? &up.heads : &up.gets);
    snprintf(up.last, sizeof(up.last), "%s %s %s %s", method, kind, name, ref);
    pthread_mutex_unlock(&up.mu);

    memset(resp, 0, sizeof(*resp));
    resp->length = -1;
    if (a->rc != 0) {
        snprintf(resp->error, sizeof(resp->error), "connection refused");
        return -1;
    }
    resp->status = a->status;
    snprintf(resp->content_type, sizeof(resp->content_type), "%s", a->content_type ? a->content_type : "");
    snprintf(resp->digest, sizeof(resp->digest), "%s", a->digest ? a->digest : "");
    snprintf(resp->retry_after, sizeof(resp->retry_after), "%s", a->retry_after ? a->retry_after : "");
    if (a->status / 100 != 2) {
        snprintf(resp->error, sizeof(resp->error), "{\"errors\":[]}");
        return 0;
    }
    resp->length = (int64_t)a->len;
    if (head || sink == NULL)
        return 0;
    if (sink->start != NULL && sink->start(sink->ctx, resp) != 0)
        return -1;
    if (up.between)
        up.between();
    for (size_t off = 0; off < a->len; off += up.chunk) {
        size_t n = a->len - off < up.chunk ? a->len - off : up.chunk;
        if (up.cut != 0 && off + n > up.cut) {
            snprintf(resp->error, sizeof(resp->error), "connection reset");
            return -1;
        }
        if (sink->data(sink->ctx, a->body + off, n) != 0)
            return -1;
        if (up.between)
            up.between();
    }
    return 0;
}

static void answer(answer_t *a, long status, const char *content_type, const char *digest, const char *body)
{
    *a = (answer_t){0, status, content_type, digest, NULL, body, body ? strlen(body) : 0};
}

static void reset_upstream(void)
{
    memset(&up.get, 0, sizeof(up.get));
    memset(&up.head, 0, sizeof(up.head));
    up.gets = up.heads = 0;
    up.last[0] = '\0';
    up.chunk = 1000;
    up.cut = 0;
    up.between = NULL;
}

/* ---- where fetches run ---- */

static int spawn_mode; /* 0: at once, on the caller's thread; 1: queued until run_queued; 2: on a thread of their own */
static struct {
    void (*fn)(void *);
    void *arg;
} queued[8];
static int nqueued;
static pthread_t fetch_thread;
static int nthreads;

typedef struct {
    void (*fn)(void *);
    void *arg;
} thread_job_t;

static void *thread_main(void *p)
{
    thread_job_t job = *(thread_job_t *)p;
    free(p);
    job.fn(job.arg);
    return NULL;
}

static void test_spawn(void (*fn)(void *arg), void *arg)
{
    if (spawn_mode == 0) {
        fn(arg);
    } else if (spawn_mode == 1) {
        queued[nqueued].fn = fn;
        queued[nqueued++].arg = arg;
    } else {
        thread_job_t *job = malloc(sizeof(*job));
        job->fn = fn;
        job->arg = arg;
        pthread_create(&fetch_thread, NULL, thread_main, job);
        ++nthreads;
    }
}

static void run_queued(void)
{
    for (int i = 0; i < nqueued; ++i)
        queued[i].fn(queued[i].arg);
    nqueued = 0;
}

/* ---- followers standing in for requests ---- */

typedef struct {
    mirror_follower_t mf;
    int wakes;
} follower_t;

static pthread_mutex_t wake_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_cond = PTHREAD_COND_INITIALIZER;

/* Under the engine's lock, maybe on the fetch thread: only note it. */
static void on_wake(mirror_follower_t *mf)
{
    pthread_mutex_lock(&wake_mu);
    ++((follower_t *)mf)->wakes;
    pthread_cond_broadcast(&wake_cond);
    pthread_mutex_unlock(&wake_mu);
}

static int wakes_of(follower_t *fo)
{
    pthread_mutex_lock(&wake_mu);
    int n = fo->wakes;
    pthread_mutex_unlock(&wake_mu);
    return n;
}

static mirror_fetch_what_t what_manifest(const char *ref, const digest_t *d, const digest_t *cached)
{
    mirror_fetch_what_t w = {&mirror, REPO, REPO, ref, 0, d == NULL};
    if (d != NULL)
        w.digest = *d;
    if (cached != NULL) {
        w.cached = 1;
        w.cached_digest = *cached;
    }
    return w;
}

static mirror_fetch_what_t what_blob(const char *repo, const digest_t *d)
{
    mirror_fetch_what_t w = {&mirror, repo, repo, d->str, 1, 0, *d};
    return w;
}

static int follow(follower_t *fo, const mirror_fetch_what_t *w)
{
    memset(fo, 0, sizeof(*fo));
    fo->mf.wake = on_wake;
    return mirror_follow(&fo->mf, w);
}

/* Take a wake-up if one came, then poll. */
static mirror_fetch_state_t poll_state(follower_t *fo, uint64_t off, mirror_fetch_progress_t *p)
{
    mirror_fetch_progress_t tmp;
    if (p == NULL)
        p = &tmp;
    mirror_follower_woken(&fo->mf);
    mirror_follower_poll(&fo->mf, off, p);
    return p->state;
}

static void leave(follower_t *fo)
{
    if (mirror_unfollow(&fo->mf))
        mirror_follower_woken(&fo->mf); /* the wake-up "arrived" */
    mirror_follower_dispose(&fo->mf);
}

/* The outcome of a flight a lone follower follows (fetched at once, on this thread). */
static mirror_fetch_state_t fetch_once(const mirror_fetch_what_t *w, err_code_t *err, char *msg, size_t msglen,
                                       char *retry)
{
    follower_t fo;
    mirror_fetch_progress_t p;
    if (follow(&fo, w) != 1)
        return (mirror_fetch_state_t)-1;
    mirror_fetch_state_t st = poll_state(&fo, 0, &p);
    if (st == MIRROR_FETCH_FAIL) {
        if (err)
            *err = p.err;
        if (msg)
            snprintf(msg, msglen, "%s", p.message ? p.message : "");
        if (retry)
            snprintf(retry, 32, "%s", p.retry_after);
    }
    leave(&fo);
    return st;
}

static int tmp_is_empty(void)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/tmp", root);
    DIR *d = opendir(path);
    int empty = d != NULL;
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = 0;
    if (d != NULL)
        closedir(d);
    return empty;
}

/* ---- manifests ---- */

static char manifest[1024], manifest2[1024];
static digest_t manifest_d, manifest2_d;

static void make_manifests(void)
{
    digest_t cfg, layer;
    digest_compute(&cfg, DIGEST_SHA256, "cfg", 3);
    digest_compute(&layer, DIGEST_SHA256, "layer", 5);
    const char *fmt =
        "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\",\"config\":{\"mediaType\":\"application/"
        "vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":%d},\"layers\":[{\"mediaType\":\"application/"
        "vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":5}]}";
    snprintf(manifest, sizeof(manifest), fmt, cfg.str, 3, layer.str);
    snprintf(manifest2, sizeof(manifest2), fmt, cfg.str, 4, layer.str);
    digest_compute(&manifest_d, DIGEST_SHA256, manifest, strlen(manifest));
    digest_compute(&manifest2_d, DIGEST_SHA256, manifest2, strlen(manifest2));
}

static int stored_manifest(const char *tag, const digest_t *d, const char *body, int64_t *checked_at)
{
    metastore_manifest_t got;
    if (metastore_manifest_get(db, REPO, tag, d, &got) != 0)
        return 0;
    int same = got.size == strlen(body) && memcmp(got.content, body, got.size) == 0 &&
               strcmp(got.media_type, MT_OCI_MANIFEST) == 0;
    if (checked_at)
        *checked_at = got.checked_at;
    metastore_manifest_dispose(&got);
    return same;
}

static void test_manifest_by_tag(void)
{
    reset_upstream();
    answer(&up.get, 200, MT_OCI_MANIFEST "; charset=utf-8", manifest_d.str, manifest);
    mirror_fetch_what_t w = what_manifest("v1", NULL, NULL);
    uint64_t fetches = mirror.fetches;
    time_t before = time(NULL);
    int64_t checked = 0;
    ok(fetch_once(&w, NULL, NULL, 0, NULL) == MIRROR_FETCH_DONE, "manifest by tag: the flight ends done");
    ok(up.gets == 1 && up.heads == 0 && strcmp(up.last, "GET manifests " REPO " v1") == 0,
       "... one GET of it upstream: %s", up.last);
    ok(stored_manifest("v1", NULL, manifest, &checked), "... stored under its tag, the same bytes");
    ok(stored_manifest(NULL, &manifest_d, manifest, NULL), "... and by its digest");
    ok(checked >= before, "... confirmed now (checked_at %lld)", (long long)checked);
    ok(metastore_repo_origin(db, REPO) == 1, "... in a repository created as mirrored");
    ok(mirror.fetches == fetches + 1, "... counted as a fetch");
}

static void test_manifest_wrong_digest(void)
{
    reset_upstream();
    answer(&up.get, 200, MT_OCI_MANIFEST, NULL, manifest2); /* asked for manifest_d, sent other bytes */
    mirror_fetch_what_t w = what_manifest(manifest_d.str, &manifest_d, NULL);
    w.local = "library/other";
    err_code_t err = ERR_INTERNAL;
    char msg[256] = "";
    uint64_t errors = mirror.errors;
    metastore_manifest_t got;
    ok(fetch_once(&w, &err, msg, sizeof(msg), NULL) == MIRROR_FETCH_FAIL && err == ERR_UNAVAILABLE,
       "manifest by digest, other bytes upstream: UNAVAILABLE");
    ok(strcmp(msg, "the upstream registry sent a manifest that does not match its digest") == 0, "... saying why: %s",
       msg);
    ok(metastore_manifest_get(db, "library/other", NULL, &manifest_d, &got) == BERTH_ENOTFOUND &&
           metastore_manifest_get(db, "library/other", NULL, &manifest2_d, &got) == BERTH_ENOTFOUND &&
           metastore_repo_origin(db, "library/other") == BERTH_ENOTFOUND,
       "... nothing stored");
    ok(mirror.errors == errors + 1, "... counted as an error");

    reset_upstream();
    answer(&up.get, 200, MT_OCI_MANIFEST, manifest2_d.str, manifest); /* by tag, the header claims another digest */
    w = what_manifest("claim", NULL, NULL);
    ok(fetch_once(&w, &err, msg, sizeof(msg), NULL) == MIRROR_FETCH_FAIL && err == ERR_UNAVAILABLE &&
           metastore_manifest_get(db, REPO, "claim", NULL, &got) == BERTH_ENOTFOUND,
       "manifest by tag whose Docker-Content-Digest does not match its bytes: UNAVAILABLE, not stored");

    reset_upstream();
    answer(&up.get, 200, "text/plain", NULL, "not a manifest");
    w = what_manifest("junk", NULL, NULL);
#define CANNOT_STORE "the upstream registry sent a manifest berth cannot store: "
    ok(fetch_once(&w, &err, msg, sizeof(msg), NULL) == MIRROR_FETCH_FAIL && err == ERR_UNAVAILABLE &&
           strncmp(msg, CANNOT_STORE, strlen(CANNOT_STORE)) == 0,
       "a body that is no manifest: UNAVAILABLE (%s)", msg);
}

static void test_upstream_errors(void)
{
    err_code_t err;
    char msg[256], retry[32];
    uint64_t errors = mirror.errors;
    digest_t d;
    digest_compute(&d, DIGEST_SHA256, "nowhere", 7);

    reset_upstream();
    answer(&up.get, 404, NULL, NULL, NULL);
    mirror_fetch_what_t w = what_manifest("v404", NULL, NULL);
    ok(fetch_once(&w, &err, msg, sizeof(msg), NULL) == MIRROR_FETCH_FAIL && err == ERR_MANIFEST_UNKNOWN &&
           strcmp(msg, "the upstream registry has no manifest v404 in " REPO) == 0,
       "upstream 404 for a manifest: MANIFEST_UNKNOWN (%s)", msg);
    reset_upstream();
    answer(&up.get, 401, NULL, NULL, NULL);
    w = what_blob(REPO, &d);
    ok(fetch_once(&w, &err, msg, sizeof(msg), NULL) == MIRROR_FETCH_FAIL && err == ERR_BLOB_UNKNOWN,
       "upstream 401 for a blob: BLOB_UNKNOWN (%s)", msg);
    ok(mirror.errors == errors, "... neither counts as an error");

    reset_upstream();
    answer(&up.get, 429, NULL, NULL, NULL);
    up.get.retry_after = "30";
    w = what_manifest("busy", NULL, NULL);
    ok(fetch_once(&w, &err, msg, sizeof(msg), retry) == MIRROR_FETCH_FAIL && err == ERR_TOOMANYREQUESTS &&
           strcmp(retry, "30") == 0,
       "upstream 429: TOOMANYREQUESTS with Retry-After %s", retry);
    reset_upstream();
    up.get.rc = -1;
    ok(fetch_once(&w, &err, msg, sizeof(msg), retry) == MIRROR_FETCH_FAIL && err == ERR_UNAVAILABLE &&
           strcmp(msg, "the upstream registry is unavailable") == 0 && retry[0] == '\0',
       "no answer: UNAVAILABLE");
    ok(mirror.errors == errors + 2, "... both count as errors");

    reset_upstream();
    char *big = malloc(5 << 20);
    memset(big, ' ', 5 << 20);
    big[(5 << 20) - 1] = '\0';
    answer(&up.get, 200, MT_OCI_MANIFEST, NULL, big);
    up.chunk = 1 << 20;
    ok(fetch_once(&w, &err, msg, sizeof(msg), NULL) == MIRROR_FETCH_FAIL && err == ERR_UNAVAILABLE &&
           strcmp(msg, "the upstream registry sent a manifest over 4194304 bytes, or stopped") == 0,
       "a manifest over the limit: UNAVAILABLE (%s)", msg);
    free(big);
}

/* Revalidating a tag whose copy is here. */
static int put_old(metastore_t *m, void *arg)
{
    manifest_t *mf;
    char err[256];
    if (manifest_parse(&mf, MT_OCI_MANIFEST, strlen(MT_OCI_MANIFEST), manifest, strlen(manifest), err, sizeof(err)) !=
        MANIFEST_OK)
        return -1;
    int rc = metastore_mirror_manifest_put(m, REPO, &manifest_d, mf, manifest, strlen(manifest), arg, 1000);
    manifest_free(mf);
    return rc;
}

static void test_revalidation(void)
{
    int64_t checked = 0;
    uint64_t fetches = mirror.fetches, stale = mirror.stale;
    ok(metastore_write(writer, put_old, "old") == 0 && stored_manifest("old", NULL, manifest, &checked) &&
           checked == 1000,
       "a tag \"old\" confirmed long ago");

    reset_upstream();
    answer(&up.head, 200, MT_OCI_MANIFEST, manifest_d.str, NULL);
    mirror_fetch_what_t w = what_manifest("old", NULL, &manifest_d);
    time_t before = time(NULL);
    ok(fetch_once(&w, NULL, NULL, 0, NULL) == MIRROR_FETCH_DONE, "revalidation, the same digest upstream: done");
    ok(up.heads == 1 && up.gets == 0 && strcmp(up.last, "HEAD manifests " REPO " old") == 0, "... by one HEAD, no GET");
    int same = stored_manifest("old", NULL, manifest, &checked);
    ok(same && checked >= before, "... only checked_at moved (%lld)", (long long)checked);
    ok(mirror.fetches == fetches && mirror.stale == stale, "... no fetch counted");

    metastore_write(writer, put_old, "old");
    reset_upstream();
    answer(&up.head, 503, NULL, NULL, NULL);
    ok(fetch_once(&w, NULL, NULL, 0, NULL) == MIRROR_FETCH_DONE && up.gets == 0,
       "the upstream fails the HEAD: done, no GET");
    ok(stored_manifest("old", NULL, manifest, &checked) && checked == 1000, "... the stale copy served as it is");
    ok(mirror.stale == stale + 1, "... counted as stale");

    reset_upstream();
    answer(&up.head, 200, MT_OCI_MANIFEST, manifest2_d.str, NULL);
    up.get.rc = -1;
    ok(fetch_once(&w, NULL, NULL, 0, NULL) == MIRROR_FETCH_DONE && up.gets == 1 && mirror.stale == stale + 2,
       "the tag moved but the GET fails: the stale copy is served");
    ok(mirror.fetches == fetches + 1, "... the GET counted as a fetch");

    reset_upstream();
    answer(&up.head, 200, MT_OCI_MANIFEST, manifest2_d.str, NULL);
    answer(&up.get, 200, MT_OCI_MANIFEST, manifest2_d.str, manifest2);
    ok(fetch_once(&w, NULL, NULL, 0, NULL) == MIRROR_FETCH_DONE && stored_manifest("old", NULL, manifest2, &checked) &&
           checked >= before,
       "the tag moved: the new manifest is fetched, and the tag points at it");

    reset_upstream();
    answer(&up.head, 404, NULL, NULL, NULL);
    err_code_t err;
    char msg[256];
    metastore_manifest_t got;
    ok(fetch_once(&w, &err, msg, sizeof(msg), NULL) == MIRROR_FETCH_FAIL && err == ERR_MANIFEST_UNKNOWN &&
           strcmp(msg, "the upstream registry no longer has " REPO ":old") == 0,
       "the tag is gone upstream: MANIFEST_UNKNOWN (%s)", msg);
    ok(metastore_manifest_get(db, REPO, "old", NULL, &got) == BERTH_ENOTFOUND &&
           stored_manifest(NULL, &manifest2_d, manifest2, NULL),
       "... the tag is deleted here, the manifest stays");
}

/* ---- blobs ---- */

static char blob[3000];
static digest_t blob_d;
static follower_t *watched;
static int watched_wakes;
static uint64_t watched_off;
static char seen[256]; /* what `watched` saw at each wake-up: b(ody) and the bytes there */

/* Between the upstream's pieces, the watched follower takes its wake-up, if any, and sends what arrived (as a
 * request's pump does), which leaves it caught up and asking to be woken again. */
static void watch(void)
{
    int wakes = wakes_of(watched);
    if (wakes == watched_wakes)
        return;
    watched_wakes = wakes;
    mirror_fetch_progress_t p;
    mirror_fetch_state_t st = poll_state(watched, watched_off, &p);
    size_t n = strlen(seen);
    snprintf(seen + n, sizeof(seen) - n, "%s%c%llu", n ? " " : "", "wbdf"[st], (unsigned long long)p.have);
    if (st == MIRROR_FETCH_BODY && p.have > watched_off) {
        watched_off = p.have;
        mirror_follower_poll(&watched->mf, watched_off, &p);
    }
}

static void test_blob(void)
{
    char path[BLOBSTORE_PATH_MAX];
    uint64_t size;
    for (size_t i = 0; i < sizeof(blob); ++i)
        blob[i] = (char)('a' + i % 26);
    digest_compute(&blob_d, DIGEST_SHA256, blob, sizeof(blob));
    reset_upstream();
    up.get = (answer_t){0, 200, "application/octet-stream", NULL, NULL, blob, sizeof(blob)};
    up.between = watch;
    follower_t fo;
    mirror_fetch_what_t w = what_blob(REPO, &blob_d);
    watched = &fo;
    watched_wakes = 0;
    watched_off = 0;
    seen[0] = '\0';
    ok(follow(&fo, &w) == 1, "blob: the first follower starts the flight");
    mirror_fetch_progress_t p;
    ok(poll_state(&fo, watched_off, &p) == MIRROR_FETCH_DONE && p.have == sizeof(blob) && p.size == sizeof(blob),
       "... it ends done, with all %zu bytes", sizeof(blob));
    ok(strcmp(seen, "b0 b1000 b2000 b3000") == 0, "... the follower was woken as the body began and at each piece: %s",
       seen);
    ok(wakes_of(&fo) == 5, "... and once more at the end (%d wake-ups)", wakes_of(&fo));
    char buf[sizeof(blob)];
    ok(pread(p.fd, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf) && memcmp(buf, blob, sizeof(blob)) == 0,
       "... the flight's file holds the bytes");
    char want[300];
    snprintf(want, sizeof(want), "GET blobs " REPO " %s", blob_d.str);
    ok(up.gets == 1 && strcmp(up.last, want) == 0, "... one GET upstream: %s", up.last);
    leave(&fo);
    blobstore_path(&blobs, &blob_d, path, sizeof(path));
    ok(tap_file_equals(path, blob, sizeof(blob)), "... the blob file is in place: %s", path + strlen(root));
    int rc = metastore_blob_get(db, REPO, &blob_d, &size);
    ok(rc == 0 && size == sizeof(blob), "... linked to " REPO ", %llu bytes", (unsigned long long)size);
    ok(tmp_is_empty(), "... no temporary file left");

    /* another repository: the file is here already, the upstream need only confirm the repository has it */
    reset_upstream();
    answer(&up.head, 200, NULL, NULL, NULL);
    w = what_blob("library/busybox", &blob_d);
    ok(fetch_once(&w, NULL, NULL, 0, NULL) == MIRROR_FETCH_DONE && up.heads == 1 && up.gets == 0 &&
           metastore_blob_get(db, "library/busybox", &blob_d, &size) == 0,
       "a blob already here, for another repository: one HEAD upstream, then linked");
    reset_upstream();
    answer(&up.head, 404, NULL, NULL, NULL);
    w = what_blob("library/nope", &blob_d);
    err_code_t err;
    ok(fetch_once(&w, &err, NULL, 0, NULL) == MIRROR_FETCH_FAIL && err == ERR_BLOB_UNKNOWN &&
           metastore_blob_get(db, "library/nope", &blob_d, &size) == BERTH_ENOTFOUND,
       "... which the upstream does not have there: BLOB_UNKNOWN, not linked");
}

static void test_blob_wrong_bytes(void)
{
    char path[BLOBSTORE_PATH_MAX], msg[256];
    digest_t d;
    uint64_t size;
    err_code_t err;
    digest_compute(&d, DIGEST_SHA256, "good bytes", 10);
    reset_upstream();
    answer(&up.get, 200, "application/octet-stream", NULL, "evil bytes");
    mirror_fetch_what_t w = what_blob(REPO, &d);
    ok(fetch_once(&w, &err, msg, sizeof(msg), NULL) == MIRROR_FETCH_FAIL && err == ERR_UNAVAILABLE &&
           strcmp(msg, "the upstream registry sent a blob that does not match its digest") == 0,
       "a blob whose bytes do not match its digest: UNAVAILABLE (%s)", msg);
    blobstore_path(&blobs, &d, path, sizeof(path));
    ok(access(path, F_OK) != 0 && metastore_blob_get(db, REPO, &d, &size) == BERTH_ENOTFOUND,
       "... no blob file, no link");
    ok(tmp_is_empty(), "... no temporary file left");

    reset_upstream();
    answer(&up.get, 200, "application/octet-stream", NULL, "good bytes");
    up.chunk = 4;
    up.cut = 4;
    ok(fetch_once(&w, &err, msg, sizeof(msg), NULL) == MIRROR_FETCH_FAIL && err == ERR_UNAVAILABLE &&
           strcmp(msg, "the upstream registry stopped sending the blob") == 0 && access(path, F_OK) != 0 &&
           tmp_is_empty(),
       "a blob cut short: UNAVAILABLE (%s), nothing left behind", msg);
}

/* ---- single flight ---- */

static void test_single_flight(void)
{
    follower_t a, b, c;
    mirror_fetch_progress_t p;
    reset_upstream();
    answer(&up.get, 200, MT_OCI_MANIFEST, NULL, manifest);
    spawn_mode = 1;
    mirror_fetch_what_t w = what_manifest("sf", NULL, NULL);
    ok(follow(&a, &w) == 1 && follow(&b, &w) == 0 && nqueued == 1,
       "two requests for one manifest: one flight, one fetch queued");
    ok(poll_state(&a, 0, NULL) == MIRROR_FETCH_WAIT && poll_state(&b, 0, NULL) == MIRROR_FETCH_WAIT, "... both wait");
    mirror_fetch_what_t w2 = what_manifest("sf2", NULL, NULL);
    ok(follow(&c, &w2) == 1 && nqueued == 2, "another tag: a flight of its own");
    leave(&c); /* its request went away: the fetch goes on */
    run_queued();
    ok(up.gets == 2, "... one GET upstream for each tag");
    ok(wakes_of(&a) == 1 && wakes_of(&b) == 1, "... both followers woken once");
    ok(poll_state(&a, 0, NULL) == MIRROR_FETCH_DONE && poll_state(&b, 0, &p) == MIRROR_FETCH_DONE,
       "... both see it done");
    ok(strcmp(p.what->ref, "sf") == 0 && strcmp(p.what->local, REPO) == 0, "... the flight's copy of what it fetched");
    leave(&a);
    leave(&b);
    ok(stored_manifest("sf", NULL, manifest, NULL) && stored_manifest("sf2", NULL, manifest, NULL),
       "... both stored, the one nobody waited for too");

    /* for real, with the fetch on its own thread: a second request arrives while the upstream is slow */
    digest_t d;
    static char body[200000];
    memset(body, 'x', sizeof(body));
    digest_compute(&d, DIGEST_SHA256, body, sizeof(body));
    reset_upstream();
    up.get = (answer_t){0, 200, "application/octet-stream", NULL, NULL, body, sizeof(body)};
    up.chunk = 1000;
    spawn_mode = 2;
    pthread_mutex_lock(&up.mu);
    up.gate_closed = 1;
    pthread_mutex_unlock(&up.mu);
    w = what_blob(REPO, &d);
    int first = follow(&a, &w), second = follow(&b, &w);
    pthread_mutex_lock(&up.mu);
    up.gate_closed = 0;
    pthread_cond_broadcast(&up.cond);
    pthread_mutex_unlock(&up.mu);
    /* b reads as a streaming request would: all that arrived, then wait to be woken */
    uint64_t off = 0;
    int polls = 0;
    mirror_fetch_state_t st;
    for (;;) {
        int before = wakes_of(&b);
        st = poll_state(&b, off, &p);
        ++polls;
        if (st == MIRROR_FETCH_DONE || st == MIRROR_FETCH_FAIL)
            break;
        if (st == MIRROR_FETCH_BODY && p.have > off) { /* bytes to send: no wake-up comes for those */
            off = p.have;
            continue;
        }
        pthread_mutex_lock(&wake_mu);
        while (b.wakes == before)
            pthread_cond_wait(&wake_cond, &wake_mu);
        pthread_mutex_unlock(&wake_mu);
    }
    pthread_join(fetch_thread, NULL);
    ok(first == 1 && second == 0 && nthreads == 1, "two concurrent requests for one blob: one fetch thread");
    ok(up.gets == 1, "... one GET upstream");
    ok(st == MIRROR_FETCH_DONE && p.have == sizeof(body), "... the second follower, streaming, got to done (%d polls)",
       polls);
    ok(poll_state(&a, 0, &p) == MIRROR_FETCH_DONE && p.size == sizeof(body), "... and so did the first");
    leave(&a);
    leave(&b);
    spawn_mode = 0;
}

/* At shutdown a running transfer aborts. */
static void test_stop(const mirror_fetch_env_t *env)
{
    digest_t d;
    err_code_t err;
    char msg[256];
    digest_compute(&d, DIGEST_SHA256, "late", 4);
    reset_upstream();
    answer(&up.get, 200, "application/octet-stream", NULL, "late");
    mirror_fetch_stop();
    mirror_fetch_what_t w = what_blob(REPO, &d);
    ok(fetch_once(&w, &err, msg, sizeof(msg), NULL) == MIRROR_FETCH_FAIL && err == ERR_UNAVAILABLE && tmp_is_empty(),
       "stopping: a blob transfer aborts (%s)", msg);
    mirror_fetch_init(env);
    ok(fetch_once(&w, NULL, NULL, 0, NULL) == MIRROR_FETCH_DONE, "... and mirror_fetch_init starts afresh");
}

int main(void)
{
    if (tap_tmpdir(root, sizeof(root), "berth-fetch-test") != 0)
        return 2;
    char path[300];
    snprintf(path, sizeof(path), "%s/berth.db", root);
    ok(blobstore_init(&blobs, root) == 0 && (db = metastore_open(path, 1)) != NULL &&
           (writer = metastore_writer_start(path)) != NULL,
       "a blob store and a database in %s", root);
    mirror_fetch_env_t env = {&blobs, root, writer, 4 << 20, 1 << 20, test_spawn, fake_upstream};
    mirror_fetch_init(&env);
    make_manifests();

    test_manifest_by_tag();
    test_manifest_wrong_digest();
    test_upstream_errors();
    test_revalidation();
    test_blob();
    test_blob_wrong_bytes();
    test_single_flight();
    test_stop(&env);

    metastore_writer_stop(writer);
    metastore_close(db);
    blobstore_dispose(&blobs);
    if (tap_rmtree(root) != 0)
        return 2;
    return tap_done();
}
