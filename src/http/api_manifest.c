/* GET, HEAD and PUT /v2/<name>/manifests/<reference>: manifests live in SQLite, byte for byte. */
#include <stdlib.h>
#include <string.h>
#include "http/api.h"
#include "http/events.h"
#include "http/gate.h"
#include "http/parse.h"
#include "http/work.h"
#include "mirror/pulled.h"
#include "notify/notify.h"
#include "oci/manifest.h"
#include "auth/decide.h"
#include "auth/principal.h"
#include "oci/name.h"
#include "store/audit.h"
#include "store/policy.h"
#include "util/status.h"

#define MAX_TAGS 32 /* tags one PUT may set (?tag= repeated) */

void (*api_manifest_pushed)(const char *repo);

typedef struct {
    write_work_t super;
    char *name;
    char *tags[MAX_TAGS];
    size_t ntags;
    digest_t digest;
    metastore_bad_ref_t bad;
    const char *denied; /* the immutable tag the push would move */
    quota_t quota;      /* when over quota */
    manifest_t *mf;
    void *body;
    size_t len;
    gate_actor_t actor;
    int notify;          /* webhooks take pushes: */
    api_origin_t origin; /* what the events say of the request */
} put_t;

typedef struct {
    write_work_t super;
    char *name, *tag;
    digest_t digest;
    int admin;
    char denied[TAG_MAX_LEN + 1]; /* the immutable tag the delete would remove */
    gate_actor_t actor;
    int notify; /* webhooks take deletes */
    api_origin_t origin;
} delete_t;

/* Parse the reference: a digest (it has a colon) or a tag. Answers the error and returns -1 if invalid. */
static int parse_reference(route_t *r, digest_t *d, const char **tag)
{
    *tag = NULL;
    switch (reference_parse(r->ref, strlen(r->ref), d)) {
    case REFERENCE_TAG:
        *tag = r->ref;
        return 0;
    case REFERENCE_DIGEST:
        return 0;
    case REFERENCE_EDIGEST:
        api_digest_refuse(r->req, DIGEST_EMALFORMED, r->ref);
        return -1;
    case REFERENCE_EUNSUPPORTED:
        api_digest_refuse(r->req, DIGEST_EUNSUPPORTED, r->ref);
        return -1;
    case REFERENCE_ETAG:
        break;
    }
    /* the spec's table has no tag code: a push to an invalid tag is an invalid manifest push, and a manifest under
     * an invalid tag cannot exist */
    if (method_is(r->req, "PUT"))
        res_error(r->req, ERR_MANIFEST_INVALID, "invalid tag", json_pack("{s:s}", "tag", r->ref));
    else
        res_error(r->req, ERR_MANIFEST_UNKNOWN, "invalid tag", json_pack("{s:s}", "tag", r->ref));
    return -1;
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
    api_manifest_send(r, &mf);
}

void api_manifest_send(route_t *r, metastore_manifest_t *mf)
{
    /* Like distribution, a manifest whose type the client did not list is answered 404 MANIFEST_UNKNOWN rather than
     * sent in a form the client said it cannot read (berth converts nothing). */
    if (!parse_accepts(&r->req->headers, mf->media_type)) {
        char msg[256];
        snprintf(msg, sizeof(msg), "the manifest is of type %s, which the Accept header does not include",
                 mf->media_type);
        res_error(r->req, ERR_MANIFEST_UNKNOWN, msg,
                  json_pack("{s:s,s:s}", "digest", mf->digest.str, "mediaType", mf->media_type));
    } else {
        res_header(r->req, "docker-content-digest", mf->digest.str);
        res_headerf(r->req, "etag", "\"%s\"", mf->digest.str);
        res_bytes(r->req, 200, mf->media_type, mf->content, mf->size);
        /* one atomic load when no endpoint takes pulls: nothing else on the hot path */
        if ((notify_actions() & CONFIG_ACTION_PULL) != 0 && method_is(r->req, "GET"))
            api_event_pull(r, mf);
        if (r->mirror != NULL) /* for eviction: the least recently pulled go first */
            mirror_pulled(r->mirror, r->name, &mf->digest, mf->pulled_at);
    }
    metastore_manifest_dispose(mf);
}

/* The audit records of a push that went in: one per tag (or one by digest), and a tag move where a tag pointed at
 * another manifest before (`prev`, `had`). */
