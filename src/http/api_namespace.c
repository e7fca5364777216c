/* GET /api/v1/namespaces/<ns>: a namespace's quota and what it uses (store/quota.h), for those who may push in it. */
#include "http/api.h"
#include "store/quota.h"
#include "util/status.h"

void api_namespace_get(route_t *r)
{
    quota_t q;
    int rc = quota_get(r->tc->db, r->ref, &q);
    if (rc < 0) {
        res_error(r->req, ERR_INTERNAL, "cannot read the quota", NULL);
        return;
    }
    json_t *quota =
        rc == 1 ? json_pack("{s:I,s:I}", "bytes", (json_int_t)q.bytes, "used", (json_int_t)q.used) : json_null();
    res_json(r->req, 200, json_pack("{s:s,s:o}", "name", r->ref, "quota", quota));
}
