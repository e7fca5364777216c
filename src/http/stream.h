/*
 * Upload bodies read as they arrive, on HTTP/1.
 *
 * h2o 2.2.5 hands a request to berth only once its whole body has arrived, in a temporary file it maps: a push then
 * holds the whole layer in memory (or a temp file), and receiving, hashing and writing run one after the other. So on
 * HTTP/1 berth reads a connection's input before h2o does: its read callback stands in front of h2o's, and gives h2o
 * every request but one kind. When the head of an upload request with a body is complete (PATCH or PUT on an upload
 * session, POST ?digest=; HTTP/1.1, a Content-Length or Transfer-Encoding: chunked), it is rewritten in place, at
 * the same length, into a request with an empty body (Content-Length all zeros; "Transfer-Encoding: chunked" becomes
 * "Content-Length: 0"; Expect renamed so that h2o does not answer it) and given to h2o, which routes it as usual.
 * The body stays with the connection: the upload handler, once it has checked the caller, the session and the range,
 * takes it with stream_receive and gets it piece by piece as it arrives (with "100 Continue" first if the client
 * waits for one), hashing and writing each piece at once. A refused request is answered at once, before its body
 * is read; the body is then read and thrown away, so that the connection stays usable (after an Expect, the
 * connection closes instead: the client may never send it). The connection watchdog cuts such a body after 1 MiB
 * if the request carried no valid credentials (http/conns.h), as it does for bodies h2o reads.
 *
 * h2o puts its own reader back after each request; berth puts itself in front again on the same turn of the loop
 * (stream_loop_init must be the last timeout the loop creates). Whether h2o is between requests is read from the
 * request h2o keeps in each HTTP/1 connection (its version is 0 until a head is parsed). HTTP/2, HTTP/1.0 and
 * everything else go through h2o unchanged, as does the first request of a TLS connection.
 */
#ifndef BERTH_HTTP_STREAM_H
#define BERTH_HTTP_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <h2o.h>

/* How a body ended, for stream_sink_t.end. */
#define STREAM_OK 0        /* all of it arrived */
#define STREAM_GONE 1      /* the client went away: nothing can be answered */
#define STREAM_BAD 2       /* a broken chunked encoding: answer 400; the connection closes after it */
#define STREAM_TOO_LARGE 3 /* longer than http.max_body_size: answer 413; the connection closes after it */

/** Who takes a body: called on the loop thread, `data` with each piece (the bytes are valid during the call only),
 * then `end` once. Embedded in the taker's own record. */
typedef struct stream_sink {
    void (*data)(struct stream_sink *k, const char *p, size_t n);
    void (*end)(struct stream_sink *k, int how);
} stream_sink_t;

/** The chunked decoder's state (picohttpparser's struct phr_chunked_decoder, which libh2o exports). */
typedef struct {
    size_t bytes_left_in_chunk;
    char consume_trailer, hex_count, state;
} stream_chunked_t;

/** What a connection knows of the body it reads itself: plain data inside the connection's record. */
typedef struct {
    int state;                 /* STREAM_S_* in stream.c */
    int gave_head;             /* a complete head was given to h2o, which has not finished with it */
    int chunked, expect;       /* the body's framing; the client waits for 100 Continue */
    int persistent;            /* h2o's keep-alive decision for the request, kept while an Expect holds it off */
    size_t head_len;           /* bytes of the (rewritten) head at the start of the input */
    uint64_t left;             /* Content-Length: bytes still to come */
    uint64_t got;              /* bytes of body received (decoded) */
    stream_chunked_t dec;      /* chunked: the decoder */
    h2o_socket_t *sock;        /* NULL once closed */
    h2o_req_t *req;            /* the request the body belongs to, once routed */
    stream_sink_t *sink;       /* who takes it, while receiving */
    h2o_timeout_entry_t front; /* puts berth's reader back in front of h2o's after a request */
} stream_t;

/** Set up a loop (its HTTP/1 reader is learned from a probe connection). Call after every other timeout of the loop
 * has been created, and stream_loop_dispose before the loop ends. */
void stream_loop_init(h2o_context_t *ctx, h2o_accept_ctx_t *accept_ctx);
void stream_loop_dispose(void);

/* Hooks of the connection's record (http/conns.c). */
/** A connection was accepted and handed to h2o: stand in front of its reader (plain HTTP/1). */
void stream_open(stream_t *s, h2o_socket_t *sock);
/** A request of the connection reaches the router. */
void stream_request(stream_t *s, h2o_req_t *req);
/** An HTTP/1 request of the connection is done (its pool is being freed; h2o reads the next one after this; the
 * request's head is still at the start of the input). Returns 1 if the body nobody took is now thrown away. */
int stream_request_done(stream_t *s);
/** The socket closed. */
void stream_close(stream_t *s);
/** Whether a body is being received (the watchdog judges its rate although a request is in a handler). */
int stream_receiving(const stream_t *s);
/** Whether the body of an answered request is being thrown away. */
int stream_draining(const stream_t *s);
/** Stand in front of h2o's reader again if h2o reads (a TLS connection, after its handshake). */
void stream_front(stream_t *s);

/* For the handlers. */
/** If berth reads `req`'s body itself: its stream, with the body's length in *len (UINT64_MAX when chunked); else
 * NULL (h2o has the body in req->entity, or there is none). */
stream_t *stream_pending(h2o_req_t *req, uint64_t *len);
/** Start receiving the pending body of stream `s` into `sink`. Pieces already here are given before this returns, and
 * so may the end: sink->end may run inside this call. */
void stream_receive(stream_t *s, stream_sink_t *sink);
/** The taker goes away before the end (its request is being freed): the rest of the body is thrown away. */
void stream_forget(stream_t *s, stream_sink_t *sink);

#endif