static int put_audit(metastore_t *m, const put_t *p, const digest_t *prev, const int *had)
{
    audit_record_t r = {.actor = p->actor.name,
                        .token_id = p->actor.token_id,
                        .action = "push",
                        .repository = p->name,
                        .reference = p->digest.str,
                        .digest = p->digest.str,
                        .address = p->actor.addr,
                        .detail = p->mf->media_type};
    if (p->ntags == 0)
        return audit_insert(m, &r);
    for (size_t i = 0; i < p->ntags; ++i) {
        r.action = "push";
        r.reference = p->tags[i];
        r.detail = p->mf->media_type;
        if (audit_insert(m, &r) != 0)
            return BERTH_ERROR;
        if (had[i] && !digest_equal(&prev[i], &p->digest)) {
            char from[DIGEST_MAX_STR + 8];
            snprintf(from, sizeof(from), "from %s", prev[i].str);
            r.action = "tag.move";
            r.detail = from;
            if (audit_insert(m, &r) != 0)
                return BERTH_ERROR;
        }
    }
    return 0;
}

static int put_write(metastore_t *m, void *arg)
{
    put_t *p = arg;
    digest_t prev[MAX_TAGS];
    int had[MAX_TAGS];
    int rc = policy_check_push(berth.store->policy, m, p->name, &p->digest, (const char *const *)p->tags, p->ntags,
                               &p->denied);
    if (rc == 0)
        rc = quota_check_manifest(m, p->name, &p->quota);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < p->ntags; ++i) {
        if ((rc = metastore_tag_target(m, p->name, p->tags[i], &prev[i], NULL, 0, NULL)) < 0 && rc != BERTH_ENOTFOUND)
            return rc;
        had[i] = rc == 0;
    }
    rc = metastore_manifest_put(m, p->name, &p->digest, p->mf, p->body, p->len, (const char *const *)p->tags, p->ntags,
                                berth.cfg.storage_sparse_manifests, &p->bad);
    if (rc == 0)
        rc = put_audit(m, p, prev, had);
    /* the webhook events commit with the push: one per tag, as distribution sends them */
    for (size_t i = 0; rc == 0 && p->notify && i < (p->ntags ? p->ntags : 1); ++i)
        rc = api_event_store(m, &p->origin, "push", p->name, p->ntags ? p->tags[i] : NULL, p->digest.str,
                             p->mf->media_type, (int64_t)p->len);
    return rc;
}

static void put_done(work_t *w)
{
    put_t *p = (put_t *)w;
    h2o_req_t *req = w->req;
    if (p->super.rc == 0 && api_manifest_pushed != NULL)
        api_manifest_pushed(p->name);
    if (p->notify) {
        if (p->super.rc == 0)
            notify_kick();
        api_origin_dispose(&p->origin);
    }
    if (req != NULL) {
        if (p->super.rc == 0) {
            res_headerf(req, "location", "/v2/%s/manifests/%s", p->name, p->digest.str);
            res_header(req, "docker-content-digest", p->digest.str);
            if (p->mf->has_subject)
                res_header(req, "oci-subject", p->mf->subject.str);
            for (size_t i = 0; i < p->ntags; ++i)
                res_header(req, "oci-tag", p->tags[i]);
            res_empty(req, 201);
        } else if (p->super.rc == BERTH_EDENIED) {
            char msg[300];
            snprintf(msg, sizeof(msg), "tag %s of %s is immutable: it points at another manifest and cannot be moved",
                     p->denied, p->name);
            res_error(req, ERR_DENIED, msg, json_pack("{s:s,s:s}", "tag", p->denied, "digest", p->digest.str));
        } else if (p->super.rc == BERTH_EQUOTA) {
            api_quota_refuse(req, &p->quota, 0);
        } else if (p->super.rc == BERTH_EMISSING) {
            res_error(req, ERR_MANIFEST_BLOB_UNKNOWN, NULL, json_pack("{s:s}", "digest", p->bad.digest.str));
        } else if (p->super.rc == BERTH_ESIZE) {
            char msg[200];
            snprintf(msg, sizeof(msg), "the descriptor of %s gives size %lld, but it has %lld bytes", p->bad.digest.str,
                     (long long)p->bad.size, (long long)p->bad.stored);
            res_error(req, ERR_MANIFEST_INVALID, msg,
                      json_pack("{s:s,s:I,s:I}", "digest", p->bad.digest.str, "size", (json_int_t)p->bad.size, "stored",
                                (json_int_t)p->bad.stored));
        } else {
            res_error(req, ERR_INTERNAL, "cannot store the manifest", NULL);
        }
    }
    manifest_free(p->mf);
    free(p->body);
    free(p->name);
    for (size_t i = 0; i < p->ntags; ++i)
        free(p->tags[i]);
    free(p);
}

