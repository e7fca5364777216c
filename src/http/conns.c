#include <arpa/inet.h>
#include <netinet/in.h>
#include <linux/tcp.h> /* not netinet/tcp.h: its tcp_info lacks tcpi_bytes_received */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include "auth/limiter.h"
#include "http/conns.h"
#include "http/gate.h"
#include "http/metrics.h"
#include "http/stream.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/time.h"

#define TICK_MS 1000
#define ANONYMOUS_BODY_MAX (1024 * 1024) /* received of a request before its credentials are looked at */
#define ADDR_BUCKETS 4096

/* One accepted connection. Held by its socket and by each of its requests in a handler: freed when all let go,
 * so that a request disposed after its socket closed (or the reverse) never touches freed memory. */
typedef struct {
    h2o_linklist_t link;
    h2o_socket_t *sock; /* NULL once closed */
    thread_ctx_t *tc;
    conns_clock_t clock;
    unsigned active; /* requests in a handler or sending their answer */
    unsigned refs;
    int h2;                      /* speaks HTTP/2 (no head to wait for) */
    int doomed;                  /* shut down by the watchdog, closing */
    int vetted;                  /* the credentials of the request arriving were looked at */
    int drain_unvetted;          /* the body being thrown away came without credentials */
    char addr[INET6_ADDRSTRLEN]; /* counted against this address's cap; "" when not counted */
    stream_t stream;             /* an upload body read by berth (http/stream.h) */
} conn_t;

/* Connections per client address, over all loops. */
typedef struct addr_entry {
    struct addr_entry *next;
    unsigned n;
    char addr[INET6_ADDRSTRLEN];
} addr_entry_t;

static struct {
    pthread_mutex_t mu;
    addr_entry_t *buckets[ADDR_BUCKETS];
    conns_limits_t lim;
    unsigned per_address;
    _Atomic uint64_t idle, slow_head, slow_body, anonymous, refused_total, refused_address;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER};

static __thread thread_ctx_t *loop_tc;
static __thread h2o_timeout_t tick_timeout;
static __thread h2o_timeout_entry_t tick_entry;

/* ---- the per-address table ---- */

static addr_entry_t **addr_slot(const char *addr)
{
    addr_entry_t **p = &g.buckets[hash_fnv(HASH_FNV_INIT, addr, strlen(addr)) % ADDR_BUCKETS];
    while (*p != NULL && strcmp((*p)->addr, addr) != 0)
        p = &(*p)->next;
    return p;
}

/* Count a connection of `addr`: 0, or -1 when the address is at its cap. */
static int addr_take(const char *addr)
{
    int rc = 0;
    pthread_mutex_lock(&g.mu);
    addr_entry_t **p = addr_slot(addr);
    if (*p == NULL && (*p = calloc(1, sizeof(**p))) != NULL)
        memcpy((*p)->addr, addr, strlen(addr) + 1);
    if (*p == NULL || (*p)->n >= g.per_address)
        rc = -1;
    else
        ++(*p)->n;
    if (*p != NULL && (*p)->n == 0) {
        addr_entry_t *e = *p;
        *p = e->next;
        free(e);
    }
    pthread_mutex_unlock(&g.mu);
    return rc;
}

static void addr_release(const char *addr)
{
    pthread_mutex_lock(&g.mu);
    addr_entry_t **p = addr_slot(addr);
    if (*p != NULL && --(*p)->n == 0) {
        addr_entry_t *e = *p;
        *p = e->next;
        free(e);
    }
    pthread_mutex_unlock(&g.mu);
}

/* ---- connections ---- */

static void conn_unref(conn_t *c)
{
    if (--c->refs > 0)
        return;
    if (c->addr[0] != '\0')
        addr_release(c->addr);
    free(c);
}

static void on_sock_close(void *data)
{
    conn_t *c = data;
    h2o_linklist_unlink(&c->link);
    --c->tc->nconns;
    metrics_open(-1);
    stream_close(&c->stream);
    c->sock = NULL;
    conn_unref(c);
}

void conns_addr_format(const struct sockaddr *sa, socklen_t sl, char *buf, size_t len)
{
    buf[0] = '\0';
    if (sl != 0 && sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)len);
    } else if (sl != 0 && sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) /* an IPv4 client of a dual-stack listener (http.addr ":port") */
            inet_ntop(AF_INET, &a->s6_addr[12], buf, (socklen_t)len);
        else
            inet_ntop(AF_INET6, a, buf, (socklen_t)len);
    }
}

