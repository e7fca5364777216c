/*
 * smallblobs - keep-alive load client for bench/run (libcurl, one thread and one easy handle per client).
 *
 * One process, persistent connections: what it measures is the server, not process start-up (one curl
 * process per blob mostly measures fork+exec and the TCP handshake).
 *
 *   smallblobs push URL REPO [-c CLIENTS] [-n BLOBS_PER_CLIENT] [-s SIZE] [-1] [-H HEADER]...
 *       each client pushes BLOBS_PER_CLIENT distinct random blobs of SIZE bytes (default 16 x 125 x 4096):
 *       POST /v2/REPO/blobs/uploads/ then PUT <Location>?digest= (default), or with -1 one monolithic
 *       POST /v2/REPO/blobs/uploads/?digest= (a single request; not every registry supports it).
 *       Prints blobs, seconds, blobs_per_s, p50_ms, p99_ms (latency of one whole blob push), errors.
 *   smallblobs tags URL REPO COUNT [-c CLIENTS] [-H HEADER]...
 *       pushes one config and one layer blob, then PUTs the same OCI manifest under COUNT tags
 *       t000000, t000001, ... (at-scale data for tags/list, generated through the API).
 *   smallblobs repos URL PREFIX COUNT [-c CLIENTS] [-H HEADER]...
 *       pushes one config and one layer blob to PREFIX/src, then for i < COUNT: mounts both into
 *       PREFIX/r000000... (POST ?mount=&from=) and PUTs the manifest as tag "latest".
 *   smallblobs big URL REPO FILE [-k CHUNK_BYTES] [-H HEADER]...
 *       pushes FILE as one blob: monolithic POST + PUT ?digest= (body streamed), or with -k chunked PATCHes
 *       with Content-Range, then PUT ?digest=. Prints per-phase times: post_s, send_s (client sending the
 *       body, i.e. until libcurl asked for more data past the end), finish_s (after the last body byte until
 *       the response: the server's verification, fsync, rename and database write), total_s, mb_per_s.
 *   smallblobs ready URL TIMEOUT_S CMD [ARGS...]
 *       runs CMD (its output to $READY_LOG or /dev/null) and polls GET URL every millisecond until 200;
 *       prints ready_s (fork+exec to the first 200) and pid (the server keeps running).
 *
 * Output: one "name: value" per line. Exit status 0 only if every request got the expected status.
 * Build: cc -O2 -pthread bench/smallblobs.c -o smallblobs $(curl-config --libs) -lcrypto
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

static char *g_url;    /* base URL without trailing slash */
static char g_origin[512];
static struct curl_slist *g_extra; /* -H headers */
static int g_clients = 16, g_per = 125, g_single = 0;
static size_t g_size = 4096;
static long g_chunk = 0;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "smallblobs: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sha256_hex(const void *p, size_t n, char out[72])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
    strcpy(out, "sha256:");
    for (int i = 0; i < 32; ++i)
        sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

/* ---- one keep-alive HTTP client ------------------------------------------------------------------------- */

typedef struct {
    CURL *h;
    char location[1024];
    long status;
    /* request body from memory */
    const char *body;
    size_t blen, boff;
    /* request body from a file */
    int fd;
    off_t foff, fend;
    double t_body_end; /* when the read callback first found the body exhausted */
    char errbuf[CURL_ERROR_SIZE];
} client_t;

static size_t on_header(char *b, size_t sz, size_t n, void *p)
{
    client_t *c = p;
    size_t len = sz * n;
    if (len > 9 && strncasecmp(b, "location:", 9) == 0) {
        const char *v = b + 9;
        size_t vl = len - 9;
        while (vl && (*v == ' ' || *v == '\t'))
            ++v, --vl;
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            --vl;
        if (vl >= sizeof(c->location) - 600)
            vl = sizeof(c->location) - 600;
        memcpy(c->location, v, vl);
        c->location[vl] = 0;
    }
    return len;
}

