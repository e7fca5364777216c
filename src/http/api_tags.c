/* GET /v2/<name>/tags/list and GET /v2/_catalog, with ?n= and ?last= paging and a Link header; a mirrored
 * repository's tags are the upstream's (mirror/tags.h), paged here the same way. */
#include <stdlib.h>
#include <string.h>
#include "http/api.h"
#include "http/gate.h"
#include "http/work.h"
#include "mirror/tags.h"
#include "util/log.h"
#include "util/status.h"
#include "util/cache.h"

#define LIST_MAX 10000 /* the most names one answer carries, whatever n asks */

/*
 * Each loop remembers the pages it answered (the whole path with its query -> body and Link) in a cache
 * (util/cache.h) stamped with its store connection's generation: valid until anything is written, here or by the
 * CLI. Not for a filtered catalog, whose page depends on the caller.
 */
#define PAGE_SLOTS 256
#define PAGE_MAX (256 * 1024)
static __thread cache_t *pages; /* value: the body, then the Link header and its NUL (num[0]: body length, num[1]:
                                   1 if there is a Link) */

static void on_loop_init(thread_ctx_t *tc)
{
    if ((pages = cache_new(PAGE_SLOTS, PAGE_MAX)) != NULL)
        cache_count(pages, "list_pages");
}

static void on_loop_dispose(thread_ctx_t *tc)
{
    cache_free(pages);
    pages = NULL;
}

static void page_send(h2o_req_t *req, const cache_value_t *p)
{
    if (p->num[1])
        res_header(req, "link", (const char *)p->data + p->num[0]);
    res_bytes(req, 200, "application/json", p->data, (size_t)p->num[0]);
}

static void page_keep(h2o_req_t *req, uint64_t gen, const cache_key_t *k, const char *body, size_t len)
{
    ssize_t i = h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("link"), -1);
    size_t llen = i >= 0 ? req->res.headers.entries[i].value.len : 0;
    char *data = malloc(len + llen + 1);
    cache_value_t *v;
    if (data == NULL)
        return;
    memcpy(data, body, len);
    if (i >= 0)
        memcpy(data + len, req->res.headers.entries[i].value.base, llen);
    data[len + llen] = '\0';
    if ((v = cache_put(pages, gen, k, data, len + llen + 1)) == NULL) {
        free(data);
        return;
    }
    v->num[0] = (int64_t)len;
    v->num[1] = i >= 0;
}

typedef struct {
    json_t *arr;
    const char *last;
    route_t *r;     /* for the catalog: only what the caller may pull is listed */
    char seen[256]; /* the last name read, listed or not */
} list_t;

static void add_name(void *ctx, const char *name)
{
    list_t *l = ctx;
    snprintf(l->seen, sizeof(l->seen), "%s", name);
    if (l->r != NULL && (auth_policy_actions(l->r->tc->db, l->r->who, name) & ACTION_PULL) == 0)
        return;
    json_array_append_new(l->arr, json_string(name));
    l->last = json_string_value(json_array_get(l->arr, json_array_size(l->arr) - 1));
}

/* Read ?n= (-1 if absent); answers 400 and returns -2 when malformed. */
static long parse_n(h2o_req_t *req)
{
    const char *s = req_query(req, "n", 0);
    if (s == NULL || *s == '\0')
        return -1;
    char *end;
    long n = strtol(s, &end, 10);
    if (*end != '\0' || n < 0) {
        res_error(req, ERR_UNSUPPORTED, "n must be a non-negative integer", NULL);
        return -2;
    }
    return n;
}

/* The Link header for the next page: same path, n, and last = the final name of this page. */
static void add_link(h2o_req_t *req, const char *path, long n, const char *last)
{
    /* names and tags are made of [a-zA-Z0-9._/-] only: nothing to escape in a query */
    res_headerf(req, "link", "<%s?n=%ld&last=%s>; rel=\"next\"", path, n, last);
}

