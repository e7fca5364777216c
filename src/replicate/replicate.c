/* The replication engine; see replicate.h. */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "mirror/upstream.h"
#include "oci/manifest.h"
#include "oci/name.h"
#include "replicate/replicate.h"
#include "util/log.h"
#include "util/status.h"

#define ACCEPT_MANIFESTS MT_OCI_INDEX ", " MT_OCI_MANIFEST ", " MT_DOCKER_LIST ", " MT_DOCKER_MANIFEST
#define LIST_PAGE_MAX (4 << 20) /* a page of a tag list or of the catalog */
#define LIST_PAGES_MAX 1000
#define LIST_MAX 100000 /* names in a list */
#define DEPTH_MAX 4     /* an index of indexes of ...; referrers of referrers */
#define SEEN_MAX 65536  /* blobs a run remembers the destination has */
#define PARALLEL 4      /* blobs of one manifest sent at once (push): the destination's fsync per blob overlaps */

struct replicate {
    const config_t *cfg;
    size_t n;
    upstream_t **up; /* one client per rule */
};

/* One run of one rule. */
typedef struct {
    replicate_t *r;
    const config_replication_t *rule;
    upstream_t *u;
    const replicate_env_t *env;
    replicate_stats_t *st;
    int dry, fatal;     /* fatal: under mu while blob threads run */
    pthread_mutex_t mu; /* the stats, `seen`, `fatal`, while a manifest's blobs are sent by several threads */
    /* blobs the destination has, by repository there: skipped without asking again, or mounted from */
    struct seen {
        digest_t d;
        char *repo;
    } * seen;
    size_t nseen;
} run_t;

static int stopped(const run_t *x)
{
    return x->env->stop != NULL && __atomic_load_n(x->env->stop, __ATOMIC_RELAXED);
}

static void report(const run_t *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(const run_t *x, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (x->env->report != NULL)
        x->env->report(x->env->report_ctx, line);
}

/* An image failed: count it, keep the first reason. Returns -1. */
static int failed(run_t *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int failed(run_t *x, const char *fmt, ...)
{
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&x->mu);
    if (x->st->first_error[0] == '\0')
        snprintf(x->st->first_error, sizeof(x->st->first_error), "%s", msg);
    pthread_mutex_unlock(&x->mu);
    log_warn("replication %s: %s", x->rule->name, msg);
    return -1;
}

/* What the remote did, for a message: "status 503: <body>" or "no answer: <why>". A refusal of the credentials
 * stops the whole run: every further request would be refused as well. */
static const char *describe(run_t *x, const upstream_resp_t *resp, char *buf, size_t len)
{
    if (resp->status == 401 || resp->status == 403 || strstr(resp->error, "token service answered 401") != NULL ||
        strstr(resp->error, "token service answered 403") != NULL) {
        pthread_mutex_lock(&x->mu);
        x->fatal = 1;
        pthread_mutex_unlock(&x->mu);
        snprintf(buf, len, "%s refused the credentials%s (%s%.0ld%s)", x->rule->remote,
                 x->rule->username && *x->rule->username ? "" : ", none are configured", resp->status ? "status " : "",
                 resp->status, resp->status ? "" : resp->error);
    } else if (resp->status != 0) {
        snprintf(buf, len, "status %ld%s%s", resp->status, resp->error[0] ? ": " : "", resp->error);
    } else {
        snprintf(buf, len, "no answer from %s: %s", x->rule->remote, resp->error);
    }
    return buf;
}

/* ---- the rules ---- */

static char *read_password_file(const char *path, char **err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (asprintf(err, "cannot read %s: %s", path, strerror(errno)) < 0)
            *err = NULL;
        return NULL;
    }
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    char *p = strdup(buf);
    explicit_bzero(buf, sizeof(buf));
    return p;
}

replicate_t *replicate_new(const config_t *cfg, char **err)
{
    *err = NULL;
    replicate_t *r = calloc(1, sizeof(*r));
    r->cfg = cfg;
    r->n = cfg->nreplication;
    r->up = calloc(r->n ? r->n : 1, sizeof(*r->up));
    if (r->n > 0 && upstream_global_init() != 0) {
        *err = strdup("replication needs libcurl (Debian package libcurl4)");
        replicate_free(r);
        return NULL;
    }
    for (size_t i = 0; i < r->n; ++i) {
        const config_replication_t *rule = &cfg->replication[i];
        char *pw = rule->password_file != NULL ? read_password_file(rule->password_file, err) : NULL;
        if (rule->password_file != NULL && pw == NULL) {
            replicate_free(r);
            return NULL;
        }
        upstream_opts_t o = {rule->remote,     rule->username, pw ? pw : rule->password, rule->timeout_ms,
                             rule->tls_verify, rule->ca_file,  "berth-replicate"};
        r->up[i] = upstream_open(&o);
        if (pw != NULL) {
            explicit_bzero(pw, strlen(pw));
            free(pw);
        }
    }
    return r;
}

