/*
 * `berth import [--copy] [--jobs N] DIR`: bring in what a CNCF distribution registry (docker-registry, registry:2) holds in its
 * filesystem storage, DIR being its `rootdirectory`:
 *
 *   docker/registry/v2/blobs/<algo>/<xx>/<hex>/data                      every blob and manifest, by digest
 *   docker/registry/v2/repositories/<name>/_layers/<algo>/<hex>/link    blobs the repository may serve
 *   .../_manifests/revisions/<algo>/<hex>/link                           the repository's manifests
 *   .../_manifests/tags/<tag>/current/link                               what a tag points at (index/: its history)
 *   .../_uploads/<uuid>/                                                  uploads in progress: not imported
 *
 * <name> may have several components (a/b/c); a folder whose name begins with "_" is distribution's own. Every
 * repository, tag, manifest (the same bytes, so the same digest) and blob link is recorded through the same store
 * functions the server uses (store/metastore.h), in transactions of up to 64 repositories on the CLI's own connection,
 * so that a running `berth serve` sees each repository appear whole (its caches follow the database's generation).
 * Blobs go through blobstore_adopt: hard-linked when on the same file system (unless --copy), else reflinked, else
 * copied, and hashed: a blob whose content does not match its digest is reported and left out, with the manifests
 * that need it and their tags. Running it again skips what is already there (a blob file in the store, a manifest, a
 * tag pointing where the source says) and does the rest: an interrupted import is finished by running it again.
 *
 * The source is not trusted: every folder is opened without following symbolic links (openat with O_NOFOLLOW, one
 * component at a time), and every repository name, tag and digest read from it is checked against the spec's grammar
 * (oci/name.h, oci/digest.h) before it names a path or goes into a query.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "auth/access.h"
#include "cli/cli_int.h"
#include "oci/manifest.h"
#include "oci/name.h"
#include "store/blobstore.h"
#include "store/store.h"
#include "util/status.h"
#include "util/time.h"

#define LINK_MAX_BYTES 256        /* a link file holds "sha256:<hex>": anything longer is not one */
#define IMPORT_BATCH_REPOS 64     /* repositories recorded in one transaction, at most */
#define IMPORT_BATCH_OBJECTS 4096 /* ... or so many manifests and blobs */

typedef struct {
    char tag[TAG_MAX_LEN + 1];
    digest_t d;
} tag_t;

/* One manifest of a repository, read and parsed. */
typedef struct {
    digest_t d;
    manifest_t *mf; /* NULL: not importable (reported) */
    void *body;
    size_t len;
    int done; /* stored (or failed for good) */
    const char **tags;
    size_t ntags;
} rev_t;

/* A blob a repository needs: its _layers links and what its manifests reference. */
typedef struct {
    digest_t d;
    int ok; /* in berth's store, with its size */
    uint64_t size;
    blobstore_how_t how; /* when placed now */
} need_t;

/* A verified file waiting to be fsynced and renamed into place (flush_pending). */
#define PENDING_MAX 256
typedef struct {
    blobstore_adopted_t ad;
    need_t *need;
} pending_t;

typedef struct {
    cli_t *c;
    blobstore_t bs;
    int v2;             /* the source's docker/registry/v2 folder */
    int may_link;       /* not --copy */
    int tty;            /* progress on stderr */
    int jobs;           /* blobs placed at once (--jobs) */
    pthread_mutex_t mu; /* the counts, the messages and `dirty`, between the threads placing blobs */
    size_t manifest_max;
    /* the repositories found */
    char **repos;
    size_t nrepos, caprepos;
    size_t uploads; /* uploads in progress seen (not imported) */
    /* counts */
    uint64_t n_repos, n_manifests, n_tags, n_links, n_blobs[3], n_present, bytes_placed, bytes_hashed, problems;
    uint64_t tmpseq;
    uint64_t kill_after; /* BERTH_TEST_IMPORT_KILL_AFTER: SIGKILL after placing so many blobs (tests) */
    double t0, last_progress;
    size_t repo_index;
    unsigned char dirty[2][256]; /* shard folders renamed into, not yet fsynced */
    pending_t *pending;          /* PENDING_MAX */
    size_t npending;
} imp_t;

/* ---- messages ---- */

/* Names read from the source may hold anything: print them with what is not printable ASCII as '?'. */
static const char *clean(const char *s, char *buf, size_t len)
{
    size_t i = 0;
    for (; s[i] && i + 1 < len; ++i)
        buf[i] = s[i] > 0x20 && s[i] < 0x7f ? s[i] : '?';
    buf[i] = '\0';
    return buf;
}

static void progress_clear(imp_t *im)
{
    if (im->tty && im->last_progress > 0)
        fputs("\r\033[K", stderr);
}

static void problem(imp_t *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(imp_t *im, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&im->mu);
    progress_clear(im);
    fputs("berth: import: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    im->problems++;
    pthread_mutex_unlock(&im->mu);
}

/* Under im->mu when blobs are being placed. */
static void progress(imp_t *im, int force)
{
    double now = time_mono_s();
    if (!im->tty || (!force && now - im->last_progress < 0.2))
        return;
    im->last_progress = now;
    double s = now - im->t0;
    fprintf(stderr, "\r\033[Kimport: %zu/%zu repositories, %" PRIu64 " blobs placed, %.2f GiB verified (%.2f GB/s)",
            im->repo_index, im->nrepos, im->n_blobs[0] + im->n_blobs[1] + im->n_blobs[2],
            (double)im->bytes_hashed / (1 << 30), s > 0 ? (double)im->bytes_hashed / s / 1e9 : 0.0);
    fflush(stderr);
}

/* ---- reading the source without following links ---- */

/* Open `name` in `dirfd` (a single component) without following a symbolic link: a folder, or a file when `file`. */
static int open_in(int dirfd, const char *name, int file)
{
    return openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (file ? 0 : O_DIRECTORY));
}

