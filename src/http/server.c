#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "http/conns.h"
#include "http/stream.h"
#include "http/router.h"
#include "http/server.h"
#include "http/work.h"
#include "util/log.h"
#include "util/time.h"

berth_t berth;

static struct addrinfo *listen_addr;
static thread_ctx_t *threads;
static unsigned nthreads;
static const server_hooks_t *const *hooks;

/*
 * Where the loops stand, for the main thread. It may send a loop "stop" only once the loop is `ready` (its receivers
 * registered, on its own thread). A loop that `ended` (no more turns) keeps its thread, and so its __thread state,
 * until the main thread, having stopped the worker pools, says `dispose`: until then a job or a fetch may still post
 * to its receivers (and a message linked into a receiver that is gone corrupts the queue).
 */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    unsigned ready, ended;
    int dispose;
} loops = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};

/* On a loop's thread: count it in `*phase` (loops.ready or loops.ended) and tell the main thread. */
static void loops_enter(unsigned *phase)
{
    pthread_mutex_lock(&loops.mu);
    ++*phase;
    pthread_cond_broadcast(&loops.cond);
    pthread_mutex_unlock(&loops.mu);
}

/* On the main thread: wait until every loop is counted in `*phase`. */
static void loops_wait(const unsigned *phase)
{
    pthread_mutex_lock(&loops.mu);
    while (*phase < nthreads)
        pthread_cond_wait(&loops.cond, &loops.mu);
    pthread_mutex_unlock(&loops.mu);
}

/* ":port" (no host): every address, IPv4 and IPv6, on one IPv6 socket that also takes IPv4 (IPV6_V6ONLY off).
 * "[::]:port" and "0.0.0.0:port" are left to the system as they always were. */
static int listen_any;

static int parse_addr(const char *addr, struct addrinfo **out)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || (size_t)(colon - addr) >= sizeof(host))
        return -1;
    const char *h = addr;
    size_t hlen = (size_t)(colon - addr);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        ++h;
        hlen -= 2;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    listen_any = hlen == 0 && colon == addr;
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    if (listen_any)
        hints.ai_flags |= AI_NUMERICHOST;
    int rc = getaddrinfo(listen_any ? "::" : hlen ? host : NULL, colon + 1, &hints, out);
    if (rc != 0) {
        log_error("http.addr %s: %s", addr, gai_strerror(rc));
        return -1;
    }
    return 0;
}

/* A listening socket on `ai`; *err_out the errno on failure. */
static int listen_on(const struct addrinfo *ai, int dual, int *err_out)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), on = 1, off = 0;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0 ||
        (dual && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) != 0) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        *err_out = errno;
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int open_listener(void)
{
    int err = 0, fd = listen_on(listen_addr, listen_any, &err);
    if (fd < 0 && listen_any && (err == EAFNOSUPPORT || err == EADDRNOTAVAIL || err == EPROTONOSUPPORT)) {
        /* no IPv6 on this machine: every IPv4 address, then */
        struct addrinfo hints = {.ai_family = AF_INET,
                                 .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_PASSIVE | AI_NUMERICSERV | AI_NUMERICHOST},
                        *v4;
        char port[8];
        snprintf(port, sizeof(port), "%u", ntohs(((const struct sockaddr_in6 *)listen_addr->ai_addr)->sin6_port));
        if (getaddrinfo("0.0.0.0", port, &hints, &v4) == 0) {
            log_warn("http.addr %s: no IPv6 here (%s): listening on every IPv4 address only", berth.cfg.http_addr,
                     strerror(err));
            freeaddrinfo(listen_addr);
            listen_addr = v4;
            listen_any = 0;
            fd = listen_on(listen_addr, 0, &err);
        }
    }
    if (fd < 0)
        log_error("cannot listen on %s: %s", berth.cfg.http_addr, strerror(err));
    return fd;
}

/* Out of descriptors, a pending connection would stay in the backlog and wake the loop again at once: give up
 * the loop's spare descriptor, take the connection and close it, and keep the spare again. */
