/* GET /v2/<name>/referrers/<digest>[?artifactType=]: an OCI image index of the manifests whose subject it is. */
#include <string.h>
#include "http/api.h"
#include "oci/manifest.h"

static void add_referrer(void *ctx, const metastore_referrer_t *r)
{
    json_t *d =
        json_pack("{s:s,s:s,s:I}", "mediaType", r->media_type, "digest", r->digest, "size", (json_int_t)r->size);
    if (r->artifact_type)
        json_object_set_new(d, "artifactType", json_string(r->artifact_type));
    if (r->annotations_json) {
        json_t *a = json_loads(r->annotations_json, 0, NULL);
        if (a)
            json_object_set_new(d, "annotations", a);
    }
    json_array_append_new(ctx, d);
}

void api_referrers(route_t *r)
{
    digest_t d;
    if (api_digest_arg(r->req, r->ref, &d) != 0)
        return;
    const char *type = req_query(r->req, "artifactType", 0);
    if (type != NULL && *type == '\0')
        type = NULL;
    json_t *list = json_array();
    if (metastore_referrers(r->tc->db, r->name, &d, type, add_referrer, list) < 0) {
        json_decref(list);
        res_error(r->req, ERR_INTERNAL, NULL, NULL);
        return;
    }
    if (type)
        res_header(r->req, "oci-filters-applied", "artifactType");
    json_t *index = json_pack("{s:i,s:s,s:o}", "schemaVersion", 2, "mediaType", MT_OCI_INDEX, "manifests", list);
    char *body = json_dumps(index, JSON_COMPACT);
    json_decref(index);
    res_bytes(r->req, 200, MT_OCI_INDEX, body, strlen(body));
    free(body);
}