void replicate_free(replicate_t *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; ++i)
        upstream_free(r->up[i]);
    free(r->up);
    free(r);
}

size_t replicate_count(const replicate_t *r)
{
    return r->n;
}

long replicate_find(const replicate_t *r, const char *name)
{
    for (size_t i = 0; i < r->n; ++i)
        if (strcmp(r->cfg->replication[i].name, name) == 0)
            return (long)i;
    return -1;
}

const config_replication_t *replicate_rule(const replicate_t *r, size_t i)
{
    return &r->cfg->replication[i];
}

int replicate_map_name(const config_replication_t *rule, const char *name, int to_remote, char *out)
{
    const char *from = to_remote ? rule->local_prefix : rule->remote_prefix;
    const char *to = to_remote ? rule->remote_prefix : rule->local_prefix;
    size_t fl = from ? strlen(from) : 0, tl = to ? strlen(to) : 0, nl = strlen(name);
    if (nl <= fl || (fl > 0 && strncmp(name, from, fl) != 0) || tl + nl - fl > NAME_MAX_LEN)
        return -1;
    memcpy(out, to ? to : "", tl);
    memcpy(out + tl, name + fl, nl - fl + 1);
    return name_valid(out, strlen(out)) ? 0 : -1;
}

/* 1 if the source's name `name` matches one of the rule's patterns. */
static int matches(const config_replication_t *rule, const char *name)
{
    for (size_t i = 0; i < rule->nrepositories; ++i)
        if (config_glob_match(rule->repositories[i], name, strlen(name)))
            return 1;
    return 0;
}

static int tag_matches(const config_replication_t *rule, const char *tag)
{
    return rule->tags == NULL || config_glob_match(rule->tags, tag, strlen(tag));
}

int replicate_covers(const replicate_t *r, size_t i, const char *repo)
{
    const config_replication_t *rule = &r->cfg->replication[i];
    char remote[NAME_MAX_LEN + 1];
    return !rule->pull && matches(rule, repo) && replicate_map_name(rule, repo, 1, remote) == 0;
}

/* ---- lists of names ---- */

typedef struct {
    char **v;
    size_t n;
} names_t;

static void names_add(void *ctx, const char *name)
{
    names_t *l = ctx;
    if (l->n >= LIST_MAX)
        return;
    if ((l->n & (l->n - 1)) == 0 || l->n == 0) {
        char **grown = realloc(l->v, (l->n ? l->n * 2 : 16) * sizeof(*grown));
        if (grown == NULL)
            return;
        l->v = grown;
    }
    l->v[l->n++] = strdup(name);
}

static void names_free(names_t *l)
{
    for (size_t i = 0; i < l->n; ++i)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* ---- the blobs the destination has ---- */

static const char *seen_in(const run_t *x, const digest_t *d, const char *repo)
{
    const char *other = NULL;
    for (size_t i = 0; i < x->nseen; ++i) {
        if (!digest_equal(&x->seen[i].d, d))
            continue;
        if (repo != NULL && strcmp(x->seen[i].repo, repo) == 0)
            return x->seen[i].repo;
        other = x->seen[i].repo;
    }
    return repo == NULL ? other : NULL;
}

static void remember(run_t *x, const digest_t *d, const char *repo)
{
    if (x->nseen >= SEEN_MAX || seen_in(x, d, repo) != NULL)
        return;
    if ((x->nseen & (x->nseen - 1)) == 0) {
        struct seen *grown = realloc(x->seen, (x->nseen ? x->nseen * 2 : 64) * sizeof(*grown));
        if (grown == NULL)
            return;
        x->seen = grown;
    }
    x->seen[x->nseen].d = *d;
    x->seen[x->nseen].repo = strdup(repo);
    x->nseen++;
}

/* ---- requests ---- */

typedef struct {
    char *buf;
    size_t len, max;
} body_t;

static int body_data(void *ctx, const void *p, size_t n)
{
    body_t *b = ctx;
    if (b->len + n > b->max)
        return -1;
    if (b->buf == NULL && (b->buf = malloc(b->max + 1)) == NULL)
        return -1;
    memcpy(b->buf + b->len, p, n);
    b->len += n;
    b->buf[b->len] = '\0';
    return 0;
}

/* A request of this run: `push` asks for a push token, which every request of a push rule does so that one token
 * serves them all. */
static int request(run_t *x, const char *method, const char *name, const char *path, const char *accept, body_t *body,
                   upstream_resp_t *resp)
{
    upstream_sink_t sink = {NULL, body_data, body};
    upstream_req_t rq = {.method = method,
                         .name = name,
                         .path = path,
                         .accept = accept,
                         .push = !x->rule->pull,
                         .whole_timeout = 1,
                         .fd = -1,
                         .stop = x->env->stop};
    return upstream_request(x->u, &rq, body != NULL ? &sink : NULL, resp);
}

/* The next page of a list, from a Link header: `</v2/...?last=x&n=100>; rel="next"`; 0 and the path in `out`. */
static int next_page(const char *link, char *out, size_t len)
{
    const char *a = strchr(link, '<'), *b = a ? strchr(a, '>') : NULL;
    if (a == NULL || b == NULL || (size_t)(b - a) >= len || strstr(b, "next") == NULL)
        return -1;
    memcpy(out, a + 1, (size_t)(b - a - 1));
    out[b - a - 1] = '\0';
    return 0;
}

/* Every page of the remote's tag list of `name` (or its catalog, name NULL), each entry checked against the
 * grammar. 0, or -1 (reported). */
static int remote_list(run_t *x, const char *name, names_t *out)
{
    char path[1024];
    if (name != NULL)
        snprintf(path, sizeof(path), "/v2/%s/tags/list?n=1000", name);
    else
        snprintf(path, sizeof(path), "/v2/_catalog?n=1000");
    for (int page = 0; page < LIST_PAGES_MAX && !stopped(x); ++page) {
        body_t b = {NULL, 0, LIST_PAGE_MAX};
        upstream_resp_t resp;
        char why[400];
        int rc = request(x, "GET", name, path, "application/json", &b, &resp);
        if (rc != 0 || resp.status != 200) {
            free(b.buf);
            if (rc == 0 && resp.status == 404 && name != NULL)
                return 0; /* no such repository there: nothing to pull */
            return failed(x, "cannot list %s at %s: %s", name ? name : "the repositories", x->rule->remote,
                          describe(x, &resp, why, sizeof(why)));
        }
        json_t *j = json_loadb(b.buf ? b.buf : "", b.len, 0, NULL);
        free(b.buf);
        json_t *arr = json_object_get(j, name ? "tags" : "repositories");
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v) {
            const char *s = json_string_value(v);
            size_t n = s ? strlen(s) : 0;
            if (s != NULL && (name ? tag_valid(s, n) : name_valid(s, n)))
                names_add(out, s);
            else
                log_warn("replication %s: %s sent an invalid %s in a list; ignored", x->rule->name, x->rule->remote,
                         name ? "tag" : "repository name");
        }
        json_decref(j);
        if (resp.link[0] == '\0' || next_page(resp.link, path, sizeof(path)) != 0)
            return 0;
    }
    return 0;
}

