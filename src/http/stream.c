#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include "http/conns.h"
#include "http/metrics.h"
#include "http/parse.h"
#include "http/response.h"
#include "http/server.h"
#include "http/stream.h"
#include "util/log.h"
#include <h2o/http1.h> /* after h2o.h, which it needs */

/* picohttpparser, inside libh2o-evloop (its header is not installed) */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
struct phr_chunked_decoder;
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path,
                      size_t *path_len, int *minor_version, struct phr_header *headers, size_t *num_headers,
                      size_t last_len);
ssize_t phr_decode_chunked(struct phr_chunked_decoder *decoder, char *buf, size_t *bufsz);

enum {
    S_IDLE,      /* h2o reads the connection (berth looks at each head first) */
    S_PENDING,   /* a rewritten head went to h2o; its body waits for a handler (h2o stopped reading) */
    S_RECEIVING, /* a handler takes the body */
    S_DRAINING,  /* the body of an answered request is read and thrown away */
};

#define RECEIVE_BUFFER (8 * 1024 * 1024) /* the input buffer of a connection that receives bodies */

static _Atomic h2o_socket_cb h1_read; /* h2o's HTTP/1 reader (learned from a probe) */
static _Atomic size_t h1_req_off;     /* where an HTTP/1 connection of h2o keeps its request (learned) */
static __thread h2o_timeout_t front_timeout;
/* The input buffers of connections that received a body, from then on: large, on the heap, reused. h2o's own grow
 * from 8 KiB by doubling, past 1 MiB into a new temporary file it maps, and are freed after each request: for each
 * chunk of a push, a file made, tens of MiB of pages faulted in and unmapped again. A buffer goes back to be reused
 * whenever h2o empties it (after each request), so an idle connection holds none. */
static __thread h2o_buffer_prototype_t receive_buffers = {{4}, {RECEIVE_BUFFER}, NULL};
static __thread h2o_loop_t *front_loop;

static void on_read(h2o_socket_t *sock, const char *err);

/* ---- reading in front of h2o ---- */

static void give_to_h2o(h2o_socket_t *sock, const char *err)
{
    h2o_socket_cb h1 = atomic_load_explicit(&h1_read, memory_order_relaxed);
    h1(sock, err);
    /* h2o still reads (a head not yet whole, or a body it reads itself): stay in front. After an error the socket
     * may be closed, and the connection's record freed. */
    if (err == NULL && sock->_cb.read == h1)
        sock->_cb.read = on_read;
}

/* Whether h2o has parsed the head of a request it has not finished with (its request's version is set by the parse
 * and cleared when the next request starts). Until the first request told where h2o keeps it, only heads berth gave
 * h2o count: berth has stood in front of the connection since it was accepted. */
static int h2o_has_head(const stream_t *s, h2o_socket_t *sock)
{
    size_t off = atomic_load_explicit(&h1_req_off, memory_order_relaxed);
    if (off != 0)
        return ((h2o_req_t *)((char *)sock->data + off))->version != 0;
    return s->gave_head;
}

static int is(const char *p, size_t len, const char *s)
{
    return len == strlen(s) && strncasecmp(p, s, len) == 0;
}

static int parse_len(const char *p, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 18)
        return -1;
    for (size_t i = 0; i < len; ++i) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *out = v;
    return 0;
}

/* PATCH or PUT on an upload session, or POST ?digest=: the requests whose body is a blob's bytes (2); a POST that
 * starts an upload without one (1: its body comes next); or anything else (0). */
static int upload_with_body(const char *method, size_t mlen, const char *path, size_t plen)
{
    const char *q = memchr(path, '?', plen);
    size_t rlen = q != NULL ? (size_t)(q - path) : plen;
    parse_route_t pr;
    parse_route(&pr, path, rlen, method, mlen);
    if (pr.target != PARSE_REPOSITORY)
        return 0;
    if (pr.ep == PARSE_EP_UPLOAD_PATCH || pr.ep == PARSE_EP_UPLOAD_PUT)
        return 2;
    if (pr.ep != PARSE_EP_UPLOAD_START)
        return 0;
    for (const char *p = q != NULL ? q + 1 : path + plen, *end = path + plen; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        if ((size_t)((amp ? amp : end) - p) > 7 && memcmp(p, "digest=", 7) == 0)
            return 2;
        p = amp ? amp + 1 : end;
    }
    return 1;
}

/*
 * A complete head at the start of the input: if it is an upload with a body berth should read itself, rewrite it in
 * place into one with an empty body and keep the body's framing. Anything unusual (HTTP/1.0, a framing h2o or the
 * router would refuse, an unknown expectation, a chunked body with a Content-Range to check) is left to h2o.
 */