static void peer_of(h2o_socket_t *sock, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = h2o_socket_getpeername(sock, (struct sockaddr *)&ss);
    conns_addr_format((struct sockaddr *)&ss, sl, buf, len);
}

/* Bytes the connection received in all (h2o's sock->bytes_read is only its last read's). */
static size_t received(h2o_socket_t *sock)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    if (getsockopt(h2o_socket_get_fd(sock), IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received))
        return 0;
    return (size_t)ti.tcpi_bytes_received;
}

void conns_accept(thread_ctx_t *tc, h2o_socket_t *sock)
{
    char addr[INET6_ADDRSTRLEN];
    metrics_accepted();
    if (tc->nconns >= tc->max_conns) { /* over the cap: refuse rather than queue without bound */
        ++g.refused_total;
        h2o_socket_close(sock);
        return;
    }
    peer_of(sock, addr, sizeof(addr));
    int count = g.per_address > 0 && addr[0] != '\0' && !limiter_trusted(berth.cfg.auth_trusted_proxies, addr);
    if (count && addr_take(addr) != 0) {
        if (g.refused_address++ % 1000 == 0)
            log_warn("%s is at http.max_connections_per_address (%u): connection refused", addr, g.per_address);
        h2o_socket_close(sock);
        return;
    }
    conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        if (count)
            addr_release(addr);
        h2o_socket_close(sock);
        return;
    }
    if (count)
        memcpy(c->addr, addr, sizeof(addr));
    c->sock = sock;
    c->tc = tc;
    c->refs = 1;
    c->clock.idle_since = time_mono_ms();
    c->clock.mark = 0; /* bytes that arrived before the accept count as arriving */
    h2o_linklist_insert(&tc->conns, &c->link);
    ++tc->nconns;
    metrics_open(1);
    sock->on_close.cb = on_sock_close;
    sock->on_close.data = c;
    h2o_accept(&tc->accept_ctx, sock);
    stream_open(&c->stream, sock);
}

stream_t *conns_stream(h2o_socket_t *sock)
{
    return sock->on_close.cb == on_sock_close ? &((conn_t *)sock->on_close.data)->stream : NULL;
}

static void on_req_dispose(void *p)
{
    conn_t *c = *(conn_t **)p;
    if (--c->active == 0 && c->sock != NULL) {
        c->clock.mark = received(c->sock);
        c->clock.idle_since = time_mono_ms();
        c->clock.arrival = 0;
        c->vetted = 0;
        /* a refused upload's body is thrown away: cut after 1 MiB unless its head had credentials */
        c->drain_unvetted = !c->h2 && stream_request_done(&c->stream) &&
                            !gate_head_authenticated(c->tc, c->sock->input->bytes, c->sock->input->size);
    }
    conn_unref(c);
}

void conns_request(h2o_req_t *req)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock == NULL || sock->on_close.cb != on_sock_close)
        return;
    conn_t *c = sock->on_close.data;
    conn_t **slot = h2o_mem_alloc_shared(&req->pool, sizeof(*slot), on_req_dispose);
    *slot = c;
    ++c->refs;
    ++c->active;
    if (req->version >= 0x200)
        c->h2 = 1;
    stream_request(&c->stream, req);
}

/* Close a connection the way a client's reset would: h2o sees the end of its input and closes it itself. */
static void doom(conn_t *c, const char *why, _Atomic uint64_t *counter)
{
    char peer[INET6_ADDRSTRLEN];
    peer_of(c->sock, peer, sizeof(peer));
    log_info("closing the connection of %s: %s", peer[0] ? peer : "a client", why);
    ++*counter;
    c->doomed = 1;
    shutdown(h2o_socket_get_fd(c->sock), SHUT_RDWR);
}

