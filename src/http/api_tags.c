/* GET /v2/<name>/tags/list and GET /v2/_catalog, with ?n= and ?last= paging and a Link header. */
#include <stdlib.h>
#include <string.h>
#include "http/api.h"
#include "util/status.h"

#define LIST_MAX 10000 /* the most names one answer carries, whatever n asks */

typedef struct {
    json_t *arr;
    const char *last;
} list_t;

static void add_name(void *ctx, const char *name)
{
    list_t *l = ctx;
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

static void list(h2o_req_t *req, const char *name, const char *path)
{
    long n = parse_n(req);
    if (n == -2)
        return;
    const char *last = req_query(req, "last", 0);
    long limit = n < 0 || n > LIST_MAX ? LIST_MAX : n;
    list_t l = {json_array(), NULL};
    int rc = 0;
    if (limit > 0) {
        /* one more than asked tells whether another page follows */
        rc = name ? metastore_tags_list(thread_ctx_of(req)->db, name, last, limit + 1, add_name, &l)
                  : metastore_catalog(thread_ctx_of(req)->db, last, limit + 1, add_name, &l);
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
    res_json(req, 200, body);
}

void api_tags_list(route_t *r)
{
    char path[512];
    snprintf(path, sizeof(path), "/v2/%s/tags/list", r->name);
    list(r->req, r->name, path);
}

void api_catalog(h2o_req_t *req)
{
    list(req, NULL, "/v2/_catalog");
}