static void consider(stream_t *s, h2o_socket_t *sock)
{
    h2o_buffer_t *in = sock->input;
    /* the method first: a GET or HEAD (most requests) has no body, and is not parsed twice */
    if (in->size < 4 ||
        (memcmp(in->bytes, "PATC", 4) != 0 && memcmp(in->bytes, "PUT ", 4) != 0 && memcmp(in->bytes, "POST", 4) != 0)) {
        if (in->_prototype == &receive_buffers)
            in->_prototype = &h2o_socket_buffer_prototype;
        return;
    }
    const char *method, *path;
    size_t mlen, plen, nh = H2O_MAX_HEADERS;
    int minor;
    struct phr_header h[H2O_MAX_HEADERS];
    int hl = phr_parse_request(in->bytes, in->size < H2O_MAX_REQLEN ? in->size : H2O_MAX_REQLEN, &method, &mlen, &path,
                               &plen, &minor, h, &nh, 0);
    if (hl < 0)
        return; /* not whole yet, or malformed: h2o's to wait for or refuse */
    s->gave_head = 1;
    int upload = minor == 1 ? upload_with_body(method, mlen, path, plen) : 0;
    /* a body h2o reads whole grows past 1 MiB into a temporary file, not on the heap; after an upload's start, the
     * next request's body is read into a reused buffer from its first byte */
    if (upload == 0 && in->_prototype == &receive_buffers)
        in->_prototype = &h2o_socket_buffer_prototype;
    else if (upload == 1 && in->_prototype == &h2o_socket_buffer_prototype)
        in->_prototype = &receive_buffers;
    if (upload != 2)
        return;
    static const h2o_headers_t none;
    if (parse_framing(&none, 0x101, in->bytes, (size_t)hl) != NULL)
        return;
    ssize_t te = -1, expect = -1;
    int range = 0, has_len = 0;
    uint64_t len = 0;
    for (size_t i = 0; i < nh; ++i) {
        if (h[i].name == NULL)
            return; /* a folded line */
        if (is(h[i].name, h[i].name_len, "content-length")) {
            if (parse_len(h[i].value, h[i].value_len, &len) != 0)
                return;
            has_len = 1;
        } else if (is(h[i].name, h[i].name_len, "transfer-encoding")) {
            if (te >= 0 || !is(h[i].value, h[i].value_len, "chunked"))
                return;
            te = (ssize_t)i;
        } else if (is(h[i].name, h[i].name_len, "expect")) {
            if (expect >= 0 || !is(h[i].value, h[i].value_len, "100-continue"))
                return;
            expect = (ssize_t)i;
        } else if (is(h[i].name, h[i].name_len, "content-range")) {
            range = 1;
        }
    }
    if (te >= 0 ? range : !has_len || len == 0 || len > berth.cfg.http_max_body_size)
        return;

    /* the head is in the connection's own buffer: rewrite it, same length */
    for (size_t i = 0; i < nh; ++i)
        if (is(h[i].name, h[i].name_len, "content-length"))
            memset((char *)h[i].value, '0', h[i].value_len);
    if (te >= 0) { /* "Transfer-Encoding: chunked" (25 bytes at least) becomes "content-length:      0" */
        char *line = (char *)h[te].name, *end = (char *)h[te].value + h[te].value_len;
        memset(line, ' ', (size_t)(end - line));
        memcpy(line, "content-length:", 15);
        end[-1] = '0';
    }
    if (expect >= 0)
        memcpy((char *)h[expect].name, "x-", 2); /* h2o would answer it at once */

    s->state = S_PENDING;
    s->head_len = (size_t)hl;
    s->chunked = te >= 0;
    s->left = len;
    s->got = 0;
    s->expect = expect >= 0;
    s->dec = (stream_chunked_t){.consume_trailer = 1};
}

/*
 * Take the body bytes that follow the head in the input, giving them to `k` (NULL: thrown away), and move whatever
 * follows the body's end right after the head. Returns 0 (more to come), 1 (the body is complete), or -STREAM_BAD /
 * -STREAM_TOO_LARGE (the input after the head is dropped).
 */
