/* Maps a request's path to a handler after checking names, tags and digests against the spec's grammar. */
#ifndef BERTH_HTTP_ROUTER_H
#define BERTH_HTTP_ROUTER_H

#include <h2o.h>

/** h2o's on_req for the whole host. */
int router_on_req(h2o_handler_t *self, h2o_req_t *req);

#endif
