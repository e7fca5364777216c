/* Webhook events of the registry API (api_events.c). */
#ifndef BERTH_HTTP_EVENTS_H
#define BERTH_HTTP_EVENTS_H

#include "http/api.h"
#include "http/gate.h"

/** What an event says about the request that made it, captured on its loop (the strings are malloc'd). */
typedef struct {
    char *base; /* the registry's URL: external_url, else the request's scheme and Host */
    char *host, *useragent;
    char method[8];
    gate_actor_t actor;
} api_origin_t;

/** Capture `req` and its caller `actor`; free with api_origin_dispose. */
void api_origin_init(api_origin_t *o, h2o_req_t *req, const gate_actor_t *actor);
void api_origin_dispose(api_origin_t *o);

/** Build the event (action, target) and store it inside the current write (a metastore_write callback): 0 or
 * BERTH_ERROR. `tag`, `digest` and `media_type` may be NULL, `size` -1 (unknown). */
int api_event_store(metastore_t *m, const api_origin_t *o, const char *action, const char *repo, const char *tag,
                    const char *digest, const char *media_type, int64_t size);

/** A manifest of r->name was served: queue its pull event (only when an endpoint takes pulls). */
void api_event_pull(route_t *r, const metastore_manifest_t *mf);

#endif