/* ---- push: berth -> the remote ---- */

/* The remote has blob `d` in `rrepo`: 1, 0 not, -1 (reported) no answer. */
static int remote_has_blob(run_t *x, const char *rrepo, const digest_t *d)
{
    char path[600], why[400];
    upstream_resp_t resp;
    snprintf(path, sizeof(path), "/v2/%s/blobs/%s", rrepo, d->str);
    if (request(x, "HEAD", rrepo, path, NULL, NULL, &resp) != 0 || (resp.status != 200 && resp.status != 404))
        return failed(x, "HEAD blob %s in %s: %s", d->str, rrepo, describe(x, &resp, why, sizeof(why)));
    return resp.status == 200;
}

/* The remote's digest for manifest `ref` of `rrepo` in *d: 1, 0 absent, -1 (reported) no answer. */
static int remote_manifest(run_t *x, const char *rrepo, const char *ref, digest_t *d)
{
    char path[600], why[400];
    upstream_resp_t resp;
    snprintf(path, sizeof(path), "/v2/%s/manifests/%s", rrepo, ref);
    if (request(x, "HEAD", rrepo, path, ACCEPT_MANIFESTS, NULL, &resp) != 0 ||
        (resp.status != 200 && resp.status != 404))
        return failed(x, "HEAD manifest %s:%s: %s", rrepo, ref, describe(x, &resp, why, sizeof(why)));
    if (resp.status == 404)
        return 0;
    return digest_parse(d, resp.digest, strlen(resp.digest)) == DIGEST_OK ? 1 : 0; /* no digest: put it again */
}

/* Count a blob the destination has now (present, sent or mounted), under the lock. */
static void blob_done(run_t *x, const digest_t *d, const char *rrepo, uint64_t *counter, uint64_t bytes)
{
    pthread_mutex_lock(&x->mu);
    ++*counter;
    x->st->bytes += bytes;
    remember(x, d, rrepo);
    pthread_mutex_unlock(&x->mu);
}