static void shed(thread_ctx_t *tc)
{
    static _Atomic uint64_t shed_count;
    if (tc->spare_fd >= 0)
        close(tc->spare_fd);
    int fd = accept4(tc->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0)
        close(fd);
    tc->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (shed_count++ % 1000 == 0)
        log_error("out of file descriptors (%s): connections refused at accept", strerror(EMFILE));
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    thread_ctx_t *tc = listener->data;
    h2o_socket_t *sock;
    if (err != NULL)
        return;
    for (int i = 0; i < 16; ++i) {
        if ((sock = h2o_evloop_socket_accept(listener)) == NULL) {
            if (errno == EMFILE || errno == ENFILE)
                shed(tc);
            return;
        }
        conns_accept(tc, sock);
    }
}

static void on_shutdown(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    thread_ctx_t *tc = H2O_STRUCT_FROM_MEMBER(thread_ctx_t, shutdown, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        h2o_linklist_t *m = messages->next;
        h2o_linklist_unlink(m);
        free(m);
    }
    if (tc->stopping)
        return;
    tc->stopping = 1;
    if (tc->listener != NULL) {
        h2o_socket_read_stop(tc->listener);
        h2o_socket_close(tc->listener);
        tc->listener = NULL;
    }
    h2o_context_request_shutdown(&tc->ctx);
}

static void *thread_main(void *arg)
{
    thread_ctx_t *tc = arg;
    h2o_loop_t *loop = h2o_evloop_create();
    h2o_context_init(&tc->ctx, loop, &berth.globalconf);
    h2o_timeout_init(loop, &tc->zero_timeout, 0);
    conns_loop_init(tc);
    tc->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    h2o_multithread_register_receiver(tc->ctx.queue, &tc->work_done, work_on_done);
    h2o_multithread_register_receiver(tc->ctx.queue, &tc->shutdown, on_shutdown);
    for (const server_hooks_t *const *h = hooks; *h != NULL; ++h)
        if ((*h)->loop_init != NULL)
            (*h)->loop_init(tc);
    tc->accept_ctx.ctx = &tc->ctx;
    tc->accept_ctx.hosts = berth.globalconf.hosts;
    tc->accept_ctx.ssl_ctx = berth.ssl_ctx;
    stream_loop_init(&tc->ctx, &tc->accept_ctx); /* its timeout must be the loop's last */
    tc->listener = h2o_evloop_socket_create(loop, tc->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    tc->listener->data = tc;
    h2o_socket_read_start(tc->listener, on_accept);
    loops_enter(&loops.ready);

    /* After SIGTERM: run until every connection is gone, or no request is being handled and no connection moved
     * data for a second (idle keep-alive connections do not hold the exit; a body still arriving does), or the
     * timeout. */
    uint64_t deadline = 0;
    for (;;) {
        h2o_evloop_run(loop, tc->stopping ? 100 : INT32_MAX);
        if (!tc->stopping)
            continue;
        uint64_t now = time_mono_ms();
        if (deadline == 0)
            deadline = now + berth.cfg.http_shutdown_timeout_ms;
        if (conns_count(tc) == 0 || (tc->inflight == 0 && !conns_recent_io(tc)) || now >= deadline)
            break;
    }
    loops_enter(&loops.ended);
    pthread_mutex_lock(&loops.mu);
    while (!loops.dispose)
        pthread_cond_wait(&loops.cond, &loops.mu);
    pthread_mutex_unlock(&loops.mu);
    for (const server_hooks_t *const *h = hooks; *h != NULL; ++h)
        if ((*h)->loop_dispose != NULL)
            (*h)->loop_dispose(tc);
    conns_loop_dispose(tc);
    stream_loop_dispose();
    if (tc->spare_fd >= 0)
        close(tc->spare_fd);
    return NULL;
}

static SSL_CTX *tls_setup(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(ctx, berth.cfg.http_tls_certificate) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, berth.cfg.http_tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        char buf[256];
        ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
        log_error("TLS: cannot load %s / %s: %s", berth.cfg.http_tls_certificate, berth.cfg.http_tls_key, buf);
        SSL_CTX_free(ctx);
        return NULL;
    }
    h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols);
    return ctx;
}

/* h2o 2.2.5's access-log handle (lib/handler/access_log.c; opaque in h2o.h): the descriptor it writes to */
struct h2o225_access_log_filehandle {
    h2o_logconf_t *logconf;
    int fd;
};

/* log.access "-": standard output as berth got it. h2o opens a path, and reopening /dev/stdout fails where standard
 * output is a socket (journald's: ENXIO) or another user's pipe; so the handle, opened on /dev/null, gets a duplicate
 * of descriptor 1 instead (after checking that its descriptor is that /dev/null, should h2o's layout differ). */
