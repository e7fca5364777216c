/*
 * What /metrics shows of the HTTP layer, and the endpoint itself (Prometheus text format, docs/metrics.md).
 *
 * Each event loop counts its own requests in a block only it writes (by relaxed atomic stores, no lock-prefixed
 * instruction, no allocation): requests by route (the router's endpoint, never the path), method and status class;
 * a latency histogram per route; body bytes received and sent; upload requests in flight; connections accepted
 * and open. A scrape sums the blocks of every loop. The facts of other modules (the store's totals, the caches,
 * authentication, the mirrors, the collector, the scrub) come from their own stats functions at scrape time.
 */
#ifndef BERTH_HTTP_METRICS_H
#define BERTH_HTTP_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <h2o.h>
#include "http/parse.h"
#include "http/server.h"

/** A request being handled: made by metrics_begin in the request's pool, accounted when the pool is freed. */
typedef struct metrics_req metrics_req_t;

/**
 * A request reaches the router: count it as being handled on its loop (thread_ctx_t.inflight) until its disposal,
 * when its route, method, status, duration and body bytes are counted. One shared allocation of the request's pool.
 */
metrics_req_t *metrics_begin(h2o_req_t *req);

/** The router found the request's endpoint (PARSE_EP_NONE: none); an upload's counts as an upload in flight. */
void metrics_route(metrics_req_t *m, parse_ep_t ep);

/** Body bytes of an upload that berth read itself (http/stream.c), on the loop's thread. */
void metrics_received(size_t n);

/** A connection was accepted from the listener (before the caps are applied). */
void metrics_accepted(void);
/** A connection was admitted (`1`) or an admitted one closed (`-1`). */
void metrics_open(int delta);

/** The name of route `ep` as /metrics and the access log show it ("unknown" for PARSE_EP_NONE). */
const char *metrics_route_name(parse_ep_t ep);

/** GET /metrics. */
void api_metrics(h2o_req_t *req);

/** Each loop's block of counters, made as the loop starts and freed at shutdown. */
extern const server_hooks_t metrics_hooks;

#endif