void api_manifest_put(route_t *r)
{
    h2o_req_t *req = r->req;
    digest_t ref_digest, d;
    const char *tag;
    manifest_t *mf;
    char err[256];
    if (api_space_ok(req) != 0)
        return;
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
    p->mf = mf;
    p->name = strdup(r->name);
    if (tag)
        p->tags[p->ntags++] = strdup(tag);
    for (const char *t; (t = req_query(req, "tag", (int)p->ntags - (tag != NULL))) != NULL;) {
        if (!tag_valid(t, strlen(t)) || p->ntags == MAX_TAGS) {
            res_error(req, ERR_MANIFEST_INVALID, p->ntags == MAX_TAGS ? "too many tags" : "invalid tag",
                      json_pack("{s:s}", "tag", t));
            p->super.super.req = NULL;
            put_done(&p->super.super);
            return;
        }
        p->tags[p->ntags++] = strdup(t);
    }
    p->digest = d;
    gate_actor(req, r->who, &p->actor);
    if ((p->notify = (notify_actions() & CONFIG_ACTION_PUSH) != 0))
        api_origin_init(&p->origin, req, &p->actor);
    p->len = req->entity.len;
    p->body = malloc(p->len ? p->len : 1);
    memcpy(p->body, req->entity.base, p->len);
    work_write(req, &p->super, put_write, put_done);
}

static int delete_write(metastore_t *m, void *arg)
{
    delete_t *dl = arg;
    digest_t target = dl->digest;
    int rc = policy_check_delete(berth.store->policy, m, dl->name, dl->tag, &dl->digest, dl->admin, dl->denied);
    if (rc != 0)
        return rc;
    if (dl->tag != NULL && (rc = metastore_tag_target(m, dl->name, dl->tag, &target, NULL, 0, NULL)) != 0)
        return rc;
    rc = dl->tag ? metastore_tag_delete(m, dl->name, dl->tag) : metastore_manifest_delete(m, dl->name, &dl->digest);
    if (rc != 0)
        return rc;
    audit_record_t r = {.actor = dl->actor.name,
                        .token_id = dl->actor.token_id,
                        .action = dl->tag ? "delete.tag" : "delete.manifest",
                        .repository = dl->name,
                        .reference = dl->tag ? dl->tag : dl->digest.str,
                        .digest = target.str,
                        .address = dl->actor.addr};
    rc = audit_insert(m, &r);
    if (rc == 0 && dl->notify)
        rc = api_event_store(m, &dl->origin, "delete", dl->name, dl->tag, target.str, NULL, -1);
    return rc;
}

static void delete_done(work_t *w)
{
    delete_t *dl = (delete_t *)w;
    if (dl->notify) {
        if (dl->super.rc == 0)
            notify_kick();
        api_origin_dispose(&dl->origin);
    }
    if (w->req != NULL) {
        if (dl->super.rc == 0)
            res_empty(w->req, 202);
        else if (dl->super.rc == BERTH_EDENIED) {
            char msg[400];
            snprintf(msg, sizeof(msg), "tag %s of %s is immutable: only an administrator may delete it%s", dl->denied,
                     dl->name, dl->tag ? "" : " or the manifest it points at");
            res_error(w->req, ERR_DENIED, msg, json_pack("{s:s}", "tag", dl->denied));
        } else if (dl->super.rc == BERTH_ENOTFOUND)
            res_error(w->req, ERR_MANIFEST_UNKNOWN, NULL,
                      dl->tag ? json_pack("{s:s}", "tag", dl->tag) : json_pack("{s:s}", "digest", dl->digest.str));
        else
            res_error(w->req, ERR_INTERNAL, NULL, NULL);
    }
    free(dl->name);
    free(dl->tag);
    free(dl);
}

/* DELETE by digest removes the manifest and its tags; DELETE by tag removes only the tag. */
void api_manifest_delete(route_t *r)
{
    digest_t d;
    const char *tag;
    if (parse_reference(r, &d, &tag) != 0)
        return;
    delete_t *dl = calloc(1, sizeof(*dl));
    dl->name = strdup(r->name);
    dl->tag = tag ? strdup(tag) : NULL;
    if (!tag)
        dl->digest = d;
    dl->admin = auth_mode() == MODE_OPEN || (r->who != NULL && r->who->admin);
    gate_actor(r->req, r->who, &dl->actor);
    if ((dl->notify = (notify_actions() & CONFIG_ACTION_DELETE) != 0))
        api_origin_init(&dl->origin, r->req, &dl->actor);
    work_write(r->req, &dl->super, delete_write, delete_done);
}
