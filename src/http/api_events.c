/* Webhook events of the registry API (notify/notify.h): what a request says about itself, captured on its loop, and
 * the event built from it where it is stored (inside the write, on the writer thread) or queued (a pull). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "http/api.h"
#include "http/events.h"
#include "http/parse.h"
#include "notify/notify.h"
#include "store/events.h"

static char *header_copy(h2o_req_t *req, const char *name)
{
    size_t len = 0;
    const char *v = req_header(req, name, &len);
    return v != NULL ? strndup(v, len < 512 ? len : 512) : strdup("");
}

void api_origin_init(api_origin_t *o, h2o_req_t *req, const gate_actor_t *actor)
{
    const char *ext = berth.cfg.external_url;
    if (ext != NULL && *ext != '\0') {
        size_t n = strlen(ext);
        while (n > 0 && ext[n - 1] == '/')
            --n;
        o->base = strndup(ext, n);
    } else {
        size_t hlen = req->authority.len;
        for (size_t i = 0; i < hlen; ++i) /* only host[:port] characters */
            if (!isalnum((unsigned char)req->authority.base[i]) && strchr(".-:[]", req->authority.base[i]) == NULL)
                hlen = 0;
        if (asprintf(&o->base, "%s://%.*s", req->scheme == &H2O_URL_SCHEME_HTTPS ? "https" : "http", (int)hlen,
                     hlen ? req->authority.base : berth.cfg.http_addr) < 0)
            o->base = strdup("");
    }
    o->host = strndup(req->authority.base, req->authority.len < 256 ? req->authority.len : 256);
    o->useragent = header_copy(req, "user-agent");
    snprintf(o->method, sizeof(o->method), "%.*s", (int)req->method.len, req->method.base);
    o->actor = *actor;
}

void api_origin_dispose(api_origin_t *o)
{
    free(o->base);
    free(o->host);
    free(o->useragent);
    o->base = o->host = o->useragent = NULL;
}

static char *event_json(const api_origin_t *o, const char *action, const char *repo, const char *tag,
                        const char *digest, const char *media_type, int64_t size)
{
    notify_event_t e = {action,    repo,          tag,
                        digest,    media_type,    size,
                        o->base,   o->actor.addr, o->host,
                        o->method, o->useragent,  strcmp(o->actor.name, "anonymous") == 0 ? "" : o->actor.name};
    return notify_event_json(&e);
}

int api_event_store(metastore_t *m, const api_origin_t *o, const char *action, const char *repo, const char *tag,
                    const char *digest, const char *media_type, int64_t size)
{
    char *json = event_json(o, action, repo, tag, digest, media_type, size);
    int rc = events_insert(m, action, repo, media_type, json);
    free(json);
    return rc;
}

void api_event_pull(route_t *r, const metastore_manifest_t *mf)
{
    api_origin_t o;
    gate_actor_t actor;
    const char *tag = r->ref != NULL && strchr(r->ref, ':') == NULL ? r->ref : NULL;
    gate_actor(r->req, r->who, &actor);
    api_origin_init(&o, r->req, &actor);
    char *json = event_json(&o, "pull", r->name, tag, mf->digest.str, mf->media_type, (int64_t)mf->size);
    events_queue("pull", r->name, mf->media_type, json);
    free(json);
    api_origin_dispose(&o);
}