/* Open the folder at the components `comps` (NULL-terminated) under `dirfd`, each without following links. */
static int open_path(int dirfd, const char *const *comps)
{
    int fd = dup(dirfd);
    for (; fd >= 0 && *comps; ++comps) {
        int next = open_in(fd, *comps, 0);
        close(fd);
        fd = next;
    }
    return fd;
}

/* Read the link file `name` in `dirfd`: 0 with the digest, BERTH_ENOTFOUND if absent, BERTH_ERROR if not a digest. */
static int read_link(int dirfd, const char *name, digest_t *d)
{
    char buf[LINK_MAX_BYTES + 1];
    int fd = open_in(dirfd, name, 1);
    if (fd < 0)
        return errno == ENOENT ? BERTH_ENOTFOUND : BERTH_ERROR;
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n <= 0 || n > LINK_MAX_BYTES)
        return BERTH_ERROR;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        --n;
    return digest_parse(d, buf, (size_t)n) == DIGEST_OK ? 0 : BERTH_ERROR;
}

/* The folder of blob `d` in the source's blob store (blobs/<algo>/<xx>/<hex>), or -1. */
static int blob_dir(imp_t *im, const digest_t *d)
{
    char shard[3] = {digest_hex(d)[0], digest_hex(d)[1], '\0'};
    const char *comps[] = {"blobs", digest_algo_name(d->algo), shard, digest_hex(d), NULL};
    return open_path(im->v2, comps);
}

/* Each entry of folder `fd` (not "." nor ".."), with its type (d_type, or lstat when the file system says nothing). */
typedef int (*entry_cb)(imp_t *im, int dirfd, const char *name, int is_dir, int is_link, void *ctx);
static int each_entry(imp_t *im, int fd, entry_cb cb, void *ctx)
{
    int dup_fd = dup(fd);
    DIR *dir = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (dir == NULL) {
        if (dup_fd >= 0)
            close(dup_fd);
        return -1;
    }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(dir)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        int is_dir = de->d_type == DT_DIR, is_link = de->d_type == DT_LNK;
        if (de->d_type == DT_UNKNOWN) {
            struct stat st;
            if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
                continue;
            is_dir = S_ISDIR(st.st_mode);
            is_link = S_ISLNK(st.st_mode);
        }
        rc = cb(im, fd, de->d_name, is_dir, is_link, ctx);
    }
    closedir(dir);
    return rc;
}

/* ---- finding the repositories ---- */

typedef struct {
    char name[NAME_MAX_LEN + 2];
    size_t len;
} walk_t;

static int walk_repos(imp_t *im, int fd, walk_t *w);

static void repo_add(imp_t *im, const char *name)
{
    if (im->nrepos == im->caprepos) {
        im->caprepos = im->caprepos ? im->caprepos * 2 : 64;
        im->repos = realloc(im->repos, im->caprepos * sizeof(*im->repos));
    }
    im->repos[im->nrepos++] = strdup(name);
}

static int count_upload(imp_t *im, int dirfd, const char *name, int is_dir, int is_link, void *ctx)
{
    (void)dirfd, (void)name, (void)is_link, (void)ctx;
    im->uploads += is_dir != 0;
    return 0;
}

static int on_repo_entry(imp_t *im, int dirfd, const char *name, int is_dir, int is_link, void *ctx)
{
    walk_t *w = ctx;
    char show[NAME_MAX_LEN + 2], path[2 * NAME_MAX_LEN];
    if (name[0] == '_') {
        if (strcmp(name, "_manifests") == 0 || strcmp(name, "_layers") == 0) {
            if (!is_dir || is_link) {
                problem(im, "repositories/%s/%s is not a folder: skipped", clean(w->name, show, sizeof(show)), name);
                return 0;
            }
            w->name[w->len] = '\0';
            if (w->len == 0) { /* repositories/_manifests: a repository without a name */
                problem(im, "repositories/%s: a folder of distribution's outside any repository: skipped", name);
                return 0;
            }
            if (im->nrepos == 0 || strcmp(im->repos[im->nrepos - 1], w->name) != 0)
                repo_add(im, w->name);
        } else if (strcmp(name, "_uploads") == 0 && is_dir && !is_link) {
            int fd = open_in(dirfd, name, 0);
            if (fd >= 0) {
                each_entry(im, fd, count_upload, NULL);
                close(fd);
            }
        }
        return 0;
    }
    size_t nlen = strlen(name), len = w->len;
    snprintf(path, sizeof(path), "%s%s%s", w->name, len ? "/" : "", name);
    if (is_link) {
        problem(im, "repositories/%s is a symbolic link: skipped", clean(path, show, sizeof(show)));
        return 0;
    }
    if (!is_dir)
        return 0;
    if (len + (len > 0) + nlen > NAME_MAX_LEN || !name_valid(path, strlen(path))) {
        problem(im, "repositories/%s: not a valid repository name: skipped", clean(path, show, sizeof(show)));
        return 0;
    }
    int fd = open_in(dirfd, name, 0);
    if (fd < 0) {
        problem(im, "cannot open repositories/%s: %s", path, strerror(errno));
        return 0;
    }
    memcpy(w->name, path, strlen(path) + 1);
    w->len = strlen(path);
    int rc = walk_repos(im, fd, w);
    w->len = len;
    w->name[len] = '\0';
    close(fd);
    return rc;
}