/* Send blob `ref` to `rrepo` unless it has it; thread-safe (several run at once for one manifest's blobs). */
static int push_blob(run_t *x, const char *rrepo, const manifest_ref_t *ref)
{
    const digest_t *d = &ref->digest;
    char path[2600], why[400], from[NAME_MAX_LEN + 1] = "";
    upstream_resp_t resp;
    pthread_mutex_lock(&x->mu);
    const char *known = seen_in(x, d, rrepo), *other = known ? NULL : seen_in(x, d, NULL);
    if (other != NULL)
        snprintf(from, sizeof(from), "%s", other);
    pthread_mutex_unlock(&x->mu);
    if (known != NULL)
        return 0;
    int has = remote_has_blob(x, rrepo, d);
    if (has != 0) {
        if (has > 0)
            blob_done(x, d, rrepo, &x->st->present, 0);
        return has < 0 ? -1 : 0;
    }
    uint64_t size;
    int fd = blobstore_open(x->env->blobs, d, &size);
    if (fd < 0)
        return failed(x, "blob %s is not in the store here (a sparse manifest?)", d->str);
    if (x->dry) {
        close(fd);
        blob_done(x, d, rrepo, &x->st->blobs, size);
        return 0;
    }
    /* a blob the remote has in another repository is mounted from there, not sent again */
    if (from[0] != '\0')
        snprintf(path, sizeof(path), "/v2/%s/blobs/uploads/?mount=%s&from=%s", rrepo, d->str, from);
    else
        snprintf(path, sizeof(path), "/v2/%s/blobs/uploads/", rrepo);
    if (request(x, "POST", rrepo, path, NULL, NULL, &resp) != 0 || (resp.status != 201 && resp.status != 202)) {
        close(fd);
        return failed(x, "cannot start an upload to %s: %s", rrepo, describe(x, &resp, why, sizeof(why)));
    }
    if (resp.status == 201) {
        close(fd);
        blob_done(x, d, rrepo, &x->st->mounted, 0);
        return 0;
    }
    if (resp.location[0] == '\0') {
        close(fd);
        return failed(x, "%s started an upload to %s without a Location", x->rule->remote, rrepo);
    }
    snprintf(path, sizeof(path), "%s%cdigest=%s", resp.location, strchr(resp.location, '?') ? '&' : '?', d->str);
    upstream_req_t rq = {.method = "PUT",
                         .name = rrepo,
                         .path = path,
                         .content_type = "application/octet-stream",
                         .push = 1,
                         .fd = fd,
                         .off = 0,
                         .len = size,
                         .stop = x->env->stop};
    int rc = upstream_request(x->u, &rq, NULL, &resp);
    close(fd);
    if (rc != 0 || resp.status != 201)
        return failed(x, "cannot upload blob %s to %s: %s", d->str, rrepo, describe(x, &resp, why, sizeof(why)));
    blob_done(x, d, rrepo, &x->st->blobs, size);
    return 0;
}

/* A manifest's blobs, sent by up to PARALLEL threads: each takes the next blob not taken yet. */
typedef struct {
    run_t *x;
    const char *rrepo;
    const manifest_ref_t **refs;
    size_t n, next;
    int rc;
} blob_jobs_t;

static void *blob_worker(void *arg)
{
    blob_jobs_t *j = arg;
    for (;;) {
        pthread_mutex_lock(&j->x->mu);
        size_t i = j->next++;
        int give_up = j->x->fatal;
        pthread_mutex_unlock(&j->x->mu);
        if (i >= j->n || give_up || stopped(j->x))
            return NULL;
        if (push_blob(j->x, j->rrepo, j->refs[i]) != 0) {
            pthread_mutex_lock(&j->x->mu);
            j->rc = -1;
            pthread_mutex_unlock(&j->x->mu);
        }
    }
}

static int push_blobs(run_t *x, const char *rrepo, const manifest_ref_t **refs, size_t n)
{
    blob_jobs_t j = {x, rrepo, refs, n, 0, 0};
    pthread_t threads[PARALLEL - 1];
    size_t started = 0;
    for (; !x->dry && started < PARALLEL - 1 && started + 1 < n; ++started)
        if (pthread_create(&threads[started], NULL, blob_worker, &j) != 0)
            break;
    blob_worker(&j); /* this thread is one of them */
    for (size_t i = 0; i < started; ++i)
        pthread_join(threads[i], NULL);
    return j.rc;
}

static int push_manifest(run_t *x, const char *lrepo, const char *rrepo, const metastore_manifest_t *lm,
                         const char *tag, int depth);

/* The manifests of `lrepo` whose subject is `subject`, sent to the remote if it lacks them. */
static void referrer_cb(void *ctx, const metastore_referrer_t *r)
{
    names_add(ctx, r->digest);
}

static int push_referrers_of(run_t *x, const char *lrepo, const char *rrepo, const digest_t *subject, int depth)
{
    names_t refs = {0};
    int rc = 0;
    if (depth >= DEPTH_MAX || metastore_referrers(x->env->db, lrepo, subject, NULL, referrer_cb, &refs) <= 0)
        return 0;
    for (size_t i = 0; i < refs.n && rc == 0 && !x->fatal && !stopped(x); ++i) {
        digest_t d, there;
        metastore_manifest_t lm;
        if (digest_parse(&d, refs.v[i], strlen(refs.v[i])) != DIGEST_OK)
            continue;
        int has = remote_manifest(x, rrepo, d.str, &there);
        if (has < 0) {
            rc = -1;
        } else if (has == 0) {
            if (metastore_manifest_get(x->env->db, lrepo, NULL, &d, &lm) != 0)
                continue; /* deleted meanwhile */
            rc = push_manifest(x, lrepo, rrepo, &lm, NULL, depth + 1);
            metastore_manifest_dispose(&lm);
        }
        if (rc == 0)
            rc = push_referrers_of(x, lrepo, rrepo, &d, depth + 1);
    }
    names_free(&refs);
    return rc;
}

