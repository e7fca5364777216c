/* GET /v2/, the health endpoints, and small helpers shared by the handlers. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include "http/conns.h"
#include "http/api.h"

void api_base(route_t *r)
{
    res_json(r->req, 200, json_object());
}

void api_healthz(h2o_req_t *req)
{
    res_bytes(req, 200, "text/plain", H2O_STRLIT("ok\n"));
}

/* Ready when the database answers and the storage root is a writable folder. A volume below storage.min_free is
 * still ready (pulls are served) and says that pushes are refused. Not ready from the moment SIGTERM arrives, while
 * berth still serves (http.shutdown_delay: load balancers and Kubernetes stop sending before it stops accepting). */
void api_readyz(h2o_req_t *req)
{
    thread_ctx_t *tc = thread_ctx_of(req);
    struct statvfs st;
    uint64_t avail;
    if (tc->stopping || atomic_load(&berth.terminating)) {
        res_bytes(req, 503, "text/plain", H2O_STRLIT("shutting down\n"));
    } else if (metastore_ping(tc->db) != 0) {
        res_bytes(req, 503, "text/plain", H2O_STRLIT("database unavailable\n"));
    } else if (statvfs(berth.store->blobs.root, &st) != 0 || (st.f_flag & ST_RDONLY)) {
        res_bytes(req, 503, "text/plain", H2O_STRLIT("storage unavailable\n"));
    } else if (store_space(berth.store, &avail) == 1) {
        char msg[160];
        int n = snprintf(msg, sizeof(msg), "ok, but pushes are refused: %llu MiB free, below storage.min_free\n",
                         (unsigned long long)(avail >> 20));
        res_bytes(req, 200, "text/plain", msg, (size_t)n);
    } else {
        res_bytes(req, 200, "text/plain", H2O_STRLIT("ok\n"));
    }
}

void api_quota_refuse(h2o_req_t *req, const quota_t *q, uint64_t need)
{
    char msg[512], limit[32], used[32], more[32];
    quota_format_size(q->bytes, limit, sizeof(limit));
    quota_format_size(q->used, used, sizeof(used));
    if (need > 0)
        snprintf(msg, sizeof(msg), "namespace %s is over its quota: %s of %s used, and this blob needs %s more", q->ns,
                 used, limit, quota_format_size(need, more, sizeof(more)));
    else
        snprintf(msg, sizeof(msg), "namespace %s is over its quota: %s of %s used; delete images to push again", q->ns,
                 used, limit);
    res_error(req, ERR_DENIED, msg,
              json_pack("{s:s,s:I,s:I,s:I}", "namespace", q->ns, "quota", (json_int_t)q->bytes, "used",
                        (json_int_t)q->used, "size", (json_int_t)need));
}

int api_space_ok(h2o_req_t *req)
{
    uint64_t avail;
    if (store_space(berth.store, &avail) != 1)
        return 0;
    char msg[200];
    snprintf(msg, sizeof(msg), "the storage volume has %llu MiB free, below storage.min_free: pushes are refused",
             (unsigned long long)(avail >> 20));
    res_error(req, ERR_NO_SPACE, msg,
              json_pack("{s:I,s:I}", "free", (json_int_t)avail, "min_free", (json_int_t)berth.cfg.storage_min_free));
    return -1;
}

void api_digest_refuse(h2o_req_t *req, digest_err_t e, const char *s)
{
    res_error(req, ERR_DIGEST_INVALID, e == DIGEST_EUNSUPPORTED ? "unsupported digest algorithm" : "invalid digest",
              json_pack("{s:s}", "digest", s));
}

int api_digest_arg(h2o_req_t *req, const char *s, digest_t *out)
{
    digest_err_t e = digest_parse(out, s, strlen(s));
    if (e == DIGEST_OK)
        return 0;
    api_digest_refuse(req, e, s);
    return -1;
}