static int walk_repos(imp_t *im, int fd, walk_t *w)
{
    if (each_entry(im, fd, on_repo_entry, w) != 0) {
        char show[NAME_MAX_LEN + 2];
        problem(im, "cannot list repositories/%s: %s", clean(w->name, show, sizeof(show)), strerror(errno));
    }
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- one repository ---- */

typedef struct {
    imp_t *im;
    const char *repo;
    digest_t *ds;
    size_t n, cap;
    tag_t *tags;
    size_t ntags, captags;
} scan_t;

static void digests_add(scan_t *s, const digest_t *d)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 32;
        s->ds = realloc(s->ds, s->cap * sizeof(*s->ds));
    }
    s->ds[s->n++] = *d;
}

/* An entry of <algo>/: <hex>/link, whose digest must be the folder's. */
typedef struct {
    scan_t *s;
    const char *what; /* "_layers" or "_manifests/revisions" */
    digest_algo_t algo;
} algo_walk_t;

static int on_digest_entry(imp_t *im, int dirfd, const char *name, int is_dir, int is_link, void *ctx)
{
    algo_walk_t *a = ctx;
    char str[DIGEST_MAX_STR + 2], show[DIGEST_MAX_STR + 2];
    digest_t d, l;
    if (is_link) {
        problem(im, "%s: %s/%s/%s is a symbolic link: skipped", a->s->repo, a->what, digest_algo_name(a->algo),
                clean(name, show, sizeof(show)));
        return 0;
    }
    if (!is_dir)
        return 0;
    snprintf(str, sizeof(str), "%s:%s", digest_algo_name(a->algo), name);
    if (strlen(name) > DIGEST_MAX_HEX || digest_parse(&d, str, strlen(str)) != DIGEST_OK) {
        problem(im, "%s: %s/%s/%s: not a digest: skipped", a->s->repo, a->what, digest_algo_name(a->algo),
                clean(name, show, sizeof(show)));
        return 0;
    }
    int fd = open_in(dirfd, name, 0);
    int rc = fd >= 0 ? read_link(fd, "link", &l) : BERTH_ERROR;
    if (fd >= 0)
        close(fd);
    if (rc == BERTH_ENOTFOUND) /* deleted (distribution removes the link, the folder may stay) */
        return 0;
    if (rc != 0 || !digest_equal(&l, &d)) {
        problem(im, "%s: %s/%s: its link does not name that digest: skipped", a->s->repo, a->what, d.str);
        return 0;
    }
    digests_add(a->s, &d);
    return 0;
}

static int on_algo_entry(imp_t *im, int dirfd, const char *name, int is_dir, int is_link, void *ctx)
{
    algo_walk_t *a = ctx;
    int algo = digest_algo_from_name(name, strlen(name));
    if (!is_dir || is_link || algo < 0)
        return 0;
    a->algo = (digest_algo_t)algo;
    int fd = open_in(dirfd, name, 0);
    if (fd < 0)
        return 0;
    each_entry(im, fd, on_digest_entry, a);
    close(fd);
    return 0;
}

/* The digests linked under `comps` (e.g. _layers) of repository folder `rfd`, into s->ds. */
static void scan_links(imp_t *im, int rfd, const char *const *comps, const char *what, scan_t *s)
{
    algo_walk_t a = {s, what, DIGEST_SHA256};
    int fd = open_path(rfd, comps);
    if (fd < 0)
        return;
    each_entry(im, fd, on_algo_entry, &a);
    close(fd);
}

static int on_tag_entry(imp_t *im, int dirfd, const char *name, int is_dir, int is_link, void *ctx)
{
    scan_t *s = ctx;
    char show[TAG_MAX_LEN + 2];
    digest_t d;
    if (is_link) {
        problem(im, "%s: tag folder %s is a symbolic link: skipped", s->repo, clean(name, show, sizeof(show)));
        return 0;
    }
    if (!is_dir)
        return 0;
    if (!tag_valid(name, strlen(name))) {
        problem(im, "%s: tag folder %s: not a valid tag: skipped", s->repo, clean(name, show, sizeof(show)));
        return 0;
    }
    const char *comps[] = {name, "current", NULL};
    int fd = open_path(dirfd, comps);
    if (fd < 0 && (errno == ENOTDIR || errno == ELOOP)) {
        problem(im, "%s: tag %s: its current/ is a symbolic link or not a folder: skipped", s->repo, name);
        return 0;
    }
    if (fd < 0 && errno != ENOENT) {
        problem(im, "%s: tag %s: cannot open its current/: %s: skipped", s->repo, name, strerror(errno));
        return 0;
    }
    int rc = fd >= 0 ? read_link(fd, "link", &d) : BERTH_ENOTFOUND;
    if (fd >= 0)
        close(fd);
    if (rc == BERTH_ENOTFOUND)
        return 0;
    if (rc != 0) {
        problem(im, "%s: tag %s: its link is not a digest: skipped", s->repo, name);
        return 0;
    }
    if (s->ntags == s->captags) {
        s->captags = s->captags ? s->captags * 2 : 16;
        s->tags = realloc(s->tags, s->captags * sizeof(*s->tags));
    }
    snprintf(s->tags[s->ntags].tag, sizeof(s->tags[0].tag), "%s", name);
    s->tags[s->ntags++].d = d;
    return 0;
}