static int take_body(stream_t *s, stream_sink_t *k)
{
    h2o_buffer_t *in = s->sock->input;
    char *body = in->bytes + s->head_len;
    size_t n = in->size - s->head_len, rest = 0;
    int done;
    if (s->chunked) {
        size_t dec = n;
        ssize_t r = phr_decode_chunked((struct phr_chunked_decoder *)&s->dec, body, &dec);
        if (r == -1) {
            in->size = s->head_len;
            return -STREAM_BAD;
        }
        done = r >= 0;
        rest = done ? (size_t)r : 0;
        n = dec;
    } else {
        if (n > s->left) {
            rest = n - (size_t)s->left;
            n = (size_t)s->left;
        }
        s->left -= n;
        done = s->left == 0;
    }
    s->got += n;
    metrics_received(n);
    if (s->got > berth.cfg.http_max_body_size) {
        in->size = s->head_len;
        return -STREAM_TOO_LARGE;
    }
    if (k != NULL && n > 0)
        k->data(k, body, n);
    memmove(body, body + n, rest);
    in->size = s->head_len + rest;
    return done;
}

/* Move the socket's input into a buffer of `proto` (the bytes are the head and what follows it: few). */
static void swap_input(h2o_socket_t *sock, h2o_buffer_prototype_t *proto)
{
    h2o_buffer_t *in = sock->input, *nb = &proto->_initial_buf;
    if (in->_prototype == proto || in->size > proto->_initial_buf.capacity / 2)
        return;
    h2o_iovec_t room = h2o_buffer_reserve(&nb, in->size > 0 ? in->size : 1);
    if (room.base == NULL)
        return;
    memcpy(room.base, in->bytes, in->size);
    nb->size = in->size;
    h2o_buffer_dispose(&sock->input);
    sock->input = nb;
}

/* The lines the taker logs carry the request's id. */
static const char *log_for(stream_t *s)
{
    return log_set_request(s->req != NULL ? req_id(s->req) : NULL);
}

static void end_body(stream_t *s, int how)
{
    const char *prev = log_for(s);
    stream_sink_t *k = s->sink;
    s->sink = NULL;
    s->state = S_IDLE;
    if (s->sock != NULL)
        h2o_socket_read_stop(s->sock); /* h2o reads again once the request is answered */
    if ((how == STREAM_BAD || how == STREAM_TOO_LARGE) && s->req != NULL)
        s->req->http1_is_persistent = 0;
    if (k != NULL)
        k->end(k, how);
    log_set_request(prev);
}

static void receive(stream_t *s)
{
    const char *prev = log_for(s);
    int rc = take_body(s, s->sink);
    if (rc != 0)
        end_body(s, rc > 0 ? STREAM_OK : -rc);
    log_set_request(prev);
}

/* Throw away what arrived of a body nobody takes. Returns 1 while more is to come. */
static int drain(stream_t *s)
{
    int rc = take_body(s, NULL);
    if (rc == 0)
        return 1;
    s->state = S_IDLE;
    if (rc < 0) /* nothing tells where the next request starts */
        shutdown(h2o_socket_get_fd(s->sock), SHUT_RDWR);
    return 0;
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    stream_t *s = conns_stream(sock);
    if (s == NULL || err != NULL) {
        if (s != NULL && s->state == S_RECEIVING)
            end_body(s, STREAM_GONE);
        if (s != NULL)
            s->state = S_IDLE;
        give_to_h2o(sock, err); /* h2o closes the connection */
        return;
    }
    switch (s->state) {
    case S_RECEIVING:
        receive(s);
        return;
    case S_PENDING: /* h2o stopped reading: not called */
        return;
    case S_DRAINING:
        if (drain(s))
            return;
        break;
    default:
        break;
    }
    if (sock->input->size != 0 && !h2o_has_head(s, sock))
        consider(s, sock);
    give_to_h2o(sock, NULL);
}

/* ---- the connection's hooks ---- */

static void on_front(h2o_timeout_entry_t *e)
{
    stream_front(H2O_STRUCT_FROM_MEMBER(stream_t, front, e));
}

void stream_front(stream_t *s)
{
    h2o_socket_cb h1 = atomic_load_explicit(&h1_read, memory_order_relaxed);
    if (s->sock != NULL && h1 != NULL && s->sock->_cb.read == h1 &&
        atomic_load_explicit(&h1_req_off, memory_order_relaxed) != 0)
        s->sock->_cb.read = on_read;
}

void stream_open(stream_t *s, h2o_socket_t *sock)
{
    h2o_socket_cb h1 = atomic_load_explicit(&h1_read, memory_order_relaxed);
    *s = (stream_t){.state = S_IDLE, .sock = sock, .front = {.cb = on_front}};
    if (sock->ssl == NULL && h1 != NULL && sock->_cb.read == h1)
        sock->_cb.read = on_read;
}