/* Put manifest `lm` (with what it references first) at `rrepo`, by `tag` or else by digest. */
static int push_manifest(run_t *x, const char *lrepo, const char *rrepo, const metastore_manifest_t *lm,
                         const char *tag, int depth)
{
    manifest_t *mf;
    char err[256], path[600], why[400];
    if (depth > DEPTH_MAX)
        return failed(x, "%s@%s: manifests nested too deep", lrepo, lm->digest.str);
    if (manifest_parse(&mf, lm->media_type, strlen(lm->media_type), lm->content, lm->size, err, sizeof(err)) !=
        MANIFEST_OK)
        return failed(x, "%s@%s: %s", lrepo, lm->digest.str, err);
    int rc = 0;
    const manifest_ref_t **blobs = calloc(mf->nrefs ? mf->nrefs : 1, sizeof(*blobs));
    size_t nblobs = 0;
    for (size_t i = 0; i < mf->nrefs && rc == 0 && !stopped(x); ++i) {
        const manifest_ref_t *ref = &mf->refs[i];
        if (ref->kind == REF_MANIFEST) {
            digest_t there;
            int has = remote_manifest(x, rrepo, ref->digest.str, &there);
            if (has < 0) {
                rc = -1;
            } else if (has == 0) {
                metastore_manifest_t child;
                if (metastore_manifest_get(x->env->db, lrepo, NULL, &ref->digest, &child) != 0) {
                    rc = failed(x, "%s@%s: its child %s is not here", lrepo, lm->digest.str, ref->digest.str);
                } else {
                    rc = push_manifest(x, lrepo, rrepo, &child, NULL, depth + 1);
                    metastore_manifest_dispose(&child);
                }
            }
        } else if (!ref->foreign) {
            blobs[nblobs++] = ref;
        }
    }
    if (rc == 0 && nblobs > 0)
        rc = push_blobs(x, rrepo, blobs, nblobs);
    free(blobs);
    manifest_free(mf);
    if (rc != 0 || stopped(x))
        return -1;
    if (x->dry) {
        x->st->manifests++;
        return 0;
    }
    upstream_resp_t resp;
    snprintf(path, sizeof(path), "/v2/%s/manifests/%s", rrepo, tag ? tag : lm->digest.str);
    upstream_req_t rq = {.method = "PUT",
                         .name = rrepo,
                         .path = path,
                         .content_type = lm->media_type,
                         .push = 1,
                         .whole_timeout = 1,
                         .fd = -1,
                         .mem = lm->content,
                         .len = lm->size,
                         .stop = x->env->stop};
    if (upstream_request(x->u, &rq, NULL, &resp) != 0 || resp.status != 201)
        return failed(x, "cannot put manifest %s:%s: %s", rrepo, tag ? tag : lm->digest.str,
                      describe(x, &resp, why, sizeof(why)));
    digest_t said;
    if (digest_parse(&said, resp.digest, strlen(resp.digest)) == DIGEST_OK && !digest_equal(&said, &lm->digest))
        return failed(x, "%s stored manifest %s:%s as %s, not %s", x->rule->remote, rrepo, tag ? tag : lm->digest.str,
                      said.str, lm->digest.str);
    x->st->manifests++;
    return 0;
}

/* One tag of a local repository. */
static int push_tag(run_t *x, const char *lrepo, const char *rrepo, const char *tag)
{
    metastore_manifest_t lm;
    digest_t there;
    if (metastore_manifest_get(x->env->db, lrepo, tag, NULL, &lm) != 0)
        return 0; /* deleted since it was listed */
    uint64_t b0 = x->st->blobs, by0 = x->st->bytes;
    int rc = remote_manifest(x, rrepo, tag, &there);
    if (rc > 0 && digest_equal(&there, &lm.digest)) {
        x->st->uptodate++;
        rc = 0;
    } else if (rc >= 0) {
        rc = push_manifest(x, lrepo, rrepo, &lm, tag, 0);
        if (rc == 0) {
            x->st->images++;
            report(x, "%s %s:%s (%s) to %s/%s: %llu blobs, %llu bytes", x->dry ? "would push" : "pushed", lrepo, tag,
                   lm.digest.str, x->rule->remote, rrepo, (unsigned long long)(x->st->blobs - b0),
                   (unsigned long long)(x->st->bytes - by0));
        }
    }
    if (rc == 0 && !x->fatal)
        rc = push_referrers_of(x, lrepo, rrepo, &lm.digest, 0);
    metastore_manifest_dispose(&lm);
    return rc;
}

