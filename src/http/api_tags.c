/* GET /v2/<name>/tags/list and GET /v2/_catalog, with ?n= and ?last= paging and a Link header. */
#include <stdlib.h>
#include <string.h>
#include "http/api.h"
#include "http/gate.h"
#include "util/status.h"
#include "util/hash.h"

#define LIST_MAX 10000 /* the most names one answer carries, whatever n asks */

/*
 * Each loop remembers the pages it answered (the whole path with its query -> body and Link), valid while the
 * store's write generation stays the same. Not for a filtered catalog, whose page depends on the caller.
 */
#define PAGE_SLOTS 256
#define PAGE_MAX (256 * 1024)
typedef struct {
    uint64_t gen;
    char *key;
    char *body, *link;
    size_t len;
} page_t;
static __thread page_t *pages;

static void on_loop_dispose(thread_ctx_t *tc)
{
    for (size_t i = 0; pages != NULL && i < PAGE_SLOTS; ++i) {
        free(pages[i].key);
        free(pages[i].body);
        free(pages[i].link);
    }
    free(pages);
    pages = NULL;
}

static page_t *page_slot(h2o_req_t *req)
{
    if (pages == NULL && (pages = calloc(PAGE_SLOTS, sizeof(*pages))) == NULL)
        return NULL;
    return &pages[hash_fnv(HASH_FNV_INIT, req->path.base, req->path.len) % PAGE_SLOTS];
}

static int page_hit(page_t *p, h2o_req_t *req)
{
    return p != NULL && p->gen == metastore_generation() && p->key != NULL && strlen(p->key) == req->path.len &&
           memcmp(p->key, req->path.base, req->path.len) == 0;
}

static void page_send(h2o_req_t *req, const page_t *p)
{
    if (p->link != NULL)
        res_header(req, "link", p->link);
    res_bytes(req, 200, "application/json", p->body, p->len);
}

static void page_keep(page_t *p, h2o_req_t *req, uint64_t gen, const char *body, size_t len)
{
    if (p == NULL || len > PAGE_MAX)
        return;
    free(p->key);
    free(p->body);
    free(p->link);
    ssize_t i = h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("link"), -1);
    p->key = strndup(req->path.base, req->path.len);
    p->body = malloc(len ? len : 1);
    memcpy(p->body, body, len);
    p->len = len;
    p->link = i >= 0 ? strndup(req->res.headers.entries[i].value.base, req->res.headers.entries[i].value.len) : NULL;
    p->gen = p->key && p->body ? gen : 0;
}

typedef struct {
    json_t *arr;
    const char *last;
    route_t *r;      /* for the catalog: only what the caller may pull is listed */
    char seen[256];  /* the last name read, listed or not */
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
    int cacheable = name != NULL || auth_mode() == MODE_OPEN;
    uint64_t gen = metastore_generation();
    page_t *page = cacheable ? page_slot(req) : NULL;
    if (page_hit(page, req)) {
        page_send(req, page);
        return;
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
    json_t *body = name ? json_pack("{s:s,s:o}", "name", name, "tags", l.arr) : json_pack("{s:o}", "repositories", l.arr);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text == NULL) {
        res_error(req, ERR_INTERNAL, NULL, NULL);
        return;
    }
    page_keep(page, req, gen, text, strlen(text));
    res_bytes(req, 200, "application/json", text, strlen(text));
    free(text);
}

void api_tags_list(route_t *r)
{
    char path[512];
    snprintf(path, sizeof(path), "/v2/%s/tags/list", r->name);
    list(r, r->name, path);
}

void api_catalog(route_t *r)
{
    list(r, NULL, "/v2/_catalog");
}

const server_hooks_t api_tags_hooks = {.loop_dispose = on_loop_dispose};
