#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "store/blobstore.h"
#include "util/log.h"

/* mkdir, and when it made the folder, fsync its parent: the new entry is durable only then (power loss) */
static int mkdir_durable(char *path)
{
    if (mkdir(path, 0755) != 0)
        return errno == EEXIST ? 0 : -1;
    char *slash = strrchr(path, '/');
    if (slash == NULL)
        return fsync_dir(".");
    if (slash == path)
        return fsync_dir("/");
    *slash = '\0';
    int rc = fsync_dir(path);
    *slash = '/';
    return rc;
}

int mkdir_p(const char *path)
{
    char buf[BLOBSTORE_PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; ++p) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir_durable(buf) != 0)
            return -1;
        *p = '/';
    }
    return mkdir_durable(buf);
}

int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int blobstore_init(blobstore_t *bs, const char *root)
{
    static const char *dirs[] = {"blobs/sha256", "blobs/sha512", "uploads", "tmp"};
    char path[BLOBSTORE_PATH_MAX];
    memset(bs, 0, sizeof(*bs));
    bs->root = strdup(root);
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); ++i) {
        snprintf(path, sizeof(path), "%s/%s", root, dirs[i]);
        if (mkdir_p(path) != 0) {
            log_error("cannot create %s: %s", path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

void blobstore_dispose(blobstore_t *bs)
{
    free(bs->root);
    bs->root = NULL;
}

void blobstore_path(const blobstore_t *bs, const digest_t *d, char *buf, size_t len)
{
    snprintf(buf, len, "%s/blobs/%s/%.2s/%s", bs->root, digest_algo_name(d->algo), digest_hex(d), digest_hex(d));
}

/* The shard's index in bs->_durable: its two hex digits as a byte. */
static unsigned shard_index(const digest_t *d)
{
    unsigned v = 0;
    for (const char *p = digest_hex(d); p < digest_hex(d) + 2; ++p)
        v = v << 4 | (unsigned)(*p <= '9' ? *p - '0' : *p - 'a' + 10);
    return v & 0xff;
}

int blobstore_rename(blobstore_t *bs, const char *src, const digest_t *d, char *shard)
{
    char dst[BLOBSTORE_PATH_MAX];
    snprintf(shard, BLOBSTORE_PATH_MAX, "%s/blobs/%s/%.2s", bs->root, digest_algo_name(d->algo), digest_hex(d));
    /*
     * A shard folder that exists is not yet a durable one: another thread may have made it and not finished fsyncing
     * the algorithm folder, or a process killed between the two may have left it (only in the page cache). So the
     * algorithm folder is fsynced once per shard and process, after mkdir, made or found, and before any blob in the
     * shard is reported stored; a race costs one fsync more.
     */
    unsigned char *durable = &bs->_durable[d->algo == DIGEST_SHA512][shard_index(d)];
    if (!__atomic_load_n(durable, __ATOMIC_ACQUIRE)) {
        if (mkdir(shard, 0755) != 0 && errno != EEXIST) {
            log_error("mkdir %s: %s", shard, strerror(errno));
            return -1;
        }
        char algodir[BLOBSTORE_PATH_MAX];
        snprintf(algodir, sizeof(algodir), "%s/blobs/%s", bs->root, digest_algo_name(d->algo));
        if (fsync_dir(algodir) != 0) {
            log_error("fsync %s: %s", algodir, strerror(errno));
            return -1;
        }
        __atomic_store_n(durable, 1, __ATOMIC_RELEASE);
    }
    blobstore_path(bs, d, dst, sizeof(dst));
    if (rename(src, dst) != 0) {
        log_error("rename %s -> %s: %s", src, dst, strerror(errno));
        return -1;
    }
    return 0;
}

int blobstore_commit(blobstore_t *bs, const char *src, const digest_t *d)
{
    char shard[BLOBSTORE_PATH_MAX];
    if (blobstore_rename(bs, src, d, shard) != 0)
        return -1;
    if (fsync_dir(shard) != 0) {
        log_error("fsync %s: %s", shard, strerror(errno));
        return -1;
    }
    return 0;
}

int blobstore_open(const blobstore_t *bs, const digest_t *d, uint64_t *size)
{
    char path[BLOBSTORE_PATH_MAX];
    struct stat st;
    blobstore_path(bs, d, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    *size = (uint64_t)st.st_size;
    return fd;
}

int blobstore_has(const blobstore_t *bs, const digest_t *d)
{
    char path[BLOBSTORE_PATH_MAX];
    blobstore_path(bs, d, path, sizeof(path));
    return access(path, F_OK) == 0;
}

/* The lock file, made if missing (any user may open it to read: flock needs no more). */
static int lock_open(const char *root)
{
    char path[BLOBSTORE_PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/" BLOBSTORE_LOCK, root) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EACCES) /* made by another user, without read access for us: never by berth */
        fd = open(path, O_RDONLY | O_CLOEXEC);
    return fd;
}

int blobstore_hold(const char *root)
{
    int fd = lock_open(root);
    if (fd < 0)
        return -1;
    while (flock(fd, LOCK_SH) != 0) {
        if (errno != EINTR) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
    }
    return fd;
}

int blobstore_removal_begin(const char *root)
{
    int fd = lock_open(root);
    if (fd < 0) {
        log_error("cannot open %s/" BLOBSTORE_LOCK ": %s (blob files are left in place)", root, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

void blobstore_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}