static size_t on_body(char *b, size_t sz, size_t n, void *p)
{
    (void)b, (void)p;
    return sz * n; /* discard */
}

static size_t on_read_mem(char *b, size_t sz, size_t n, void *p)
{
    client_t *c = p;
    size_t want = sz * n, left = c->blen - c->boff;
    if (want > left)
        want = left;
    memcpy(b, c->body + c->boff, want);
    c->boff += want;
    return want;
}

static size_t on_read_file(char *b, size_t sz, size_t n, void *p)
{
    client_t *c = p;
    size_t want = sz * n;
    if ((off_t)want > c->fend - c->foff)
        want = c->fend - c->foff;
    if (want == 0) {
        if (c->t_body_end == 0)
            c->t_body_end = now();
        return 0;
    }
    ssize_t r = pread(c->fd, b, want, c->foff);
    if (r <= 0)
        return CURL_READFUNC_ABORT;
    c->foff += r;
    if (c->foff == c->fend && c->t_body_end == 0)
        c->t_body_end = now();
    return r;
}

static void client_init(client_t *c)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    if ((c->h = curl_easy_init()) == NULL)
        die("curl_easy_init failed");
}

/* url: absolute, or a path starting with '/' (relative to the origin). Returns the HTTP status, 0 on error. */
static long request(client_t *c, const char *method, const char *url, const char *ctype, const void *body, size_t blen)
{
    char full[2048];
    if (url[0] == '/')
        snprintf(full, sizeof(full), "%s%s", g_origin, url);
    else
        snprintf(full, sizeof(full), "%s", url);
    CURL *h = c->h;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, full);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 600L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    struct curl_slist *hl = NULL;
    for (struct curl_slist *e = g_extra; e; e = e->next)
        hl = curl_slist_append(hl, e->data);
    hl = curl_slist_append(hl, "Expect:");
    if (ctype) {
        char ct[256];
        snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
        hl = curl_slist_append(hl, ct);
    }
    c->location[0] = 0;
    c->t_body_end = 0;
    if (c->fd >= 0) { /* streamed from the file range [foff, fend) */
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read_file);
        curl_easy_setopt(h, CURLOPT_READDATA, c);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)(c->fend - c->foff));
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0) {
        c->body = body ? body : "";
        c->blen = body ? blen : 0;
        c->boff = 0;
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read_mem);
        curl_easy_setopt(h, CURLOPT_READDATA, c);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)c->blen);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hl);
    c->status = 0;
    if (rc != CURLE_OK) {
        fprintf(stderr, "smallblobs: %s %s: %s\n", method, full, c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc));
        return 0;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->status);
    return c->status;
}

static int expect(client_t *c, long want, const char *what)
{
    if (c->status == want)
        return 0;
    fprintf(stderr, "smallblobs: %s: HTTP %ld, expected %ld\n", what, c->status, want);
    return -1;
}

/* Location + "?digest=" or "&digest=" */
static void with_digest(const char *loc, const char *digest, char *out, size_t n)
{
    snprintf(out, n, "%s%sdigest=%s", loc, strchr(loc, '?') ? "&" : "?", digest);
}

/* Push a blob from memory: POST + PUT, or one POST ?digest= */
static int push_blob(client_t *c, const char *repo, const void *data, size_t len, const char *digest)
{
    char url[4096], loc[2048];
    if (g_single) {
        snprintf(url, sizeof(url), "%s/v2/%s/blobs/uploads/?digest=%s", g_url, repo, digest);
        request(c, "POST", url, "application/octet-stream", data, len);
        return expect(c, 201, "POST ?digest=");
    }
    snprintf(url, sizeof(url), "%s/v2/%s/blobs/uploads/", g_url, repo);
    request(c, "POST", url, NULL, NULL, 0);
    if (expect(c, 202, "POST upload") || !c->location[0])
        return -1;
    snprintf(loc, sizeof(loc), "%s", c->location);
    with_digest(loc, digest, url, sizeof(url));
    request(c, "PUT", url, "application/octet-stream", data, len);
    return expect(c, 201, "PUT blob");
}

