/*
 * What a connection may hold, and for how long. At accept: a cap on connections in total (http.max_connections)
 * and per client address (http.max_connections_per_address; connections from a trusted proxy are not counted by
 * the proxy's address, which carries many clients). Then a watchdog, once a second on each loop, closes a
 * connection that no request of which is in a handler when
 *   - it has been idle (nothing received since its last request) longer than http.idle_timeout;
 *   - the head of its next request has not arrived within http.header_timeout of the request's first byte
 *     (HTTP/1; the slow-header attack);
 *   - its request body (or, on HTTP/2, its frames) arrives slower than http.min_rate bytes a second over a window
 *     of http.header_timeout (the slow-body attack; a steady upload at any rate above it is never cut).
 * and, in every mode but open, an HTTP/1 request whose body passes 1 MiB while its head carries no credentials
 * known good without hashing a password (it would be refused with 401 once whole: it is refused now instead).
 * h2o 2.2.5 has one timer for all three (http1.req_timeout, armed once per request), so berth keeps its own.
 */
#ifndef BERTH_HTTP_CONNS_H
#define BERTH_HTTP_CONNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <h2o.h>
#include "http/server.h"
#include "http/stream.h"

/** The limits the watchdog applies (milliseconds and bytes a second). */
typedef struct {
    uint64_t idle_ms, header_ms, min_rate;
} conns_limits_t;

/** What the watchdog knows of one connection between two requests. */
typedef struct {
    size_t mark;         /* bytes read when the last request was handed over (or at accept) */
    uint64_t idle_since; /* when that happened */
    uint64_t arrival;    /* when bytes of the next request were first seen; 0 while none */
    size_t window_bytes; /* bytes read at the start of the current rate window */
    uint64_t window_at;  /* and when it started */
} conns_clock_t;

typedef enum { CONNS_KEEP, CONNS_IDLE, CONNS_SLOW_HEAD, CONNS_SLOW_BODY } conns_verdict_t;

/**
 * Judge a connection with no request in a handler at `now` (ms), `bytes` read in all, `head_done` whether the
 * head of the request now arriving is complete (1 for HTTP/2, which has no head to wait for). Updates `c`. Pure.
 */
static inline conns_verdict_t conns_judge(conns_clock_t *c, uint64_t now, size_t bytes, int head_done,
                                          const conns_limits_t *lim)
{
    if (bytes == c->mark)
        return now - c->idle_since > lim->idle_ms ? CONNS_IDLE : CONNS_KEEP;
    if (c->arrival == 0) {
        c->arrival = c->window_at = now;
        c->window_bytes = c->mark;
    }
    if (!head_done)
        return now - c->arrival > lim->header_ms ? CONNS_SLOW_HEAD : CONNS_KEEP;
    if (now - c->window_at < lim->header_ms)
        return CONNS_KEEP;
    if ((bytes - c->window_bytes) * 1000 < lim->min_rate * (now - c->window_at))
        return CONNS_SLOW_BODY;
    c->window_at = now;
    c->window_bytes = bytes;
    return CONNS_KEEP;
}

/** Whether `buf` (`len` bytes: a connection's input) starts like an HTTP/1 request: a method name, then a space or
 * nothing yet. HTTP/2 frames start with a length byte, and its preface ("PRI * HTTP/2.0…") holds a blank line. */
static inline int conns_looks_http1(const char *buf, size_t len)
{
    size_t i = 0;
    while (i < len && i < 16 && ((buf[i] >= 'A' && buf[i] <= 'Z') || (buf[i] >= 'a' && buf[i] <= 'z')))
        ++i;
    return i > 0 && (i == len || buf[i] == ' ');
}

/** Whether `buf` (`len` bytes: the start of an HTTP/1 connection's input) holds a complete request head. Pure. */
static inline int conns_head_done(const char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; ++i)
        if (buf[i] == '\n' && (buf[i + 1] == '\n' || (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')))
            return 1;
    return 0;
}

/** Set up and tear down a loop's connection list and watchdog (on the loop's thread). */
void conns_loop_init(thread_ctx_t *tc);
void conns_loop_dispose(thread_ctx_t *tc);

/** Admit a just-accepted socket (hand it to h2o) or close it when a cap is reached. */
void conns_accept(thread_ctx_t *tc, h2o_socket_t *sock);

/** A request of a connection reaches the router: the connection is busy until the request is done. */
void conns_request(h2o_req_t *req);

/** The record of an upload body read by berth on the connection of `sock` (http/stream.h); NULL if none. */
stream_t *conns_stream(h2o_socket_t *sock);

/** Connections open on the loop. */
size_t conns_count(thread_ctx_t *tc);

/** Whether a connection of the loop received or sent data within the last second (for the shutdown). */
int conns_recent_io(thread_ctx_t *tc);

/** Connections closed by the watchdog and refused at accept since start (all loops), for /metrics. */
typedef struct {
    uint64_t idle, slow_head, slow_body, anonymous, refused_total, refused_address;
} conns_stats_t;
void conns_stats(conns_stats_t *out);

/**
 * A peer's address as text into `buf` (`len` bytes; "" if `sl` is 0 or the family is neither IPv4 nor IPv6). An
 * IPv4 client of a dual-stack listener (::ffff:a.b.c.d) is written a.b.c.d, as on an IPv4 listener, so that
 * the per-address caps, the login limiter and auth.trusted_proxies see one address whatever http.addr is.
 */
void conns_addr_format(const struct sockaddr *sa, socklen_t sl, char *buf, size_t len);

/**
 * Process-wide set-up before the loops start: the limits, and the descriptor limit raised to its hard limit.
 * Returns the connection cap that fits in it (http.max_connections, lowered with a warning if need be).
 */
size_t conns_start(void);
void conns_stop(void);

#endif