static void on_tick(h2o_timeout_entry_t *entry)
{
    thread_ctx_t *tc = loop_tc;
    uint64_t now = time_mono_ms();
    for (h2o_linklist_t *l = tc->conns.next; l != &tc->conns; l = l->next) {
        conn_t *c = H2O_STRUCT_FROM_MEMBER(conn_t, link, l);
        /* a request in a handler is the handler's to time, unless berth receives its body (http/stream.h) */
        int receiving = stream_receiving(&c->stream);
        if ((c->active > 0 && !receiving) || c->doomed)
            continue;
        if (!c->h2 && c->active == 0)
            stream_front(&c->stream); /* a TLS connection, once h2o reads it */
        /* HTTP/1 keeps the request's head at the start of its input until the answer; HTTP/2 frames, or the empty
         * input of a TLS handshake (bounded by h2o's handshake timeout), have no head to wait for. Which protocol
         * a socket speaks is not asked of h2o: its TLS state may be half gone while the socket closes. */
        h2o_buffer_t *in = c->sock->input;
        int http1 = !c->h2 && in != NULL && conns_looks_http1(in->bytes, in->size);
        int head_done = !http1 || conns_head_done(in->bytes, in->size);
        size_t got = received(c->sock);
        /* a large body on its way: refused now unless the head carries credentials (any mode but open) */
        if (c->drain_unvetted && stream_draining(&c->stream) && got - c->clock.mark > ANONYMOUS_BODY_MAX) {
            doom(c, "a request body without valid credentials", &g.anonymous);
            continue;
        }
        if (http1 && head_done && !c->vetted && !receiving && got - c->clock.mark > ANONYMOUS_BODY_MAX) {
            c->vetted = 1;
            if (!gate_head_authenticated(tc, in->bytes, in->size)) {
                doom(c, "a request body without valid credentials", &g.anonymous);
                continue;
            }
        }
        switch (conns_judge(&c->clock, now, got, head_done, &g.lim)) {
        case CONNS_IDLE:
            doom(c, "idle longer than http.idle_timeout", &g.idle);
            break;
        case CONNS_SLOW_HEAD:
            doom(c, "request head not complete within http.header_timeout", &g.slow_head);
            break;
        case CONNS_SLOW_BODY:
            doom(c, "request arriving slower than http.min_rate", &g.slow_body);
            break;
        default:
            break;
        }
    }
    h2o_timeout_link(tc->ctx.loop, &tick_timeout, entry);
}

void conns_loop_init(thread_ctx_t *tc)
{
    loop_tc = tc;
    h2o_linklist_init_anchor(&tc->conns);
    h2o_timeout_init(tc->ctx.loop, &tick_timeout, TICK_MS);
    tick_entry = (h2o_timeout_entry_t){.cb = on_tick};
    h2o_timeout_link(tc->ctx.loop, &tick_timeout, &tick_entry);
}

void conns_loop_dispose(thread_ctx_t *tc)
{
    if (h2o_timeout_is_linked(&tick_entry))
        h2o_timeout_unlink(&tick_entry);
    h2o_timeout_dispose(tc->ctx.loop, &tick_timeout);
    loop_tc = NULL;
}

size_t conns_start(void)
{
    const config_t *cfg = &berth.cfg;
    g.lim = (conns_limits_t){cfg->http_idle_timeout_ms, cfg->http_header_timeout_ms, cfg->http_min_rate};
    g.per_address = cfg->http_max_connections_per_address;
    /* every connection may hold its socket and a file (a body, a blob); keep some for the store and the logs */
    struct rlimit rl;
    size_t max = cfg->http_max_connections;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY) {
        size_t fit = rl.rlim_cur > 512 ? (size_t)(rl.rlim_cur - 256) / 2 : (size_t)rl.rlim_cur / 4;
        if (fit < max) {
            log_warn("http.max_connections lowered from %zu to %zu: only %llu file descriptors (raise the hard "
                     "limit, e.g. LimitNOFILE= or ulimit -Hn)",
                     max, fit ? fit : 1, (unsigned long long)rl.rlim_cur);
            max = fit ? fit : 1;
        }
    }
    return max;
}

void conns_stop(void)
{
    pthread_mutex_lock(&g.mu);
    for (size_t i = 0; i < ADDR_BUCKETS; ++i) {
        while (g.buckets[i] != NULL) {
            addr_entry_t *e = g.buckets[i];
            g.buckets[i] = e->next;
            free(e);
        }
    }
    pthread_mutex_unlock(&g.mu);
}

size_t conns_count(thread_ctx_t *tc)
{
    return tc->nconns;
}

int conns_recent_io(thread_ctx_t *tc)
{
    for (h2o_linklist_t *l = tc->conns.next; l != &tc->conns; l = l->next) {
        conn_t *c = H2O_STRUCT_FROM_MEMBER(conn_t, link, l);
        struct tcp_info ti;
        socklen_t len = sizeof(ti);
        if (getsockopt(h2o_socket_get_fd(c->sock), IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
            ti.tcpi_last_data_recv < 1000 || ti.tcpi_last_data_sent < 1000)
            return 1;
    }
    return 0;
}

void conns_stats(conns_stats_t *out)
{
    *out = (conns_stats_t){g.idle, g.slow_head, g.slow_body, g.anonymous, g.refused_total, g.refused_address};
}