static int push_repo(run_t *x, const char *lrepo)
{
    char rrepo[NAME_MAX_LEN + 1];
    names_t tags = {0};
    if (replicate_map_name(x->rule, lrepo, 1, rrepo) != 0)
        return 0;
    if (metastore_tags_list(x->env->db, lrepo, NULL, -1, names_add, &tags) < 0) {
        names_free(&tags);
        return 0; /* not a repository (any more) */
    }
    int rc = 0;
    for (size_t i = 0; i < tags.n && !x->fatal && !stopped(x); ++i) {
        if (!tag_matches(x->rule, tags.v[i]))
            continue;
        if (push_tag(x, lrepo, rrepo, tags.v[i]) != 0) {
            x->st->errors++;
            rc = -1;
        }
    }
    names_free(&tags);
    return rc;
}

/* ---- pull: the remote -> berth ---- */

typedef struct {
    const char *repo;
    const digest_t *d;
    uint64_t size;
    const blobstore_t *blobs;
    const manifest_t *mf;
    const void *body;
    size_t len;
    const char *tag;
    metastore_bad_ref_t bad;
} store_op_t;

/* The file is checked inside the write transaction: the collector removes a blob file only under the write lock. */
static int link_blob(metastore_t *m, void *arg)
{
    store_op_t *o = arg;
    if (!blobstore_has(o->blobs, o->d))
        return BERTH_ENOTFOUND;
    return metastore_blob_link(m, o->repo, o->d, o->size);
}

static int mount_blob(metastore_t *m, void *arg)
{
    store_op_t *o = arg;
    if (!blobstore_has(o->blobs, o->d))
        return BERTH_ENOTFOUND;
    return metastore_blob_mount(m, o->repo, o->d);
}

static int put_manifest(metastore_t *m, void *arg)
{
    store_op_t *o = arg;
    const char *tags[1] = {o->tag};
    return metastore_manifest_put(m, o->repo, o->d, o->mf, o->body, o->len, tags, o->tag ? 1 : 0, 0, &o->bad);
}

typedef struct {
    run_t *x;
    int fd;
    digest_hasher_t *h;
    uint64_t have, limit;
    int failed;
} blob_sink_t;

static int blob_data(void *ctx, const void *p, size_t n)
{
    blob_sink_t *b = ctx;
    if (stopped(b->x) || b->have + n > b->limit)
        return -1;
    for (size_t done = 0; done < n;) {
        ssize_t w = write(b->fd, (const char *)p + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            b->failed = errno ? errno : EIO;
            return -1;
        }
        done += (size_t)w;
    }
    digest_hasher_update(b->h, p, n);
    b->have += n;
    return 0;
}

static int pull_blob(run_t *x, const char *rrepo, const char *lrepo, const manifest_ref_t *ref)
{
    const digest_t *d = &ref->digest;
    uint64_t size;
    char why[400], path[600], tmp[BLOBSTORE_PATH_MAX];
    if (metastore_blob_get(x->env->db, lrepo, d, &size) == 0) {
        x->st->present++;
        return 0;
    }
    store_op_t o = {.repo = lrepo, .d = d, .blobs = x->env->blobs};
    if (blobstore_has(x->env->blobs, d)) {
        /* another repository here has it: link it, as a mount would */
        if (x->dry) {
            x->st->mounted++;
            return 0;
        }
        if (x->env->write(x->env->write_ctx, mount_blob, &o) == 0) {
            x->st->mounted++;
            return 0;
        }
    }
    if (x->dry) {
        x->st->blobs++;
        x->st->bytes += ref->size > 0 ? (uint64_t)ref->size : 0;
        return 0;
    }
    uint64_t limit = x->env->blob_max_size;
    if (ref->size >= 0 && (uint64_t)ref->size < limit)
        limit = (uint64_t)ref->size;
    snprintf(tmp, sizeof(tmp), "%s/tmp/replicate.XXXXXX", x->env->storage_root);
    blob_sink_t b = {x, mkstemp(tmp), digest_hasher_new(d->algo), 0, limit, 0};
    if (b.fd < 0) {
        digest_hasher_free(b.h);
        return failed(x, "cannot create %s: %s", tmp, strerror(errno));
    }
    upstream_sink_t sink = {NULL, blob_data, &b};
    upstream_resp_t resp;
    snprintf(path, sizeof(path), "/v2/%s/blobs/%s", rrepo, d->str);
    upstream_req_t rq = {.method = "GET", .name = rrepo, .path = path, .fd = -1, .stop = x->env->stop};
    int rc = upstream_request(x->u, &rq, &sink, &resp);
    digest_t got;
    digest_hasher_final(b.h, &got);
    digest_hasher_free(b.h);
    if (rc != 0 || resp.status != 200) {
        close(b.fd);
        unlink(tmp);
        if (b.failed)
            return failed(x, "cannot write %s: %s", tmp, strerror(b.failed));
        if (rc != 0 && resp.status == 200)
            return failed(x, "blob %s of %s: the transfer stopped after %llu bytes (or exceeded %llu)", d->str, rrepo,
                          (unsigned long long)b.have, (unsigned long long)limit);
        return failed(x, "cannot fetch blob %s of %s: %s", d->str, rrepo, describe(x, &resp, why, sizeof(why)));
    }
    if (!digest_equal(&got, d) || (ref->size >= 0 && b.have != (uint64_t)ref->size)) {
        close(b.fd);
        unlink(tmp);
        return failed(x, "blob %s of %s: %s sent %llu bytes of digest %s", d->str, rrepo, x->rule->remote,
                      (unsigned long long)b.have, got.str);
    }
    o.size = b.have;
    if (fsync(b.fd) != 0 || close(b.fd) != 0 || blobstore_commit(x->env->blobs, tmp, d) != 0) {
        unlink(tmp);
        return failed(x, "cannot store blob %s: %s", d->str, strerror(errno));
    }
    if (x->env->write(x->env->write_ctx, link_blob, &o) != 0)
        return failed(x, "cannot record blob %s in %s", d->str, lrepo);
    x->st->blobs++;
    x->st->bytes += b.have;
    return 0;
}