/* ---- push: many small blobs ------------------------------------------------------------------------------- */

typedef struct {
    int id;
    const char *repo;
    unsigned char *data; /* g_per * g_size bytes */
    char (*digests)[72];
    double *lat;
    int errors;
} pusher_t;

static void *push_main(void *p)
{
    pusher_t *w = p;
    client_t c;
    client_init(&c);
    for (int i = 0; i < g_per; ++i) {
        double t0 = now();
        if (push_blob(&c, w->repo, w->data + (size_t)i * g_size, g_size, w->digests[i]) != 0) {
            w->errors++;
            break;
        }
        w->lat[i] = now() - t0;
    }
    curl_easy_cleanup(c.h);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(q * (n - 1) + 0.5);
    return v[i];
}

static int cmd_push(const char *repo)
{
    pusher_t *ws = calloc(g_clients, sizeof(*ws));
    int ur = open("/dev/urandom", O_RDONLY);
    if (ur < 0)
        die("/dev/urandom: %s", strerror(errno));
    for (int k = 0; k < g_clients; ++k) {
        pusher_t *w = &ws[k];
        w->id = k;
        w->repo = repo;
        w->data = malloc((size_t)g_per * g_size);
        w->digests = calloc(g_per, sizeof(*w->digests));
        w->lat = calloc(g_per, sizeof(double));
        size_t need = (size_t)g_per * g_size, got = 0;
        while (got < need) {
            ssize_t r = read(ur, w->data + got, need - got);
            if (r <= 0)
                die("/dev/urandom: short read");
            got += r;
        }
        for (int i = 0; i < g_per; ++i)
            sha256_hex(w->data + (size_t)i * g_size, g_size, w->digests[i]);
    }
    close(ur);
    pthread_t *th = calloc(g_clients, sizeof(*th));
    double t0 = now();
    for (int k = 0; k < g_clients; ++k)
        pthread_create(&th[k], NULL, push_main, &ws[k]);
    for (int k = 0; k < g_clients; ++k)
        pthread_join(th[k], NULL);
    double dt = now() - t0;
    size_t n = (size_t)g_clients * g_per, m = 0;
    int errors = 0;
    double *all = calloc(n, sizeof(double));
    for (int k = 0; k < g_clients; ++k) {
        errors += ws[k].errors;
        for (int i = 0; i < g_per; ++i)
            if (ws[k].lat[i] > 0)
                all[m++] = ws[k].lat[i];
    }
    qsort(all, m, sizeof(double), cmp_double);
    printf("blobs: %zu\nseconds: %.3f\nblobs_per_s: %.1f\np50_ms: %.2f\np99_ms: %.2f\nerrors: %d\n", m, dt, m / dt,
           pct(all, m, 0.50) * 1e3, pct(all, m, 0.99) * 1e3, errors);
    printf("first_digest: %s\nlast_digest: %s\n", ws[0].digests[0], ws[g_clients - 1].digests[g_per - 1]);
    return errors ? 1 : 0;
}

/* ---- tags / repos: at-scale data through the API ------------------------------------------------------------ */

static char g_config[256], g_config_digest[72], g_layer_digest[72], g_manifest[1024];
static unsigned char g_layer[1024];

