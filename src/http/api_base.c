/* GET /v2/, the health endpoints, and small helpers shared by the handlers. */
#include <string.h>
#include <sys/statvfs.h>
#include "http/api.h"

void api_base(route_t *r)
{
    res_json(r->req, 200, json_object());
}

void api_healthz(h2o_req_t *req)
{
    res_bytes(req, 200, "text/plain", H2O_STRLIT("ok\n"));
}

/* Ready when the database answers and the storage root is a writable folder. */
void api_readyz(h2o_req_t *req)
{
    thread_ctx_t *tc = thread_ctx_of(req);
    struct statvfs st;
    if (tc->stopping) {
        res_bytes(req, 503, "text/plain", H2O_STRLIT("shutting down\n"));
    } else if (metastore_ping(tc->db) != 0) {
        res_bytes(req, 503, "text/plain", H2O_STRLIT("database unavailable\n"));
    } else if (statvfs(berth.blobs.root, &st) != 0 || (st.f_flag & ST_RDONLY)) {
        res_bytes(req, 503, "text/plain", H2O_STRLIT("storage unavailable\n"));
    } else {
        res_bytes(req, 200, "text/plain", H2O_STRLIT("ok\n"));
    }
}

int api_digest_arg(h2o_req_t *req, const char *s, digest_t *out)
{
    switch (digest_parse(out, s, strlen(s))) {
    case DIGEST_OK:
        return 0;
    case DIGEST_EUNSUPPORTED:
        res_error(req, ERR_DIGEST_INVALID, "unsupported digest algorithm", json_pack("{s:s}", "digest", s));
        return -1;
    default:
        res_error(req, ERR_DIGEST_INVALID, "invalid digest", json_pack("{s:s}", "digest", s));
        return -1;
    }
}