static void list(route_t *r, const char *name, const char *path)
{
    h2o_req_t *req = r->req;
    int cacheable = pages != NULL && (name != NULL || auth_mode() == MODE_OPEN);
    uint64_t gen = metastore_generation(r->tc->db);
    cache_key_t k = {0};
    const cache_value_t *hit;
    if (cacheable) {
        k = cache_key('p', h2o_strdup(&req->pool, req->path.base, req->path.len).base, "");
        if ((hit = cache_get(pages, gen, &k)) != NULL) {
            page_send(req, hit);
            return;
        }
    }
    long n = parse_n(req);
    if (n == -2)
        return;
    const char *last = req_query(req, "last", 0);
    long limit = n < 0 || n > LIST_MAX ? LIST_MAX : n;
    list_t l = {json_array(), NULL, name == NULL && auth_mode() != MODE_OPEN ? r : NULL, ""};
    int rc = 0;
    if (limit > 0 && name != NULL) {
        /* one more than asked tells whether another page follows */
        rc = metastore_tags_list(r->tc->db, name, last, limit + 1, add_name, &l);
    } else if (limit > 0) {
        /* the catalog skips what the caller may not pull: read on until the page is full or the names end */
        const char *from = last;
        for (;;) {
            long want = limit + 1 - (long)json_array_size(l.arr);
            rc = metastore_catalog(r->tc->db, from, want, add_name, &l);
            if (rc < want || (long)json_array_size(l.arr) > limit)
                break;
            from = h2o_strdup(&req->pool, l.seen, SIZE_MAX).base;
        }
        if (rc > 0)
            rc = 0;
    }
    if (rc == BERTH_ENOTFOUND) {
        json_decref(l.arr);
        res_error(req, ERR_NAME_UNKNOWN, NULL, json_pack("{s:s}", "name", name));
        return;
    }
    if (rc < 0) {
        json_decref(l.arr);
        res_error(req, ERR_INTERNAL, NULL, NULL);
        return;
    }
    if ((long)json_array_size(l.arr) > limit) {
        json_array_remove(l.arr, (size_t)limit);
        l.last = json_string_value(json_array_get(l.arr, (size_t)limit - 1));
        add_link(req, path, n < 0 ? limit : n, l.last);
    }
    json_t *body =
        name ? json_pack("{s:s,s:o}", "name", name, "tags", l.arr) : json_pack("{s:o}", "repositories", l.arr);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text == NULL) {
        res_error(req, ERR_INTERNAL, NULL, NULL);
        return;
    }
    if (cacheable)
        page_keep(req, gen, &k, text, strlen(text));
    res_bytes(req, 200, "application/json", text, strlen(text));
    free(text);
}

/* A mirrored repository's tags: the upstream's list, fetched (or taken from the kept copy) on a fetch thread. */
typedef struct {
    work_t super;
    route_t *r;
    const mirror_t *m;
    char *up;
    int rc;
    mirror_tags_t *tags;
} mirror_list_t;

static void mirror_list_run(work_t *w)
{
    mirror_list_t *ml = (mirror_list_t *)w;
    ml->rc = mirror_tags_get(ml->m, ml->up, &ml->tags);
}

/* The page of `t` that ?n= and ?last= ask for, as list() pages berth's own tags. */
static void mirror_list_send(route_t *r, const mirror_tags_t *t)
{
    h2o_req_t *req = r->req;
    long n = parse_n(req);
    if (n == -2)
        return;
    const char *last = req_query(req, "last", 0);
    long limit = n < 0 || n > LIST_MAX ? LIST_MAX : n;
    size_t lo = 0, hi = t->n; /* the first tag after `last` */
    while (last != NULL && lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(t->tags[mid], last) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = limit > 0 && (size_t)limit < t->n - lo ? lo + (size_t)limit : t->n;
    if (limit == 0)
        end = lo;
    json_t *arr = json_array();
    for (size_t i = lo; i < end; ++i)
        json_array_append_new(arr, json_string(t->tags[i]));
    if (end < t->n && end > lo) {
        char path[512];
        snprintf(path, sizeof(path), "/v2/%s/tags/list", r->name);
        add_link(req, path, n < 0 ? limit : n, t->tags[end - 1]);
    }
    json_t *body = json_pack("{s:s,s:o}", "name", r->name, "tags", arr);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text == NULL) {
        res_error(req, ERR_INTERNAL, NULL, NULL);
        return;
    }
    res_bytes(req, 200, "application/json", text, strlen(text));
    free(text);
}

static void mirror_list_done(work_t *w)
{
    mirror_list_t *ml = (mirror_list_t *)w;
    if (w->req != NULL) {
        if (ml->rc == MIRROR_TAGS_FRESH || ml->rc == MIRROR_TAGS_STALE) {
            mirror_list_send(ml->r, ml->tags);
        } else if (ml->rc == BERTH_ENOTFOUND) {
            res_error(w->req, ERR_NAME_UNKNOWN, NULL, json_pack("{s:s}", "name", ml->r->name));
        } else {
            /* the upstream failed and no list of it is kept: the tags stored here, as without a mirror */
            char path[512];
            snprintf(path, sizeof(path), "/v2/%s/tags/list", ml->r->name);
            list(ml->r, ml->r->name, path);
        }
    }
    if (ml->tags != NULL)
        mirror_tags_release(ml->tags);
    free(ml->up);
    free(ml);
}

void api_tags_list(route_t *r)
{
    if (r->mirror != NULL) {
        mirror_list_t *ml = calloc(1, sizeof(*ml));
        ml->r = r;
        ml->m = r->mirror;
        ml->up = strdup(r->upstream_name);
        work_submit_to(WORK_FETCH, r->req, &ml->super, mirror_list_run, mirror_list_done);
        return;
    }
    char path[512];
    snprintf(path, sizeof(path), "/v2/%s/tags/list", r->name);
    list(r, r->name, path);
}

void api_catalog(route_t *r)
{
    list(r, NULL, "/v2/_catalog");
}

const server_hooks_t api_tags_hooks = {.loop_init = on_loop_init, .loop_dispose = on_loop_dispose};