static void make_image(client_t *c, const char *repo, const char *tag_hint)
{
    snprintf(g_config, sizeof(g_config),
             "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]},"
             "\"config\":{\"Labels\":{\"bench\":\"%s\"}}}",
             tag_hint);
    sha256_hex(g_config, strlen(g_config), g_config_digest);
    for (size_t i = 0; i < sizeof(g_layer); ++i)
        g_layer[i] = (unsigned char)(i * 131 + 7);
    memcpy(g_layer, tag_hint, strlen(tag_hint) < 64 ? strlen(tag_hint) : 64);
    sha256_hex(g_layer, sizeof(g_layer), g_layer_digest);
    snprintf(g_manifest, sizeof(g_manifest),
             "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
             "\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
             "\"digest\":\"%s\",\"size\":%zu}]}",
             MT_MANIFEST, g_config_digest, strlen(g_config), g_layer_digest, sizeof(g_layer));
    if (push_blob(c, repo, g_config, strlen(g_config), g_config_digest) ||
        push_blob(c, repo, g_layer, sizeof(g_layer), g_layer_digest))
        die("cannot push the image's blobs to %s", repo);
}

typedef struct {
    int from, to; /* index range */
    const char *name;
    int errors;
} gen_t;

static int g_mode_repos;

static void *gen_main(void *p)
{
    gen_t *g = p;
    client_t c;
    client_init(&c);
    char url[4096], repo[512];
    for (int i = g->from; i < g->to && !g->errors; ++i) {
        if (g_mode_repos) {
            snprintf(repo, sizeof(repo), "%s/r%06d", g->name, i);
            const char *ds[2] = {g_config_digest, g_layer_digest};
            for (int k = 0; k < 2; ++k) {
                snprintf(url, sizeof(url), "%s/v2/%s/blobs/uploads/?mount=%s&from=%s/src", g_url, repo, ds[k], g->name);
                request(&c, "POST", url, NULL, NULL, 0);
                if (expect(&c, 201, "POST ?mount=")) {
                    g->errors++;
                    break;
                }
            }
            snprintf(url, sizeof(url), "%s/v2/%s/manifests/latest", g_url, repo);
        } else {
            snprintf(url, sizeof(url), "%s/v2/%s/manifests/t%06d", g_url, g->name, i);
        }
        request(&c, "PUT", url, MT_MANIFEST, g_manifest, strlen(g_manifest));
        if (expect(&c, 201, "PUT manifest"))
            g->errors++;
    }
    curl_easy_cleanup(c.h);
    return NULL;
}

static int cmd_gen(const char *name, int count)
{
    client_t c;
    client_init(&c);
    char src[512];
    snprintf(src, sizeof(src), g_mode_repos ? "%s/src" : "%s", name);
    make_image(&c, src, name);
    curl_easy_cleanup(c.h);
    gen_t *gs = calloc(g_clients, sizeof(*gs));
    pthread_t *th = calloc(g_clients, sizeof(*th));
    double t0 = now();
    for (int k = 0; k < g_clients; ++k) {
        gs[k].from = (int)((long)count * k / g_clients);
        gs[k].to = (int)((long)count * (k + 1) / g_clients);
        gs[k].name = name;
        pthread_create(&th[k], NULL, gen_main, &gs[k]);
    }
    int errors = 0;
    for (int k = 0; k < g_clients; ++k) {
        pthread_join(th[k], NULL);
        errors += gs[k].errors;
    }
    double dt = now() - t0;
    printf("count: %d\nseconds: %.3f\nper_s: %.1f\nerrors: %d\nmanifest_digest: ", count, dt, count / dt, errors);
    char md[72];
    sha256_hex(g_manifest, strlen(g_manifest), md);
    printf("%s\n", md);
    return errors ? 1 : 0;
}

/* ---- big: one large blob, monolithic or chunked, with phase times ---------------------------------------- */