void stream_request(stream_t *s, h2o_req_t *req)
{
    if (req->version >= 0x200)
        return;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock != NULL && sock->data == (void *)req->conn && (char *)req > (char *)req->conn &&
        (size_t)((char *)req - (char *)req->conn) < 65536)
        atomic_store_explicit(&h1_req_off, (size_t)((char *)req - (char *)req->conn), memory_order_relaxed);
    if (s->state != S_PENDING)
        return;
    s->req = req;
    s->persistent = req->http1_is_persistent;
    if (s->expect) /* until the body is asked for, the client may never send it */
        req->http1_is_persistent = 0;
}

int stream_request_done(stream_t *s)
{
    s->gave_head = 0;
    s->req = NULL;
    if (s->sock == NULL)
        return 0;
    if (s->state == S_PENDING || s->state == S_RECEIVING) {
        if (s->sink != NULL) { /* its taker went first in the request's disposal, which stream_forget tells */
            stream_sink_t *k = s->sink;
            s->sink = NULL;
            k->end(k, STREAM_GONE);
        }
        /* h2o consumes the head right after this: what follows it now is body */
        s->state = S_DRAINING;
        drain(s);
        s->head_len = 0;
    }
    if (!h2o_timeout_is_linked(&s->front))
        h2o_timeout_link(front_loop, &front_timeout, &s->front);
    return s->state == S_DRAINING;
}

void stream_close(stream_t *s)
{
    if (h2o_timeout_is_linked(&s->front))
        h2o_timeout_unlink(&s->front);
    s->sock = NULL; /* being disposed: nothing more to ask of it */
    if (s->state == S_RECEIVING)
        end_body(s, STREAM_GONE);
}

int stream_receiving(const stream_t *s)
{
    return s->state == S_RECEIVING;
}

int stream_draining(const stream_t *s)
{
    return s->state == S_DRAINING;
}

/* ---- the handlers' side ---- */

static stream_t *stream_of(h2o_req_t *req)
{
    if (req->version >= 0x200)
        return NULL;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    stream_t *s = sock != NULL ? conns_stream(sock) : NULL;
    return s != NULL && s->req == req ? s : NULL;
}

stream_t *stream_pending(h2o_req_t *req, uint64_t *len)
{
    stream_t *s = stream_of(req);
    if (s == NULL || s->state != S_PENDING)
        return NULL;
    *len = s->chunked ? UINT64_MAX : s->left;
    return s;
}

static void on_continue_sent(h2o_socket_t *sock, const char *err)
{
    (void)sock;
    (void)err; /* a failed write shows as a failed read */
}

void stream_receive(stream_t *s, stream_sink_t *sink)
{
    s->sink = sink;
    s->state = S_RECEIVING;
    s->req->http1_is_persistent = s->persistent;
    /* a client that sent none of the body yet may wait for this; one that sent some does not, and the answer
     * could then follow before this is written */
    if (s->expect && s->sock->input->size == s->head_len) {
        static const h2o_iovec_t cont = {(char *)"HTTP/1.1 100 Continue\r\n\r\n", 25};
        h2o_socket_write(s->sock, (h2o_iovec_t *)&cont, 1, on_continue_sent);
    }
    swap_input(s->sock, &receive_buffers);
    h2o_socket_read_start(s->sock, on_read);
    if (s->sock->input->size > s->head_len)
        receive(s);
}

void stream_forget(stream_t *s, stream_sink_t *sink)
{
    if (s->sink == sink)
        s->sink = NULL;
}

/* ---- the loop ---- */

void stream_loop_init(h2o_context_t *ctx, h2o_accept_ctx_t *accept_ctx)
{
    front_loop = ctx->loop;
    h2o_timeout_init(ctx->loop, &front_timeout, 0);
    if (atomic_load(&h1_read) != NULL)
        return;
    /* h2o's HTTP/1 reader is a static function: read it off a connection h2o accepts, which ends at once */
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0)
        return;
    h2o_socket_t *sock = h2o_evloop_socket_create(ctx->loop, fds[0], 0);
    h2o_accept_ctx_t plain = *accept_ctx;
    plain.ssl_ctx = NULL;
    h2o_http1_accept(&plain, sock, *h2o_get_timestamp(ctx, NULL, NULL));
    atomic_store(&h1_read, sock->_cb.read);
    close(fds[1]); /* h2o reads the end of the input and closes its side */
}

void stream_loop_dispose(void)
{
    while (!h2o_linklist_is_empty(&front_timeout._entries))
        h2o_timeout_unlink(H2O_STRUCT_FROM_MEMBER(h2o_timeout_entry_t, _link, front_timeout._entries.next));
    h2o_timeout_dispose(front_loop, &front_timeout);
}