/* Fetch manifest `ref` of `rrepo` (a tag, or a digest, `want` then), its children and blobs, and store it in
 * `lrepo` (tagged `tag` unless NULL). `*d` gets its digest. */
static int pull_manifest(run_t *x, const char *rrepo, const char *lrepo, const char *ref, const digest_t *want,
                         const char *tag, int depth)
{
    char path[600], why[400], err[256];
    upstream_resp_t resp;
    if (depth > DEPTH_MAX)
        return failed(x, "%s@%s: manifests nested too deep", rrepo, ref);
    body_t body = {NULL, 0, x->env->manifest_max_size};
    snprintf(path, sizeof(path), "/v2/%s/manifests/%s", rrepo, ref);
    int rc = request(x, "GET", rrepo, path, ACCEPT_MANIFESTS, &body, &resp);
    if (rc != 0 || resp.status != 200) {
        free(body.buf);
        if (rc != 0 && resp.status == 200)
            return failed(x, "manifest %s:%s is over %llu bytes, or its transfer stopped", rrepo, ref,
                          (unsigned long long)body.max);
        return failed(x, "cannot fetch manifest %s:%s: %s", rrepo, ref, describe(x, &resp, why, sizeof(why)));
    }
    const char *content = body.buf ? body.buf : "";
    digest_t d, claimed;
    digest_compute(&d, want ? want->algo : DIGEST_SHA256, content, body.len);
    int has_claim = digest_parse(&claimed, resp.digest, strlen(resp.digest)) == DIGEST_OK && claimed.algo == d.algo;
    if ((want != NULL && !digest_equal(&d, want)) || (has_claim && !digest_equal(&d, &claimed))) {
        free(body.buf);
        return failed(x, "manifest %s:%s: %s sent content of digest %s", rrepo, ref, x->rule->remote, d.str);
    }
    size_t ctlen = strcspn(resp.content_type, ";");
    while (ctlen > 0 && resp.content_type[ctlen - 1] == ' ')
        --ctlen;
    manifest_t *mf;
    if (manifest_parse(&mf, resp.content_type, ctlen, content, body.len, err, sizeof(err)) != MANIFEST_OK) {
        free(body.buf);
        return failed(x, "manifest %s:%s is not one berth stores: %s", rrepo, ref, err);
    }
    rc = 0;
    for (size_t i = 0; i < mf->nrefs && rc == 0 && !stopped(x); ++i) {
        const manifest_ref_t *r = &mf->refs[i];
        if (r->kind == REF_MANIFEST) {
            metastore_manifest_t child;
            if (metastore_manifest_get(x->env->db, lrepo, NULL, &r->digest, &child) == 0)
                metastore_manifest_dispose(&child);
            else
                rc = pull_manifest(x, rrepo, lrepo, r->digest.str, &r->digest, NULL, depth + 1);
        } else if (!r->foreign) {
            rc = pull_blob(x, rrepo, lrepo, r);
        }
    }
    if (rc == 0 && stopped(x))
        rc = -1;
    if (rc == 0 && !x->dry) {
        store_op_t o = {.repo = lrepo, .d = &d, .mf = mf, .body = content, .len = body.len, .tag = tag};
        int w = x->env->write(x->env->write_ctx, put_manifest, &o);
        if (w == BERTH_EMISSING || w == BERTH_ESIZE)
            rc = failed(x, "cannot store manifest %s@%s: its reference %s is %s", lrepo, d.str, o.bad.digest.str,
                        w == BERTH_EMISSING ? "missing" : "of another size");
        else if (w != 0)
            rc = failed(x, "cannot store manifest %s@%s", lrepo, d.str);
    }
    if (rc == 0)
        x->st->manifests++;
    manifest_free(mf);
    free(body.buf);
    return rc;
}