static int cmd_big(const char *repo, const char *file)
{
    int fd = open(file, O_RDONLY);
    if (fd < 0)
        die("%s: %s", file, strerror(errno));
    struct stat st;
    fstat(fd, &st);
    /* digest first (not timed) */
    EVP_MD_CTX *x = EVP_MD_CTX_new();
    EVP_DigestInit_ex(x, EVP_sha256(), NULL);
    static unsigned char buf[1 << 20];
    ssize_t r;
    off_t off = 0;
    while ((r = pread(fd, buf, sizeof(buf), off)) > 0) {
        EVP_DigestUpdate(x, buf, r);
        off += r;
    }
    unsigned char md[32];
    unsigned int mdlen;
    EVP_DigestFinal_ex(x, md, &mdlen);
    EVP_MD_CTX_free(x);
    char digest[72];
    strcpy(digest, "sha256:");
    for (int i = 0; i < 32; ++i)
        sprintf(digest + 7 + 2 * i, "%02x", md[i]);

    client_t c;
    client_init(&c);
    char url[4096], loc[2048];
    double t0 = now();
    snprintf(url, sizeof(url), "%s/v2/%s/blobs/uploads/", g_url, repo);
    request(&c, "POST", url, NULL, NULL, 0);
    if (expect(&c, 202, "POST upload") || !c.location[0])
        return 1;
    double t_post = now();
    snprintf(loc, sizeof(loc), "%s", c.location);
    double send = 0, finish = 0, patches_total = 0;
    int nchunks = 0;
    if (g_chunk > 0) {
        for (off_t o = 0; o < st.st_size; o += g_chunk) {
            off_t end = o + g_chunk < st.st_size ? o + g_chunk : st.st_size;
            char cr[128];
            snprintf(cr, sizeof(cr), "Content-Range: %lld-%lld", (long long)o, (long long)end - 1);
            struct curl_slist *save = g_extra;
            g_extra = curl_slist_append(NULL, cr);
            for (struct curl_slist *e = save; e; e = e->next)
                g_extra = curl_slist_append(g_extra, e->data);
            c.fd = fd, c.foff = o, c.fend = end;
            double ts = now();
            request(&c, "PATCH", loc, "application/octet-stream", NULL, 0);
            double te = now();
            curl_slist_free_all(g_extra);
            g_extra = save;
            if (expect(&c, 202, "PATCH") || !c.location[0])
                return 1;
            send += (c.t_body_end ? c.t_body_end : te) - ts;
            finish += te - (c.t_body_end ? c.t_body_end : te);
            patches_total += te - ts;
            ++nchunks;
            snprintf(loc, sizeof(loc), "%s", c.location);
        }
        c.fd = -1;
        with_digest(loc, digest, url, sizeof(url));
        double ts = now();
        request(&c, "PUT", url, NULL, "", 0);
        double te = now();
        if (expect(&c, 201, "PUT ?digest= (close)"))
            return 1;
        printf("patch_send_s: %.3f\npatch_wait_s: %.3f\npatches_s: %.3f\nchunks: %d\nclose_put_s: %.3f\n", send, finish,
               patches_total, nchunks, te - ts);
        finish = te - ts;
    } else {
        with_digest(loc, digest, url, sizeof(url));
        c.fd = fd, c.foff = 0, c.fend = st.st_size;
        double ts = now();
        request(&c, "PUT", url, "application/octet-stream", NULL, 0);
        double te = now();
        if (expect(&c, 201, "PUT blob"))
            return 1;
        double be = c.t_body_end ? c.t_body_end : te;
        send = be - ts;
        finish = te - be;
        printf("send_s: %.3f\nfinish_s: %.3f\n", send, finish);
    }
    double total = now() - t0;
    printf("post_s: %.4f\ntotal_s: %.3f\nbytes: %lld\nmb_per_s: %.1f\ndigest: %s\n", t_post - t0, total,
           (long long)st.st_size, st.st_size / total / 1e6, digest);
    curl_easy_cleanup(c.h);
    close(fd);
    return 0;
}

/* ---- ready: exec a server and time it until GET URL answers 200 -------------------------------------------- */

