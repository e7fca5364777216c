/* GET, HEAD and PUT /v2/<name>/manifests/<reference>: manifests live in SQLite, byte for byte. */
#include <stdlib.h>
#include <string.h>
#include "http/api.h"
#include "http/work.h"
#include "oci/manifest.h"
#include "oci/name.h"
#include "util/status.h"

typedef struct {
    work_t super;
    char *name, *tag;
    digest_t digest, missing;
    manifest_t *mf;
    void *body;
    size_t len;
    int rc;
} put_t;

/* Parse the reference: a digest (it has a colon) or a tag. Answers the error and returns -1 if invalid. */
static int parse_reference(route_t *r, digest_t *d, const char **tag)
{
    size_t len = strlen(r->ref);
    *tag = NULL;
    if (memchr(r->ref, ':', len) != NULL)
        return api_digest_arg(r->req, r->ref, d);
    if (!tag_valid(r->ref, len)) {
        res_error(r->req, ERR_TAG_INVALID, "invalid tag", json_pack("{s:s}", "tag", r->ref));
        return -1;
    }
    *tag = r->ref;
    return 0;
}

void api_manifest_get(route_t *r)
{
    digest_t d;
    const char *tag;
    metastore_manifest_t mf;
    if (parse_reference(r, &d, &tag) != 0)
        return;
    int rc = metastore_manifest_get(r->tc->db, r->name, tag, &d, &mf);
    if (rc == BERTH_ENOTFOUND) {
        res_error(r->req, ERR_MANIFEST_UNKNOWN, NULL, json_pack("{s:s}", tag ? "tag" : "digest", r->ref));
        return;
    }
    if (rc != 0) {
        res_error(r->req, ERR_INTERNAL, NULL, NULL);
        return;
    }
    res_header(r->req, "docker-content-digest", mf.digest.str);
    res_headerf(r->req, "etag", "\"%s\"", mf.digest.str);
    res_bytes(r->req, 200, mf.media_type, mf.content, mf.size);
    metastore_manifest_dispose(&mf);
}

static int put_write(metastore_t *m, void *arg)
{
    put_t *p = arg;
    return metastore_manifest_put(m, p->name, &p->digest, p->mf, p->body, p->len, p->tag, &p->missing);
}

static void put_run(work_t *w)
{
    put_t *p = (put_t *)w;
    p->rc = metastore_write(berth.writer, put_write, p);
}

static void put_done(work_t *w)
{
    put_t *p = (put_t *)w;
    h2o_req_t *req = w->req;
    if (req != NULL) {
        if (p->rc == 0) {
            res_headerf(req, "location", "/v2/%s/manifests/%s", p->name, p->digest.str);
            res_header(req, "docker-content-digest", p->digest.str);
            res_empty(req, 201);
        } else if (p->rc == BERTH_EMISSING) {
            res_error(req, ERR_MANIFEST_BLOB_UNKNOWN, NULL, json_pack("{s:s}", "digest", p->missing.str));
        } else {
            res_error(req, ERR_INTERNAL, "cannot store the manifest", NULL);
        }
    }
    manifest_free(p->mf);
    free(p->body);
    free(p->name);
    free(p->tag);
    free(p);
}

void api_manifest_put(route_t *r)
{
    h2o_req_t *req = r->req;
    digest_t ref_digest, d;
    const char *tag;
    manifest_t *mf;
    char err[256];
    size_t ctlen = 0;

    if (parse_reference(r, &ref_digest, &tag) != 0)
        return;
    if (req->entity.len > berth.cfg.storage_manifest_max_size) {
        res_error(req, ERR_TOO_LARGE, "manifest too large",
                  json_pack("{s:I}", "limit", (json_int_t)berth.cfg.storage_manifest_max_size));
        return;
    }
    const char *ct = req_header(req, "content-type", &ctlen);
    switch (manifest_parse(&mf, ct, ctlen, req->entity.base, req->entity.len, err, sizeof(err))) {
    case MANIFEST_OK:
        break;
    case MANIFEST_EUNSUPPORTED:
        res_error(req, ERR_MANIFEST_INVALID, err, NULL);
        return;
    default:
        res_error(req, ERR_MANIFEST_INVALID, err, NULL);
        return;
    }
    digest_compute(&d, tag ? DIGEST_SHA256 : ref_digest.algo, req->entity.base, req->entity.len);
    if (!tag && !digest_equal(&d, &ref_digest)) {
        manifest_free(mf);
        res_error(req, ERR_DIGEST_INVALID, "the manifest's digest does not match the reference",
                  json_pack("{s:s,s:s}", "expected", ref_digest.str, "computed", d.str));
        return;
    }
    put_t *p = calloc(1, sizeof(*p));
    p->name = strdup(r->name);
    p->tag = tag ? strdup(tag) : NULL;
    p->digest = d;
    p->mf = mf;
    p->len = req->entity.len;
    p->body = malloc(p->len ? p->len : 1);
    memcpy(p->body, req->entity.base, p->len);
    work_submit(req, &p->super, put_run, put_done);
}