/* Read manifest `d` from the source's blob store: 0, or a problem reported. */
static int read_manifest(imp_t *im, const char *repo, rev_t *r)
{
    char err[256];
    struct stat st;
    int dfd = blob_dir(im, &r->d), fd = dfd >= 0 ? open_in(dfd, "data", 1) : -1;
    if (dfd >= 0)
        close(dfd);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        problem(im, "%s: manifest %s: its content is not in the source's blobs/: skipped", repo, r->d.str);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if ((uint64_t)st.st_size > im->manifest_max) {
        close(fd);
        problem(im, "%s: manifest %s: %lld bytes, over storage.manifest_max_size: skipped", repo, r->d.str,
                (long long)st.st_size);
        return -1;
    }
    r->len = (size_t)st.st_size;
    r->body = malloc(r->len ? r->len : 1);
    size_t got = 0;
    while (got < r->len) {
        ssize_t n = read(fd, (char *)r->body + got, r->len - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    digest_t h;
    digest_compute(&h, r->d.algo, r->body, got);
    if (got != r->len || !digest_equal(&h, &r->d)) {
        problem(im, "%s: manifest %s: its content hashes to %s (corrupt in the source): skipped", repo, r->d.str,
                h.str);
        return -1;
    }
    switch (manifest_parse(&r->mf, NULL, 0, r->body, r->len, err, sizeof(err))) {
    case MANIFEST_OK:
        return 0;
    case MANIFEST_EUNSUPPORTED:
        problem(im, "%s: manifest %s: %s (berth does not serve it): skipped", repo, r->d.str, err);
        return -1;
    default:
        problem(im, "%s: manifest %s: invalid: %s: skipped", repo, r->d.str, err);
        return -1;
    }
}

static int by_digest(const void *a, const void *b)
{
    return strcmp(((const need_t *)a)->d.str, ((const need_t *)b)->d.str);
}

static need_t *need_find(need_t *needs, size_t n, const digest_t *d)
{
    need_t key = {*d, 0, 0};
    return bsearch(&key, needs, n, sizeof(*needs), by_digest);
}

/*
 * Bring blob `n` into berth's store as far as a verified temporary file (*ad), or find it there already: 1 adopted
 * (finish *ad), 0 already there (its size in n->size), -1 not importable (reported).
 */
static int place_blob(imp_t *im, const char *repo, int listed, need_t *n, blobstore_adopted_t *ad)
{
    char path[BLOBSTORE_PATH_MAX], tmpname[64];
    struct stat st;
    blobstore_path(&im->bs, &n->d, path, sizeof(path));
    if (stat(path, &st) == 0) { /* there already: files appear in the store only verified */
        n->size = (uint64_t)st.st_size;
        pthread_mutex_lock(&im->mu);
        im->n_present++;
        pthread_mutex_unlock(&im->mu);
        return 0;
    }
    /* placed for a repository before, waiting to be finished (only the main thread changes the list, between batches) */
    for (size_t i = 0; i < im->npending; ++i)
        if (digest_equal(&im->pending[i].ad.digest, &n->d)) {
            n->size = im->pending[i].need->size;
            return 0;
        }
    int dfd = blob_dir(im, &n->d);
    if (dfd < 0) {
        if (listed) /* a manifest's reference the source does not have is reported with the manifest */
            problem(im, "%s: blob %s is linked but not in the source's blobs/: skipped", repo, n->d.str);
        return -1;
    }
    digest_t got;
    snprintf(tmpname, sizeof(tmpname), "import.%ld.%" PRIu64, (long)getpid(),
             __atomic_fetch_add(&im->tmpseq, 1, __ATOMIC_RELAXED));
    int rc = blobstore_adopt(&im->bs, dfd, "data", &n->d, im->may_link, tmpname, &n->how, &n->size, &got, ad);
    int e = errno;
    close(dfd);
    if (rc == BERTH_EDIGEST) {
        problem(im, "blob %s: its content hashes to %s (corrupt in the source): skipped", n->d.str, got.str);
        return -1;
    }
    if (rc != 0) {
        if (e == ENOENT && !listed)
            return -1;
        problem(im, "blob %s: cannot import %s/blobs/%s/%.2s/%s/data: %s", n->d.str, "docker/registry/v2",
                digest_algo_name(n->d.algo), digest_hex(&n->d), digest_hex(&n->d), strerror(e));
        return -1;
    }
    pthread_mutex_lock(&im->mu);
    im->bytes_hashed += n->size;
    progress(im, 0);
    pthread_mutex_unlock(&im->mu);
    return 1;
}

/* A verified file in place: count it, and note its shard folder for sync_shards. */
static void placed(imp_t *im, need_t *n)
{
    char hh[3] = {digest_hex(&n->d)[0], digest_hex(&n->d)[1], '\0'};
    im->dirty[n->d.algo == DIGEST_SHA512][strtoul(hh, NULL, 16) & 0xff] = 1;
    im->n_blobs[n->how]++;
    im->bytes_placed += n->size;
    if (im->kill_after > 0 && im->n_blobs[0] + im->n_blobs[1] + im->n_blobs[2] >= im->kill_after)
        raise(SIGKILL); /* a test's crash: after a blob is in place, before the database records it */
}

/*
 * Placing a repository's blobs, PLACE_BATCH at a time: im->jobs threads link (or copy) and hash them into temporary
 * files, each taking the next one not taken. The files wait (up to PENDING_MAX of them, over several repositories)
 * until a batch of repositories is recorded; then they are fsynced and renamed into place one after the other: after
 * all were written, the fsyncs share journal commits and writeback instead of waiting for one file at a time.
 */
#define PLACE_BATCH 64

typedef struct {
    imp_t *im;
    const char *repo;
    need_t *needs;
    blobstore_adopted_t *ad;
    signed char *state; /* place_blob's result */
    size_t n, next;
} placing_t;

static void *place_main(void *arg)
{
    placing_t *p = arg;
    for (size_t i; (i = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED)) < p->n;) {
        int listed = p->needs[i].size != 0; /* size 1 until placed: linked in _layers */
        p->state[i] = (signed char)place_blob(p->im, p->repo, listed, &p->needs[i], &p->ad[i]);
    }
    return NULL;
}

/* Finish the verified files waiting: fsync each, rename it into place. */
static void flush_pending(imp_t *im)
{
    char shard[BLOBSTORE_PATH_MAX];
    for (size_t i = 0; i < im->npending; ++i) {
        need_t *nd = im->pending[i].need;
        if (blobstore_adopt_finish(&im->bs, &im->pending[i].ad, shard) != 0) {
            problem(im, "blob %s: cannot put it in place (see above)", nd->d.str);
            nd->ok = 0;
            continue;
        }
        placed(im, nd);
    }
    im->npending = 0;
}

static void place_all(imp_t *im, const char *repo, need_t *needs, size_t n)
{
    blobstore_adopted_t *ad = calloc(PLACE_BATCH, sizeof(*ad));
    signed char state[PLACE_BATCH];
    for (size_t base = 0; base < n; base += PLACE_BATCH) {
        if (im->npending + PLACE_BATCH > PENDING_MAX)
            flush_pending(im);
        size_t m = n - base < PLACE_BATCH ? n - base : PLACE_BATCH;
        placing_t p = {im, repo, needs + base, ad, state, m, 0};
        pthread_t th[16];
        int nth = 0;
        while (nth + 1 < im->jobs && (size_t)nth + 1 < m && pthread_create(&th[nth], NULL, place_main, &p) == 0)
            ++nth;
        place_main(&p);
        while (nth > 0)
            pthread_join(th[--nth], NULL);
        for (size_t i = 0; i < m; ++i) {
            need_t *nd = &needs[base + i];
            nd->ok = state[i] >= 0;
            if (state[i] == 1)
                im->pending[im->npending++] = (pending_t){ad[i], nd};
        }
    }
    free(ad);
}

/* fsync the shard folders blobs were renamed into: their names must be durable before the rows that record them. */
static int sync_shards(imp_t *im)
{
    char dir[BLOBSTORE_PATH_MAX];
    for (int a = 0; a < 2; ++a)
        for (int i = 0; i < 256; ++i) {
            if (!im->dirty[a][i])
                continue;
            snprintf(dir, sizeof(dir), "%s/blobs/%s/%02x", im->bs.root, a ? "sha512" : "sha256", i);
            if (fsync_dir(dir) != 0)
                return cli_fail("fsync %s: %s", dir, strerror(errno));
            im->dirty[a][i] = 0;
        }
    return 0;
}

/* A repository read from the source, its blobs in place, waiting for its transaction. */
typedef struct {
    const char *name;
    scan_t s;
    rev_t *revs;
    size_t nrevs;
    need_t *needs;
    size_t nneeds;
    size_t manifests_put, tags_set, links;
    int was_mirrored;
} prep_t;

static void repo_free(prep_t *p)
{
    for (size_t i = 0; i < p->nrevs; ++i) {
        manifest_free(p->revs[i].mf);
        free(p->revs[i].body);
        free(p->revs[i].tags);
    }
    free(p->revs);
    free(p->needs);
    free(p->s.ds);
    free(p->s.tags);
    memset(p, 0, sizeof(*p));
}

/* Read repository `repo` from the source and put its blobs in berth's store: 0, or -1 (reported: left out). */
static int repo_prepare(imp_t *im, const char *repo, prep_t *p)
{
    char rname[NAME_MAX_LEN + 1];
    size_t nlayers;
    memset(p, 0, sizeof(*p));
    p->name = repo;
    p->s = (scan_t){im, repo, NULL, 0, 0, NULL, 0, 0};
    snprintf(rname, sizeof(rname), "%s", repo);

    /* the repository's folder, one component at a time */
    const char *comps[130];
    size_t nc = 0;
    comps[nc++] = "repositories";
    for (char *c = rname, *q; nc < 128; c = q + 1) {
        comps[nc++] = c;
        if ((q = strchr(c, '/')) == NULL)
            break;
        *q = '\0';
    }
    comps[nc] = NULL;
    int rfd = open_path(im->v2, comps);
    if (rfd < 0) {
        problem(im, "%s: cannot open its folder: %s", repo, strerror(errno));
        return -1;
    }
    const char *layers[] = {"_layers", NULL}, *revisions[] = {"_manifests", "revisions", NULL},
               *tags[] = {"_manifests", "tags", NULL};
    scan_links(im, rfd, layers, "_layers", &p->s);
    nlayers = p->s.n;
    scan_links(im, rfd, revisions, "_manifests/revisions", &p->s);
    int tfd = open_path(rfd, tags);
    if (tfd >= 0) {
        each_entry(im, tfd, on_tag_entry, &p->s);
        close(tfd);
    }
    close(rfd);

    /* the manifests */
    p->nrevs = p->s.n - nlayers;
    p->revs = calloc(p->nrevs ? p->nrevs : 1, sizeof(*p->revs));
    for (size_t i = 0; i < p->nrevs; ++i) {
        p->revs[i].d = p->s.ds[nlayers + i];
        if (read_manifest(im, repo, &p->revs[i]) != 0)
            p->revs[i].done = 1;
    }
    /* every blob: the links, and what the manifests reference (the source may have it unlinked) */
    size_t capneeds = nlayers + 16, nneeds = 0;
    need_t *needs = malloc(capneeds * sizeof(*needs));
    for (size_t i = 0; i < nlayers; ++i)
        needs[nneeds++] = (need_t){p->s.ds[i], 0, 1, 0}; /* size 1: listed in _layers */
    for (size_t i = 0; i < p->nrevs; ++i)
        for (size_t j = 0; p->revs[i].mf && j < p->revs[i].mf->nrefs; ++j) {
            const manifest_ref_t *r = &p->revs[i].mf->refs[j];
            if (r->kind == REF_MANIFEST || r->foreign)
                continue;
            if (nneeds == capneeds)
                needs = realloc(needs, (capneeds *= 2) * sizeof(*needs));
            needs[nneeds++] = (need_t){r->digest, 0, 0, 0};
        }
    qsort(needs, nneeds, sizeof(*needs), by_digest);
    size_t u = 0;
    for (size_t i = 0; i < nneeds; ++i) {
        if (u > 0 && digest_equal(&needs[u - 1].d, &needs[i].d)) {
            needs[u - 1].size |= needs[i].size;
            continue;
        }
        needs[u++] = needs[i];
    }
    p->needs = needs;
    p->nneeds = u;
    place_all(im, repo, p->needs, p->nneeds);
    /* the tags, by manifest */
    for (size_t i = 0; i < p->s.ntags; ++i) {
        rev_t *r = NULL;
        const tag_t *t = &p->s.tags[i];
        for (size_t j = 0; j < p->nrevs && r == NULL; ++j)
            if (digest_equal(&p->revs[j].d, &t->d))
                r = &p->revs[j];
        if (r == NULL) {
            problem(im, "%s: tag %s points at %s, which is not a manifest of the repository: skipped", repo, t->tag,
                    t->d.str);
            continue;
        }
        if (r->mf == NULL) {
            problem(im, "%s: tag %s: its manifest %s was skipped (above)", repo, t->tag, t->d.str);
            continue;
        }
        r->tags = realloc(r->tags, (r->ntags + 1) * sizeof(*r->tags));
        r->tags[r->ntags++] = t->tag;
    }
    return 0;
}

/*
 * Record a prepared repository inside the caller's transaction: blob links, then manifests (images before the indexes
 * that list them: more passes for nested indexes), with their tags. 0; 1 when a blob file was collected since it was
 * placed (roll back and do it again); -1 (reported) when the database fails.
 */
static int repo_record(imp_t *im, prep_t *p)
{
    const char *repo = p->name;
    if ((p->was_mirrored = metastore_repo_hosted(im->c->m, repo)) < 0) {
        cli_fail("%s: cannot read the repository", repo);
        return -1;
    }
    for (size_t i = 0; i < p->nneeds; ++i) {
        need_t *n = &p->needs[i];
        if (!n->ok)
            continue;
        if (metastore_blob_link(im->c->m, repo, &n->d, n->size) != 0) {
            cli_fail("%s: cannot record blob %s", repo, n->d.str);
            return -1;
        }
        if (!blobstore_has(&im->bs, &n->d)) /* collected between its placing and now: do it again */
            return 1;
        p->links++;
    }
    for (int progress_made = 1; progress_made;) {
        progress_made = 0;
        for (size_t i = 0; i < p->nrevs; ++i) {
            rev_t *r = &p->revs[i];
            metastore_bad_ref_t bad;
            if (r->done)
                continue;
            int rc = metastore_manifest_put(im->c->m, repo, &r->d, r->mf, r->body, r->len, r->tags, r->ntags,
                                            im->c->cfg->storage_sparse_manifests, &bad);
            if (rc == BERTH_EMISSING || rc == BERTH_ESIZE) {
                /* a child manifest not stored yet may come in a later pass; a blob would have been by now */
                need_t *n = need_find(p->needs, p->nneeds, &bad.digest);
                if (n == NULL && rc == BERTH_EMISSING)
                    continue;
                r->done = 1;
                if (rc == BERTH_ESIZE)
                    problem(im, "%s: manifest %s: %s is %" PRId64 " bytes, not %" PRId64 " as it says: skipped", repo,
                            r->d.str, bad.digest.str, bad.stored, bad.size);
                else
                    problem(im,
                            "%s: manifest %s: blob %s could not be imported (not in the source, or corrupt): skipped",
                            repo, r->d.str, bad.digest.str);
                continue;
            }
            if (rc != 0) {
                cli_fail("%s: cannot record manifest %s", repo, r->d.str);
                return -1;
            }
            r->done = 1;
            progress_made = 1;
            p->manifests_put++;
            p->tags_set += r->ntags;
        }
    }
    for (size_t i = 0; i < p->nrevs; ++i)
        if (!p->revs[i].done)
            problem(im, "%s: manifest %s: a manifest it lists could not be imported: skipped", repo, p->revs[i].d.str);
    return 0;
}

/*
 * Record the prepared repositories `b` in one transaction (one commit and one fsync for many small repositories; each
 * appears whole to a running server). 0, or -1 (reported). When a blob was collected meanwhile, the batch is read and
 * placed again (at most twice).
 */
static int record_batch(imp_t *im, prep_t *b, size_t n)
{
    const char *err;
    for (int attempt = 0;; ++attempt) {
        int rc = 0;
        flush_pending(im);
        if (sync_shards(im) != 0)
            return -1;
        if (metastore_begin(im->c->m, 1, &err) != 0) {
            cli_fail("cannot start a transaction: %s", err);
            return -1;
        }
        for (size_t i = 0; i < n && rc == 0; ++i)
            rc = repo_record(im, &b[i]);
        if (rc == 0 && metastore_commit(im->c->m, &err) != 0) {
            cli_fail("cannot commit: %s", err);
            rc = -1;
        }
        if (rc == 0)
            break;
        metastore_rollback(im->c->m);
        if (rc > 0 && attempt == 2)
            cli_fail("blobs keep being collected under the import");
        if (rc < 0 || attempt == 2)
            return -1;
        for (size_t i = 0; i < n; ++i) {
            const char *name = b[i].name;
            repo_free(&b[i]);
            (void)repo_prepare(im, name, &b[i]); /* on failure (reported) it records nothing */
        }
    }
    progress_clear(im);
    for (size_t i = 0; i < n; ++i) {
        prep_t *p = &b[i];
        im->n_repos++;
        im->n_manifests += p->manifests_put;
        im->n_tags += p->tags_set;
        im->n_links += p->links;
        printf("%s: %zu manifests, %zu tags, %zu blobs%s\n", p->name, p->manifests_put, p->tags_set, p->links,
               p->was_mirrored ? " (a mirror's until now: hosted from now on)" : "");
    }
    fflush(stdout);
    return 0;
}

/* Leftovers of imports killed before they renamed a file into place: tmp/import.<pid>.<n> of a process now gone. */
static void remove_leftovers(imp_t *im)
{
    char dir[BLOBSTORE_PATH_MAX], path[2 * BLOBSTORE_PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/tmp", im->bs.root);
    DIR *d = opendir(dir);
    struct dirent *de;
    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        long pid;
        if (sscanf(de->d_name, "import.%ld.", &pid) != 1 || pid <= 0)
            continue;
        if (pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(d);
}

int cli_import(cli_t *c, int argc, char **argv)
{
    int copy = 0, help = 0, n, rc = CLI_OK;
    char *pos[1], dbpath[4096], *end;
    const char *jobs = "4";
    const cli_opt_t opts[] = {{"--copy", NULL, &copy}, {"--jobs", &jobs, NULL}, {"--help", NULL, &help}, {NULL}};
    if (cli_args(argc, argv, opts, pos, 0, 1, &n) != 0)
        return CLI_USAGE;
    if (!help && n == 0)
        return cli_usage_error("import: which folder? (a docker-registry's rootdirectory)");
    if (help) {
        printf(
            "usage: berth import [--copy] [--jobs N] DIR\n"
            "Imports what a docker-registry (CNCF distribution, registry:2) with filesystem storage holds, DIR being\n"
            "its rootdirectory, into %s/ (also while berth serve runs): every repository, manifest (the same\n"
            "bytes and digests), tag and blob link. Blobs are hard-linked when on the same file system (never with\n"
            "--copy), else reflinked, else copied, and always verified, N at once (default 4). Run it again to\n"
            "finish an interrupted import or to bring in what was pushed since: what is here is skipped. Uploads in\n"
            "progress are not imported. Exit status: 0 all imported, 1 something was skipped (listed), 2 it could\n"
            "not run.\n"
            "See docs/migrate.md.\n",
            c->cfg->storage_root);
        return CLI_OK;
    }
    imp_t im = {0};
    im.jobs = (int)strtol(jobs, &end, 10);
    if (*jobs == '\0' || *end != '\0' || im.jobs < 1 || im.jobs > 16)
        return cli_usage_error("import: --jobs takes a number from 1 to 16");
    pthread_mutex_init(&im.mu, NULL);
    im.pending = calloc(PENDING_MAX, sizeof(*im.pending));
    im.c = c;
    im.v2 = -1;
    im.may_link = !copy;
    im.tty = isatty(STDERR_FILENO);
    im.manifest_max = c->cfg->storage_manifest_max_size;
    const char *k = getenv("BERTH_TEST_IMPORT_KILL_AFTER");
    im.kill_after = k ? strtoull(k, NULL, 10) : 0;
    im.t0 = time_mono_s();

    /* DIR is the rootdirectory (docker/registry/v2 under it) or that v2 folder itself */
    int root = open(pos[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) {
        fprintf(stderr, "berth: import: cannot open %s: %s\n", pos[0], strerror(errno));
        rc = 2;
        goto Exit;
    }
    const char *v2path[] = {"docker", "registry", "v2", NULL};
    im.v2 = open_path(root, v2path);
    if (im.v2 < 0) {
        struct stat st;
        if (fstatat(root, "repositories", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
            im.v2 = dup(root);
    }
    close(root);
    if (im.v2 < 0) {
        fprintf(stderr, "berth: import: %s is not a docker-registry rootdirectory (no docker/registry/v2 in it)\n",
                pos[0]);
        rc = 2;
        goto Exit;
    }
    if (blobstore_init(&im.bs, c->cfg->storage_root) != 0 ||
        store_db_create(c->cfg->storage_root, dbpath, sizeof(dbpath)) != 0) {
        fprintf(stderr, "berth: import: cannot create the storage root %s: %s\n", c->cfg->storage_root,
                strerror(errno));
        rc = 2;
        goto Exit;
    }
    if ((c->m = metastore_open(dbpath, 1)) == NULL) {
        fprintf(stderr, "berth: import: cannot open the database %s\n", dbpath);
        rc = 2;
        goto Exit;
    }
    metastore_new_repos_public = access_new_repo_public((access_mode_t)access_mode_from_name(c->cfg->mode));
    remove_leftovers(&im);

    int rfd = open_in(im.v2, "repositories", 0);
    if (rfd < 0) {
        if (errno != ENOENT) {
            fprintf(stderr, "berth: import: cannot open %s/docker/registry/v2/repositories: %s\n", pos[0],
                    strerror(errno));
            rc = 2;
            goto Exit;
        }
    } else {
        walk_t w = {"", 0};
        walk_repos(&im, rfd, &w);
        close(rfd);
    }
    qsort(im.repos, im.nrepos, sizeof(*im.repos), by_name);
    size_t u = 0; /* a repository is found once per folder of distribution's in it */
    for (size_t i = 0; i < im.nrepos; ++i) {
        if (u > 0 && strcmp(im.repos[u - 1], im.repos[i]) == 0)
            free(im.repos[i]);
        else
            im.repos[u++] = im.repos[i];
    }
    im.nrepos = u;
    /* the repositories in batches: up to IMPORT_BATCH_REPOS of them, or IMPORT_BATCH_OBJECTS manifests and blobs, in
     * one transaction (the write lock is held while they are recorded, not while their blobs are placed) */
    prep_t *batch = calloc(IMPORT_BATCH_REPOS, sizeof(*batch));
    for (size_t i = 0; i < im.nrepos;) {
        size_t nb = 0, objects = 0;
        while (i < im.nrepos && nb < IMPORT_BATCH_REPOS && objects < IMPORT_BATCH_OBJECTS) {
            im.repo_index = i;
            progress(&im, 1);
            if (repo_prepare(&im, im.repos[i++], &batch[nb]) == 0) {
                objects += batch[nb].nrevs + batch[nb].nneeds;
                nb++;
            }
        }
        int r = record_batch(&im, batch, nb);
        for (size_t k = 0; k < nb; ++k)
            repo_free(&batch[k]);
        if (r != 0) {
            fprintf(stderr, "berth: import: stopped; run it again to go on\n");
            rc = 2;
            free(batch);
            goto Exit;
        }
    }
    free(batch);
    im.repo_index = im.nrepos;
    progress_clear(&im);
    double s = time_mono_s() - im.t0;
    uint64_t placed = im.n_blobs[0] + im.n_blobs[1] + im.n_blobs[2];
    printf("import: %" PRIu64 " repositories, %" PRIu64 " manifests, %" PRIu64 " tags, %" PRIu64 " blob links; %" PRIu64
           " blobs placed (%" PRIu64 " bytes: %" PRIu64 " hard-linked, %" PRIu64 " reflinked, %" PRIu64
           " copied), %" PRIu64 " already here; %.2f s (%.3f GB/s, %.1f manifests/s)\n",
           im.n_repos, im.n_manifests, im.n_tags, im.n_links, placed, im.bytes_placed, im.n_blobs[BLOBSTORE_LINKED],
           im.n_blobs[BLOBSTORE_REFLINKED], im.n_blobs[BLOBSTORE_COPIED], im.n_present, s,
           s > 0 ? (double)im.bytes_placed / s / 1e9 : 0.0, s > 0 ? (double)im.n_manifests / s : 0.0);
    if (im.uploads > 0)
        printf("import: %zu uploads in progress in the source were not imported (their clients push them again)\n",
               im.uploads);
    if (im.problems > 0) {
        fprintf(stderr, "berth: import: %" PRIu64 " problems (above): what they name was skipped\n", im.problems);
        rc = CLI_FAIL;
    }
Exit:
    for (size_t i = 0; i < im.nrepos; ++i)
        free(im.repos[i]);
    free(im.repos);
    blobstore_dispose(&im.bs);
    if (im.v2 >= 0)
        close(im.v2);
    for (size_t i = 0; i < im.npending; ++i) /* stopped with files not finished */
        blobstore_adopt_cancel(&im.pending[i].ad);
    free(im.pending);
    pthread_mutex_destroy(&im.mu);
    return rc;
}