static int pull_tag(run_t *x, const char *rrepo, const char *lrepo, const char *tag)
{
    char path[600], why[400];
    upstream_resp_t resp;
    digest_t there;
    int known = 0;
    snprintf(path, sizeof(path), "/v2/%s/manifests/%s", rrepo, tag);
    if (request(x, "HEAD", rrepo, path, ACCEPT_MANIFESTS, NULL, &resp) != 0 || resp.status / 100 != 2) {
        if (resp.status == 404)
            return 0; /* deleted since it was listed */
        return failed(x, "HEAD manifest %s:%s: %s", rrepo, tag, describe(x, &resp, why, sizeof(why)));
    }
    known = digest_parse(&there, resp.digest, strlen(resp.digest)) == DIGEST_OK;
    metastore_manifest_t lm;
    if (known && metastore_manifest_get(x->env->db, lrepo, tag, NULL, &lm) == 0) {
        int same = digest_equal(&lm.digest, &there);
        metastore_manifest_dispose(&lm);
        if (same) {
            x->st->uptodate++;
            return 0;
        }
    }
    uint64_t b0 = x->st->blobs, by0 = x->st->bytes;
    int rc = pull_manifest(x, rrepo, lrepo, tag, known ? &there : NULL, tag, 0);
    if (rc == 0) {
        x->st->images++;
        report(x, "%s %s:%s%s%s from %s/%s: %llu blobs, %llu bytes", x->dry ? "would pull" : "pulled", lrepo, tag,
               known ? " " : "", known ? there.str : "", x->rule->remote, rrepo,
               (unsigned long long)(x->st->blobs - b0), (unsigned long long)(x->st->bytes - by0));
    }
    return rc;
}

static int pull_repo(run_t *x, const char *rrepo)
{
    char lrepo[NAME_MAX_LEN + 1];
    names_t tags = {0};
    if (!matches(x->rule, rrepo) || replicate_map_name(x->rule, rrepo, 0, lrepo) != 0)
        return 0;
    if (remote_list(x, rrepo, &tags) != 0) {
        x->st->errors++;
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < tags.n && !x->fatal && !stopped(x); ++i) {
        if (!tag_matches(x->rule, tags.v[i]))
            continue;
        if (pull_tag(x, rrepo, lrepo, tags.v[i]) != 0) {
            x->st->errors++;
            rc = -1;
        }
    }
    names_free(&tags);
    return rc;
}

static int has_wildcard(const char *p)
{
    return strpbrk(p, "*?") != NULL;
}

static int run_pull(run_t *x)
{
    int rc = 0;
    names_t repos = {0}, catalog = {0};
    int listed = 0;
    for (size_t i = 0; i < x->rule->nrepositories && !x->fatal; ++i) {
        const char *p = x->rule->repositories[i];
        if (!has_wildcard(p)) {
            names_add(&repos, p);
            continue;
        }
        if (!listed) { /* a pattern: the names come from the remote's catalog */
            listed = 1;
            if (remote_list(x, NULL, &catalog) != 0) {
                x->st->errors++;
                rc = -1;
            }
        }
        for (size_t j = 0; j < catalog.n; ++j)
            if (config_glob_match(p, catalog.v[j], strlen(catalog.v[j])))
                names_add(&repos, catalog.v[j]);
    }
    for (size_t i = 0; i < repos.n && !x->fatal && !stopped(x); ++i) {
        int dup = 0;
        for (size_t j = 0; j < i && !dup; ++j)
            dup = strcmp(repos.v[i], repos.v[j]) == 0;
        if (!dup && pull_repo(x, repos.v[i]) != 0)
            rc = -1;
    }
    names_free(&repos);
    names_free(&catalog);
    return rc;
}

static int run_push(run_t *x, const char *only_repo)
{
    names_t repos = {0};
    int rc = 0;
    if (only_repo != NULL)
        names_add(&repos, only_repo);
    else if (metastore_catalog(x->env->db, NULL, -1, names_add, &repos) < 0)
        return failed(x, "cannot list the repositories here");
    for (size_t i = 0; i < repos.n && !x->fatal && !stopped(x); ++i)
        if (matches(x->rule, repos.v[i]) && push_repo(x, repos.v[i]) != 0)
            rc = -1;
    names_free(&repos);
    return rc;
}

int replicate_run(replicate_t *r, size_t i, const replicate_env_t *env, const char *only_repo, int dry_run,
                  replicate_stats_t *st)
{
    run_t x = {r, &r->cfg->replication[i], r->up[i], env, st, dry_run, 0, PTHREAD_MUTEX_INITIALIZER, NULL, 0};
    uint64_t errors = st->errors;
    int rc = x.rule->pull ? run_pull(&x) : run_push(&x, only_repo);
    if (x.fatal && st->errors == errors)
        st->errors++;
    for (size_t k = 0; k < x.nseen; ++k)
        free(x.seen[k].repo);
    free(x.seen);
    pthread_mutex_destroy(&x.mu);
    return rc != 0 || x.fatal || st->errors != errors ? -1 : 0;
}
