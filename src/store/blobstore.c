#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/fs.h>
#include "store/blobstore.h"
#include "util/log.h"
#include "util/status.h"

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

/* ---- adopting another store's file (berth import) ---- */

#define ADOPT_BUF (1u << 20)
#define ADOPT_WRITEBACK (8u << 20) /* start writing a copy back every so many bytes, so that its fsync waits less */

/* Hash what `fd` holds from its start into *got; with `out` >= 0, write it there too (a copy). 0 or -1 (errno). */
static int adopt_pass(int fd, int out, digest_algo_t algo, digest_t *got, uint64_t *size)
{
    char *buf = malloc(ADOPT_BUF);
    digest_hasher_t *h = digest_hasher_new(algo);
    uint64_t off = 0, flushed = 0;
    int rc = -1;
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    for (;;) {
        ssize_t n = pread(fd, buf, ADOPT_BUF, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto Exit;
        if (n == 0)
            break;
        digest_hasher_update(h, buf, (size_t)n);
        for (ssize_t w = 0; out >= 0 && w < n;) {
            ssize_t k = pwrite(out, buf + w, (size_t)(n - w), (off_t)(off + (uint64_t)w));
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0)
                goto Exit;
            w += k;
        }
        off += (uint64_t)n;
        if (out >= 0 && off - flushed >= ADOPT_WRITEBACK) {
            (void)sync_file_range(out, (off64_t)flushed, (off64_t)(off - flushed), SYNC_FILE_RANGE_WRITE);
            flushed = off;
        }
    }
    digest_hasher_final(h, got);
    *size = off;
    rc = 0;
Exit:
    if (h != NULL)
        digest_hasher_free(h);
    free(buf);
    return rc;
}

int blobstore_adopt(blobstore_t *bs, int dirfd, const char *name, const digest_t *d, int may_link, const char *tmpname,
                    blobstore_how_t *how, uint64_t *size, digest_t *got, blobstore_adopted_t *out)
{
    char *tmp = out->path;
    struct stat sst, tst;
    int src = -1, fd = -1, rc = BERTH_ERROR, e = 0, placed = 0;
    snprintf(tmp, sizeof(out->path), "%s/tmp/%s", bs->root, tmpname);
    if ((src = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 || fstat(src, &sst) != 0)
        goto Fail;
    if (!S_ISREG(sst.st_mode)) {
        errno = EINVAL;
        goto Fail;
    }
    (void)unlink(tmp); /* a leftover of this name (a killed import of the same process id) */
    /* a hard link of the name that was opened (never followed: a symbolic link put there meanwhile is found below) */
    if (may_link && linkat(dirfd, name, AT_FDCWD, tmp, 0) == 0) {
        placed = 1;
        fd = open(tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0 && fstat(fd, &tst) == 0 && tst.st_dev == sst.st_dev && tst.st_ino == sst.st_ino) {
            *how = BLOBSTORE_LINKED;
            if (adopt_pass(fd, -1, d->algo, got, size) != 0)
                goto Fail;
            goto Verify;
        }
        if (fd >= 0) /* not the file opened: replaced meanwhile; copy what was opened instead */
            close(fd);
        fd = -1;
        unlink(tmp);
        placed = 0;
    }
    if ((fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0)
        goto Fail;
    placed = 1;
    if (ioctl(fd, FICLONE, src) == 0) {
        *how = BLOBSTORE_REFLINKED;
        if (adopt_pass(fd, -1, d->algo, got, size) != 0)
            goto Fail;
    } else {
        *how = BLOBSTORE_COPIED;
        if (ftruncate(fd, 0) != 0 || adopt_pass(src, fd, d->algo, got, size) != 0)
            goto Fail;
        (void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE); /* the rest starts for the disk: the fsync waits less */
    }
Verify:
    if (!digest_equal(got, d)) {
        rc = BERTH_EDIGEST;
        goto Fail;
    }
    close(src);
    out->fd = fd;
    out->digest = *d;
    return 0;
Fail:
    e = errno;
    if (fd >= 0)
        close(fd);
    if (src >= 0)
        close(src);
    if (placed)
        unlink(tmp);
    errno = e;
    return rc;
}

int blobstore_adopt_finish(blobstore_t *bs, blobstore_adopted_t *a, char *shard)
{
    if (fsync(a->fd) != 0) {
        log_error("fsync %s: %s", a->path, strerror(errno));
        blobstore_adopt_cancel(a);
        return -1;
    }
    close(a->fd);
    a->fd = -1;
    if (blobstore_rename(bs, a->path, &a->digest, shard) != 0) {
        unlink(a->path);
        return -1;
    }
    return 0;
}

void blobstore_adopt_cancel(blobstore_adopted_t *a)
{
    if (a->fd >= 0)
        close(a->fd);
    a->fd = -1;
    unlink(a->path);
}