static int access_log_to_stdout(h2o_access_log_filehandle_t *fh)
{
    int *fd = &((struct h2o225_access_log_filehandle *)fh)->fd;
    struct stat null, got;
    if (stat("/dev/null", &null) != 0 || fstat(*fd, &got) != 0 || got.st_rdev != null.st_rdev || !S_ISCHR(got.st_mode))
        return -1;
    return dup3(STDOUT_FILENO, *fd, O_CLOEXEC) < 0 ? -1 : 0;
}

static int setup_h2o(void)
{
    h2o_globalconf_t *g = &berth.globalconf;
    h2o_config_init(g);
    g->server_name = h2o_iovec_init(H2O_STRLIT("berth"));
    g->max_request_entity_size = berth.cfg.http_max_body_size;
    g->http1.req_timeout = berth.cfg.http_request_timeout_ms;
    g->http2.idle_timeout = berth.cfg.http_idle_timeout_ms;
    g->http2.graceful_shutdown_timeout = berth.cfg.http_shutdown_timeout_ms;

    /* bodies over 1 MiB go to an unlinked file on the storage volume, not to the heap or /tmp */
    h2o_socket_buffer_mmap_settings.threshold = 1024 * 1024;
    snprintf(h2o_socket_buffer_mmap_settings.fn_template, sizeof(h2o_socket_buffer_mmap_settings.fn_template),
             "%s/tmp/body.XXXXXX", berth.cfg.storage_root);

    h2o_hostconf_t *host = h2o_config_register_host(g, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(path, sizeof(*handler));
    handler->on_req = router_on_req;
    const char *log = berth.cfg.log_access;
    if (log != NULL && *log != '\0') {
        /* the request id is the X-Request-Id the router adds to every answer (its error lines carry it too) */
        int to_stdout = strcmp(log, "-") == 0;
        h2o_access_log_filehandle_t *fh = h2o_access_log_open_handle(
            to_stdout ? "/dev/null" : log,
            log_json()
                ? "{\"time\":\"%{%Y-%m-%dT%H:%M:%S%z}t\",\"level\":\"info\",\"type\":\"access\","
                  "\"request_id\":\"%{x-request-id}o\",\"remote\":\"%h\",\"method\":\"%m\",\"path\":\"%U\","
                  "\"query\":\"%q\",\"protocol\":\"%H\",\"status\":%s,\"bytes_sent\":%b,\"duration\":%{duration}x,"
                  "\"user_agent\":\"%{user-agent}i\",\"digest\":\"%{docker-content-digest}o\",\"route\":\"%{route}e\"}"
                : "%h %l %u %t \"%r\" %s %b %{duration}x \"%{user-agent}i\" %{docker-content-digest}o "
                  "%{x-request-id}o",
            log_json() ? H2O_LOGCONF_ESCAPE_JSON : H2O_LOGCONF_ESCAPE_APACHE);
        if (fh == NULL || (to_stdout && access_log_to_stdout(fh) != 0)) {
            log_error("cannot open the access log %s", log);
            return -1;
        }
        h2o_access_log_register(path, fh);
    }
    if (berth.cfg.http_tls_certificate && (berth.ssl_ctx = tls_setup()) == NULL)
        return -1;
    return 0;
}

void server_block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int is_loopback(const struct sockaddr *sa)
{
    return (sa->sa_family == AF_INET && (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127) ||
           (sa->sa_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr));
}

/* Open every loop's listener (before any thread starts: a taken port fails at once), then start the loops. */
static int start_loops(size_t max_conns)
{
    nthreads = berth.cfg.http_threads ? berth.cfg.http_threads : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    if (nthreads < 1)
        nthreads = 1;
    threads = calloc(nthreads, sizeof(*threads));
    for (unsigned i = 0; i < nthreads; ++i)
        threads[i].listen_fd = -1;
    for (unsigned i = 0; i < nthreads; ++i)
        if ((threads[i].listen_fd = open_listener()) < 0)
            return -1;
    for (unsigned i = 0; i < nthreads; ++i) {
        threads[i].max_conns = (max_conns + nthreads - 1) / nthreads;
        if ((threads[i].db = store_connect(berth.store)) == NULL)
            return -1;
    }
    for (unsigned i = 0; i < nthreads; ++i)
        pthread_create(&threads[i].thread, NULL, thread_main, &threads[i]);
    /* a SIGTERM already pending (sent during start-up) is taken as soon as we return: by then every loop must be
     * able to receive its "stop" (its context and receivers are made on its own thread) */
    loops_wait(&loops.ready);
    return 0;
}

/* After the loops ended (or never started): close what start_loops opened. */
static void stop_loops(void)
{
    for (unsigned i = 0; i < nthreads; ++i) {
        if (threads[i].db != NULL)
            metastore_close(threads[i].db);
    }
    free(threads);
    threads = NULL;
    freeaddrinfo(listen_addr);
    listen_addr = NULL;
}

static void stop_hooks(void)
{
    for (const server_hooks_t *const *h = hooks; *h != NULL; ++h)
        if ((*h)->stop != NULL)
            (*h)->stop();
}

/* http.shutdown_delay: /readyz already answers 503, but the listeners stay open and requests are served as before,
 * until the delay is over or a second signal cuts it short. A load balancer (a Kubernetes Service, an ingress) takes
 * a moment to see that readiness is gone; what it sends meanwhile is served rather than refused. */
static void shutdown_delay(const sigset_t *set, int sig)
{
    uint64_t ms = berth.cfg.http_shutdown_delay_ms;
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    log_info("received %s: not ready, still serving for %llu ms (http.shutdown_delay)",
             sig == SIGTERM ? "SIGTERM" : "SIGINT", (unsigned long long)ms);
    while (sigtimedwait(set, NULL, &ts) < 0 && errno == EINTR)
        ; /* an unrelated signal: wait again (for the whole delay; rare enough) */
}

int server_run(const config_t *cfg, store_t *store, const server_hooks_t *const *modules)
{
    berth.cfg = *cfg;
    berth.store = store;
    hooks = modules;
    size_t max_conns = conns_start();
    if (parse_addr(berth.cfg.http_addr, &listen_addr) != 0)
        return 1;
    if (strcmp(berth.cfg.mode, "open") == 0 && !is_loopback(listen_addr->ai_addr))
        log_warn("mode open: anyone who can reach %s may push, pull and delete without credentials",
                 berth.cfg.http_addr);
    if (setup_h2o() != 0) {
        stop_loops();
        return 1;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    work_pool_start(berth.cfg.workers, ncpu > 0 ? (unsigned)ncpu : 1, berth.cfg.nmirrors ? berth.cfg.workers : 0);
    for (const server_hooks_t *const *h = hooks; *h != NULL; ++h)
        if ((*h)->start != NULL)
            (*h)->start();
    if (start_loops(max_conns) != 0) {
        for (unsigned i = 0; i < nthreads; ++i) /* none started: close what was opened */
            if (threads[i].listen_fd >= 0)
                close(threads[i].listen_fd);
        stop_hooks();
        work_pool_stop();
        stop_loops();
        conns_stop();
        return 1;
    }
    log_info("berth listening on %s%s%s (mode %s, %u threads, storage %s)", berth.cfg.http_addr,
             listen_any ? " (every IPv4 and IPv6 address)" : "", berth.ssl_ctx ? " with TLS" : "", berth.cfg.mode,
             nthreads, berth.cfg.storage_root);

    sigset_t set;
    int sig;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigwait(&set, &sig);
    atomic_store(&berth.terminating, 1);
    if (berth.cfg.http_shutdown_delay_ms > 0)
        shutdown_delay(&set, sig);
    log_info("received %s: finishing in-flight requests (up to %llu ms)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
             (unsigned long long)berth.cfg.http_shutdown_timeout_ms);
    for (unsigned i = 0; i < nthreads; ++i)
        h2o_multithread_send_message(&threads[i].shutdown, calloc(1, sizeof(h2o_multithread_message_t)));
    loops_wait(&loops.ended);
    stop_hooks();
    work_pool_stop();
    pthread_mutex_lock(&loops.mu);
    loops.dispose = 1;
    pthread_cond_broadcast(&loops.cond);
    pthread_mutex_unlock(&loops.mu);
    for (unsigned i = 0; i < nthreads; ++i)
        pthread_join(threads[i].thread, NULL);
    stop_loops();
    conns_stop();
    if (berth.ssl_ctx != NULL)
        SSL_CTX_free(berth.ssl_ctx);
    berth.ssl_ctx = NULL;
    log_info("berth stopped");
    return 0;
}