static int cmd_ready(const char *url, double timeout, char **argv)
{
    client_t c;
    client_init(&c);
    double t0 = now();
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) { /* the server's output goes to $READY_LOG (default /dev/null), not to our stdout */
        const char *lp = getenv("READY_LOG");
        int lfd = open(lp && *lp ? lp : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (lfd >= 0) {
            dup2(lfd, 1);
            dup2(lfd, 2);
            close(lfd);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    for (;;) {
        curl_easy_reset(c.h);
        curl_easy_setopt(c.h, CURLOPT_URL, url);
        curl_easy_setopt(c.h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c.h, CURLOPT_TIMEOUT_MS, 2000L);
        curl_easy_setopt(c.h, CURLOPT_NOSIGNAL, 1L);
        long code = 0;
        if (curl_easy_perform(c.h) == CURLE_OK)
            curl_easy_getinfo(c.h, CURLINFO_RESPONSE_CODE, &code);
        double t = now() - t0;
        if (code == 200) {
            printf("ready_s: %.4f\npid: %d\n", t, (int)pid);
            fflush(stdout);
            return 0; /* the server keeps running: the caller stops it */
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            die("server exited before answering (status %d)", st);
        if (t > timeout) {
            kill(pid, SIGTERM);
            die("no 200 from %s within %.0f s", url, timeout);
        }
        usleep(1000);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: smallblobs push URL REPO [-c N] [-n M] [-s SIZE] [-1] [-H HDR]...\n"
                    "       smallblobs tags URL REPO COUNT [-c N] [-H HDR]...\n"
                    "       smallblobs repos URL PREFIX COUNT [-c N] [-H HDR]...\n"
                    "       smallblobs big URL REPO FILE [-k CHUNK] [-H HDR]...\n"
                    "       smallblobs ready URL TIMEOUT_S CMD [ARGS...]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 3)
        usage();
    const char *cmd = argv[1];
    curl_global_init(CURL_GLOBAL_ALL);
    if (strcmp(cmd, "ready") == 0) {
        if (argc < 5)
            usage();
        return cmd_ready(argv[2], atof(argv[3]), argv + 4);
    }
    char *pos[4] = {0};
    int npos = 0;
    for (int i = 2; i < argc; ++i) {
        const char *a = argv[i];
        if (strcmp(a, "-c") == 0 && i + 1 < argc)
            g_clients = atoi(argv[++i]);
        else if (strcmp(a, "-n") == 0 && i + 1 < argc)
            g_per = atoi(argv[++i]);
        else if (strcmp(a, "-s") == 0 && i + 1 < argc)
            g_size = strtoul(argv[++i], NULL, 10);
        else if (strcmp(a, "-k") == 0 && i + 1 < argc)
            g_chunk = strtol(argv[++i], NULL, 10);
        else if (strcmp(a, "-1") == 0)
            g_single = 1;
        else if (strcmp(a, "-H") == 0 && i + 1 < argc)
            g_extra = curl_slist_append(g_extra, argv[++i]);
        else if (a[0] == '-')
            usage();
        else if (npos < 4)
            pos[npos++] = argv[i];
        else
            usage();
    }
    if (npos < 2 || g_clients < 1 || g_per < 1 || g_size < 1)
        usage();
    g_url = strdup(pos[0]);
    size_t ul = strlen(g_url);
    while (ul && g_url[ul - 1] == '/')
        g_url[--ul] = 0;
    const char *p = strstr(g_url, "://");
    if (!p)
        die("URL must start with http:// or https://");
    const char *slash = strchr(p + 3, '/');
    snprintf(g_origin, sizeof(g_origin), "%.*s", (int)(slash ? slash - g_url : (long)ul), g_url);

    if (strcmp(cmd, "push") == 0)
        return cmd_push(pos[1]);
    if (strcmp(cmd, "tags") == 0 || strcmp(cmd, "repos") == 0) {
        if (npos < 3)
            usage();
        g_mode_repos = cmd[0] == 'r';
        return cmd_gen(pos[1], atoi(pos[2]));
    }
    if (strcmp(cmd, "big") == 0) {
        if (npos < 3)
            usage();
        return cmd_big(pos[1], pos[2]);
    }
    usage();
    return 2;
}
