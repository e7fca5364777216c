/*
 * LD_PRELOAD shim that records what a process does to the files under one folder, for the power-loss test
 * (tests/crash/powerloss.py rebuilds from the record every state a power cut could leave).
 *
 *   BERTH_TRACE=/path/prefix BERTH_TRACE_ROOT=/abs/storage/root LD_PRELOAD=trace.so berth serve
 *
 * appends one line per operation to PREFIX.log (shared by every traced process and by the test client, which adds
 * its own lines: O_APPEND, one write() per line) and the bytes written to PREFIX.<pid>.data. Traced: paths under
 * the root, the root itself, and its parent folder (whose entry for the root counts). Recorded, when they succeed:
 * creating opens (open, openat, creat, the mkstemp family), every open of a traced path (to know its descriptor),
 * write, pwrite, writev, pwritev, ftruncate, truncate, fallocate, posix_fallocate, rename, link, unlink, rmdir,
 * mkdir, close and dup of a traced descriptor, fsync and fdatasync (a line before and one after: what was written
 * before the first is what the second makes durable), sync_file_range, sync, syncfs, and writable shared mappings
 * (whose writes cannot be seen here). Each operation and its line are done under one lock, so that the order of
 * the lines is the order of the operations.
 *
 * Line format: "OP PID TID FIELDS..." with paths last and %XX-escaped (bytes <= ' ', '%' and DEL).
 *
 * BERTH_TRACE_KILL=OP:TEXT[#N] makes the process SIGKILL itself right after the first (or the Nth) operation OP (as
 * named in the log) whose path contains TEXT: a crash at that exact point, for a later phase to start from.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define FD_MAX 65536
#define LINE_MAX_LEN (3 * PATH_MAX * 2 + 256)

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int enabled = -1; /* -1: not initialised */
static char root[PATH_MAX], parent[PATH_MAX];
static size_t rootlen;
static int logfd = -1, datafd = -1;
static unsigned long long dataoff;
static char *fdpath[FD_MAX]; /* traced descriptors: their path */
static char killop[64], killtext[PATH_MAX];
static long killnth = 1, killseen; /* BERTH_TRACE_KILL: the match to kill at, the matches so far */

#define REAL(name) static __typeof__(name) *real_##name
#define LOAD(name)                                                                                                     \
    do {                                                                                                               \
        if (real_##name == NULL)                                                                                       \
            real_##name = (__typeof__(real_##name))dlsym(RTLD_NEXT, #name);                                            \
    } while (0)

static void init(void)
{
    if (enabled >= 0)
        return;
    const char *prefix = getenv("BERTH_TRACE"), *r = getenv("BERTH_TRACE_ROOT");
    enabled = 0;
    if (prefix == NULL || r == NULL || r[0] != '/' || strlen(r) >= sizeof(root) - 1 || strlen(prefix) > PATH_MAX - 64)
        return;
    snprintf(root, sizeof(root), "%s", r);
    rootlen = strlen(root);
    while (rootlen > 1 && root[rootlen - 1] == '/')
        root[--rootlen] = '\0';
    snprintf(parent, sizeof(parent), "%s", root);
    char *slash = strrchr(parent, '/');
    if (slash == parent)
        slash[1] = '\0';
    else
        *slash = '\0';
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s.log", prefix);
    logfd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    snprintf(path, sizeof(path), "%s.%d.data", prefix, (int)getpid());
    datafd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    enabled = logfd >= 0 && datafd >= 0;
    const char *k = getenv("BERTH_TRACE_KILL"), *colon = k ? strchr(k, ':') : NULL;
    if (colon != NULL && (size_t)(colon - k) < sizeof(killop)) {
        snprintf(killop, sizeof(killop), "%.*s", (int)(colon - k), k);
        snprintf(killtext, sizeof(killtext), "%s", colon + 1);
        char *hash = strrchr(killtext, '#');
        if (hash != NULL) {
            killnth = atol(hash + 1);
            *hash = '\0';
        }
    }
}

static void lock(void)
{
    pthread_mutex_lock(&mu);
    init();
}

static void unlock(void)
{
    pthread_mutex_unlock(&mu);
}

/* Lexically normalised absolute path of (dirfd, path) into out; 0 if it cannot be made. */
static int resolve(int dirfd, const char *path, char *out)
{
    char buf[2 * PATH_MAX];
    if (path == NULL)
        return 0;
    if (path[0] == '/') {
        snprintf(buf, sizeof(buf), "%s", path);
    } else {
        char base[PATH_MAX];
        if (dirfd == AT_FDCWD) {
            if (getcwd(base, sizeof(base)) == NULL)
                return 0;
        } else if (dirfd >= 0 && dirfd < FD_MAX && fdpath[dirfd] != NULL) {
            snprintf(base, sizeof(base), "%s", fdpath[dirfd]);
        } else {
            char link[64];
            snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
            ssize_t n = readlink(link, base, sizeof(base) - 1);
            if (n <= 0)
                return 0;
            base[n] = '\0';
        }
        snprintf(buf, sizeof(buf), "%s/%s", base, path);
    }
    /* collapse "//", "/./" and "/../" */
    char *o = out;
    const char *p = buf;
    while (*p) {
        while (*p == '/')
            ++p;
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0)
            break;
        if (n == 1 && p[0] == '.') {
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            while (o > out && *--o != '/')
                ;
        } else {
            if ((size_t)(o - out) + n + 2 >= PATH_MAX)
                return 0;
            *o++ = '/';
            memcpy(o, p, n);
            o += n;
        }
        p += n;
    }
    if (o == out)
        *o++ = '/';
    *o = '\0';
    return 1;
}

static int traced(const char *abs)
{
    return enabled > 0 && ((strncmp(abs, root, rootlen) == 0 && (abs[rootlen] == '\0' || abs[rootlen] == '/')) ||
                           strcmp(abs, parent) == 0);
}

static int fd_traced(int fd)
{
    return enabled > 0 && fd >= 0 && fd < FD_MAX && fdpath[fd] != NULL;
}

static void set_fd(int fd, const char *abs)
{
    if (fd < 0 || fd >= FD_MAX)
        return;
    free(fdpath[fd]);
    fdpath[fd] = abs ? strdup(abs) : NULL;
}

static char *escape(char *o, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; *s; ++s) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c == '%' || c == 0x7f) {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        } else {
            *o++ = (char)c;
        }
    }
    return o;
}

/* One line: "OP PID TID", fmt's fields, then up to two paths. */
static void emit(const char *op, const char *p1, const char *p2, const char *fmt, ...)
{
    char line[LINE_MAX_LEN];
    int n = snprintf(line, 512, "%s %d %ld", op, (int)getpid(), (long)syscall(SYS_gettid));
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        line[n++] = ' ';
        n += vsnprintf(line + n, 256, fmt, ap);
        va_end(ap);
    }
    char *o = line + n;
    if (p1) {
        *o++ = ' ';
        o = escape(o, p1);
    }
    if (p2) {
        *o++ = ' ';
        o = escape(o, p2);
    }
    *o++ = '\n';
    if (syscall(SYS_write, logfd, line, (size_t)(o - line)) < 0) {
    }
    if (killop[0] && strcmp(op, killop) == 0 && p1 && strstr(p1, killtext) && ++killseen >= killnth)
        syscall(SYS_kill, getpid(), SIGKILL);
}

/* Bytes of a write, appended to the data file; returns their offset there. */
static unsigned long long save(const struct iovec *iov, int iovcnt, size_t total)
{
    unsigned long long at = dataoff;
    for (int i = 0; i < iovcnt && total > 0; ++i) {
        size_t n = iov[i].iov_len < total ? iov[i].iov_len : total;
        const char *p = iov[i].iov_base;
        size_t done = 0;
        while (done < n) {
            long w = syscall(SYS_write, datafd, p + done, n - done);
            if (w <= 0)
                break;
            done += (size_t)w;
        }
        total -= n;
        dataoff += n;
    }
    return at;
}

static void log_write(int fd, long long off, const struct iovec *iov, int iovcnt, ssize_t n)
{
    if (n <= 0)
        return;
    unsigned long long at = save(iov, iovcnt, (size_t)n);
    emit("WRITE", NULL, NULL, "%d %lld %zd %llu", fd, off, n, at);
}

/* The offset a write() without one goes to. */
static long long cur_offset(int fd)
{
    int fl = (int)syscall(SYS_fcntl, fd, F_GETFL);
    if (fl >= 0 && (fl & O_APPEND)) {
        struct stat st;
        return syscall(SYS_fstat, fd, &st) == 0 ? (long long)st.st_size : -1;
    }
    return (long long)syscall(SYS_lseek, fd, 0, SEEK_CUR);
}

/* ---- opening ---- */

static void after_open(int fd, const char *abs, int flags, int existed)
{
    if (fd < 0)
        return;
    if (!traced(abs)) {
        set_fd(fd, NULL);
        return;
    }
    struct stat st;
    unsigned long long ino = syscall(SYS_fstat, fd, &st) == 0 ? (unsigned long long)st.st_ino : 0;
    set_fd(fd, abs);
    emit("OPEN", abs, NULL, "%d %d %d %llu", fd, flags, existed, ino);
}

static int do_openat(int dirfd, const char *path, int flags, mode_t mode, int (*real)(int, const char *, int, ...))
{
    char abs[PATH_MAX];
    lock();
    if (enabled <= 0 || !resolve(dirfd, path, abs)) {
        unlock();
        return real(dirfd, path, flags, mode);
    }
    struct stat st;
    int existed = syscall(SYS_newfstatat, AT_FDCWD, abs, &st, AT_SYMLINK_NOFOLLOW) == 0;
    int fd = real(dirfd, path, flags, mode);
    int e = errno;
    after_open(fd, abs, flags, existed);
    unlock();
    errno = e;
    return fd;
}

REAL(openat);
REAL(openat64);

static mode_t mode_arg(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    LOAD(openat);
    return do_openat(dirfd, path, flags, mode, real_openat);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    LOAD(openat64);
    return do_openat(dirfd, path, flags, mode, real_openat64);
}

int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    LOAD(openat);
    return do_openat(AT_FDCWD, path, flags, mode, real_openat);
}

int open64(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    LOAD(openat64);
    return do_openat(AT_FDCWD, path, flags, mode, real_openat64);
}

int creat(const char *path, mode_t mode)
{
    return open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
}

int creat64(const char *path, mode_t mode)
{
    return open64(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
}

/* The mkstemp family opens inside libc, out of reach: record the file it made. */
#define MKSTEMP(name, params, args, flags)                                                                             \
    REAL(name);                                                                                                        \
    int name params                                                                                                    \
    {                                                                                                                  \
        LOAD(name);                                                                                                    \
        lock();                                                                                                        \
        int fd = real_##name args;                                                                                     \
        int e = errno;                                                                                                 \
        char abs[PATH_MAX];                                                                                            \
        if (fd >= 0 && enabled > 0 && resolve(AT_FDCWD, tmpl, abs))                                                    \
            after_open(fd, abs, O_RDWR | O_CREAT | O_EXCL | (flags), 0);                                               \
        unlock();                                                                                                      \
        errno = e;                                                                                                     \
        return fd;                                                                                                     \
    }
MKSTEMP(mkstemp, (char *tmpl), (tmpl), 0)
MKSTEMP(mkstemp64, (char *tmpl), (tmpl), 0)
MKSTEMP(mkostemp, (char *tmpl, int fl), (tmpl, fl), fl)
MKSTEMP(mkostemp64, (char *tmpl, int fl), (tmpl, fl), fl)
MKSTEMP(mkstemps, (char *tmpl, int sl), (tmpl, sl), 0)
MKSTEMP(mkstemps64, (char *tmpl, int sl), (tmpl, sl), 0)
MKSTEMP(mkostemps, (char *tmpl, int sl, int fl), (tmpl, sl, fl), fl)
MKSTEMP(mkostemps64, (char *tmpl, int sl, int fl), (tmpl, sl, fl), fl)

REAL(close);
int close(int fd)
{
    LOAD(close);
    lock();
    int was = fd_traced(fd);
    int rc = real_close(fd);
    int e = errno;
    if (was) {
        emit("CLOSE", NULL, NULL, "%d", fd);
        set_fd(fd, NULL);
    }
    unlock();
    errno = e;
    return rc;
}

static int after_dup(int old, int fd)
{
    int e = errno;
    if (fd >= 0 && fd_traced(old)) {
        char *p = strdup(fdpath[old]);
        set_fd(fd, p);
        free(p);
        emit("DUP", NULL, NULL, "%d %d", old, fd);
    } else if (fd >= 0) {
        set_fd(fd, NULL);
    }
    unlock();
    errno = e;
    return fd;
}

REAL(dup);
REAL(dup2);
REAL(dup3);
int dup(int old)
{
    LOAD(dup);
    lock();
    return after_dup(old, real_dup(old));
}

int dup2(int old, int fd)
{
    LOAD(dup2);
    lock();
    return after_dup(old, real_dup2(old, fd));
}

int dup3(int old, int fd, int flags)
{
    LOAD(dup3);
    lock();
    return after_dup(old, real_dup3(old, fd, flags));
}

/* ---- writing ---- */

REAL(write);
ssize_t write(int fd, const void *buf, size_t len)
{
    LOAD(write);
    if (!fd_traced(fd))
        return real_write(fd, buf, len);
    lock();
    long long off = cur_offset(fd);
    ssize_t n = real_write(fd, buf, len);
    int e = errno;
    struct iovec iov = {(void *)buf, len};
    log_write(fd, off, &iov, 1, n);
    unlock();
    errno = e;
    return n;
}

REAL(writev);
ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    LOAD(writev);
    if (!fd_traced(fd))
        return real_writev(fd, iov, cnt);
    lock();
    long long off = cur_offset(fd);
    ssize_t n = real_writev(fd, iov, cnt);
    int e = errno;
    log_write(fd, off, iov, cnt, n);
    unlock();
    errno = e;
    return n;
}

#define PWRITE(name, otype)                                                                                            \
    REAL(name);                                                                                                        \
    ssize_t name(int fd, const void *buf, size_t len, otype off)                                                       \
    {                                                                                                                  \
        LOAD(name);                                                                                                    \
        if (!fd_traced(fd))                                                                                            \
            return real_##name(fd, buf, len, off);                                                                     \
        lock();                                                                                                        \
        ssize_t n = real_##name(fd, buf, len, off);                                                                    \
        int e = errno;                                                                                                 \
        struct iovec iov = {(void *)buf, len};                                                                         \
        log_write(fd, (long long)off, &iov, 1, n);                                                                     \
        unlock();                                                                                                      \
        errno = e;                                                                                                     \
        return n;                                                                                                      \
    }
PWRITE(pwrite, off_t)
PWRITE(pwrite64, off64_t)

#define PWRITEV(name, otype)                                                                                           \
    REAL(name);                                                                                                        \
    ssize_t name(int fd, const struct iovec *iov, int cnt, otype off)                                                  \
    {                                                                                                                  \
        LOAD(name);                                                                                                    \
        if (!fd_traced(fd))                                                                                            \
            return real_##name(fd, iov, cnt, off);                                                                     \
        lock();                                                                                                        \
        ssize_t n = real_##name(fd, iov, cnt, off);                                                                    \
        int e = errno;                                                                                                 \
        log_write(fd, (long long)off, iov, cnt, n);                                                                    \
        unlock();                                                                                                      \
        errno = e;                                                                                                     \
        return n;                                                                                                      \
    }
PWRITEV(pwritev, off_t)
PWRITEV(pwritev64, off64_t)

REAL(pwritev2);
ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
    LOAD(pwritev2);
    if (!fd_traced(fd))
        return real_pwritev2(fd, iov, cnt, off, flags);
    lock();
    long long at = off == -1 ? cur_offset(fd) : (long long)off;
    ssize_t n = real_pwritev2(fd, iov, cnt, off, flags);
    int e = errno;
    log_write(fd, at, iov, cnt, n);
    unlock();
    errno = e;
    return n;
}

#define FTRUNCATE(name, otype)                                                                                         \
    REAL(name);                                                                                                        \
    int name(int fd, otype size)                                                                                       \
    {                                                                                                                  \
        LOAD(name);                                                                                                    \
        if (!fd_traced(fd))                                                                                            \
            return real_##name(fd, size);                                                                              \
        lock();                                                                                                        \
        int rc = real_##name(fd, size);                                                                                \
        int e = errno;                                                                                                 \
        if (rc == 0)                                                                                                   \
            emit("TRUNC", NULL, NULL, "%d %lld", fd, (long long)size);                                                 \
        unlock();                                                                                                      \
        errno = e;                                                                                                     \
        return rc;                                                                                                     \
    }
FTRUNCATE(ftruncate, off_t)
FTRUNCATE(ftruncate64, off64_t)

#define TRUNCATE(name, otype)                                                                                          \
    REAL(name);                                                                                                        \
    int name(const char *path, otype size)                                                                             \
    {                                                                                                                  \
        LOAD(name);                                                                                                    \
        char abs[PATH_MAX];                                                                                            \
        lock();                                                                                                        \
        int t = enabled > 0 && resolve(AT_FDCWD, path, abs) && traced(abs);                                            \
        int rc = real_##name(path, size);                                                                              \
        int e = errno;                                                                                                 \
        if (rc == 0 && t)                                                                                              \
            emit("TRUNCP", abs, NULL, "%lld", (long long)size);                                                        \
        unlock();                                                                                                      \
        errno = e;                                                                                                     \
        return rc;                                                                                                     \
    }
TRUNCATE(truncate, off_t)
TRUNCATE(truncate64, off64_t)

#define FALLOCATE(name, otype)                                                                                         \
    REAL(name);                                                                                                        \
    int name(int fd, int mode, otype off, otype len)                                                                   \
    {                                                                                                                  \
        LOAD(name);                                                                                                    \
        if (!fd_traced(fd))                                                                                            \
            return real_##name(fd, mode, off, len);                                                                    \
        lock();                                                                                                        \
        int rc = real_##name(fd, mode, off, len);                                                                      \
        int e = errno;                                                                                                 \
        if (rc == 0)                                                                                                   \
            emit("FALLOC", NULL, NULL, "%d %d %lld %lld", fd, mode, (long long)off, (long long)len);                   \
        unlock();                                                                                                      \
        errno = e;                                                                                                     \
        return rc;                                                                                                     \
    }
FALLOCATE(fallocate, off_t)
FALLOCATE(fallocate64, off64_t)

/* posix_fallocate returns the error number instead of setting errno */
#define POSIX_FALLOCATE(name, otype)                                                                                   \
    REAL(name);                                                                                                        \
    int name(int fd, otype off, otype len)                                                                             \
    {                                                                                                                  \
        LOAD(name);                                                                                                    \
        if (!fd_traced(fd))                                                                                            \
            return real_##name(fd, off, len);                                                                          \
        lock();                                                                                                        \
        int rc = real_##name(fd, off, len);                                                                            \
        if (rc == 0)                                                                                                   \
            emit("FALLOC", NULL, NULL, "%d 0 %lld %lld", fd, (long long)off, (long long)len);                          \
        unlock();                                                                                                      \
        return rc;                                                                                                     \
    }
POSIX_FALLOCATE(posix_fallocate, off_t)
POSIX_FALLOCATE(posix_fallocate64, off64_t)

/* ---- syncing: a line before (what it covers) and one after (when it is durable) ---- */

static int synced(const char *name, int fd, int (*real)(int))
{
    if (!fd_traced(fd))
        return real(fd);
    lock();
    emit("SYNCB", NULL, NULL, "%d %s", fd, name);
    unlock();
    int rc = real(fd);
    int e = errno;
    lock();
    emit("SYNCE", NULL, NULL, "%d %s %d", fd, name, rc);
    unlock();
    errno = e;
    return rc;
}

REAL(fsync);
REAL(fdatasync);
REAL(syncfs);
int fsync(int fd)
{
    LOAD(fsync);
    return synced("fsync", fd, real_fsync);
}

int fdatasync(int fd)
{
    LOAD(fdatasync);
    return synced("fdatasync", fd, real_fdatasync);
}

int syncfs(int fd)
{
    LOAD(syncfs);
    lock();
    int t = enabled > 0;
    if (t)
        emit("SYNCALLB", NULL, NULL, NULL);
    unlock();
    int rc = real_syncfs(fd);
    int e = errno;
    lock();
    if (t)
        emit("SYNCALLE", NULL, NULL, "%d", rc);
    unlock();
    errno = e;
    return rc;
}

REAL(sync);
void sync(void)
{
    LOAD(sync);
    lock();
    int t = enabled > 0;
    if (t)
        emit("SYNCALLB", NULL, NULL, NULL);
    unlock();
    real_sync();
    lock();
    if (t)
        emit("SYNCALLE", NULL, NULL, "0");
    unlock();
}

REAL(sync_file_range);
int sync_file_range(int fd, off64_t off, off64_t len, unsigned int flags)
{
    LOAD(sync_file_range);
    int rc = real_sync_file_range(fd, off, len, flags);
    if (fd_traced(fd)) {
        int e = errno;
        lock();
        emit("SFR", NULL, NULL, "%d %lld %lld %u %d", fd, (long long)off, (long long)len, flags, rc);
        unlock();
        errno = e;
    }
    return rc;
}

/* ---- the name space ---- */

#define PATH1(name, params, args, dfd, path, opname)                                                                   \
    REAL(name);                                                                                                        \
    int name params                                                                                                    \
    {                                                                                                                  \
        LOAD(name);                                                                                                    \
        char abs[PATH_MAX];                                                                                            \
        lock();                                                                                                        \
        int t = enabled > 0 && resolve(dfd, path, abs) && traced(abs);                                                 \
        int rc = real_##name args;                                                                                     \
        int e = errno;                                                                                                 \
        if (rc == 0 && t)                                                                                              \
            emit(opname, abs, NULL, NULL);                                                                             \
        unlock();                                                                                                      \
        errno = e;                                                                                                     \
        return rc;                                                                                                     \
    }
PATH1(mkdir, (const char *p, mode_t m), (p, m), AT_FDCWD, p, "MKDIR")
PATH1(mkdirat, (int d, const char *p, mode_t m), (d, p, m), d, p, "MKDIR")
PATH1(unlink, (const char *p), (p), AT_FDCWD, p, "UNLINK")
PATH1(rmdir, (const char *p), (p), AT_FDCWD, p, "RMDIR")
PATH1(unlinkat, (int d, const char *p, int fl), (d, p, fl), d, p, (fl & AT_REMOVEDIR) ? "RMDIR" : "UNLINK")

REAL(remove);
int remove(const char *p)
{
    LOAD(remove);
    char abs[PATH_MAX];
    struct stat st;
    lock();
    int t = enabled > 0 && resolve(AT_FDCWD, p, abs) && traced(abs);
    int dir = t && syscall(SYS_newfstatat, AT_FDCWD, abs, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    int rc = real_remove(p);
    int e = errno;
    if (rc == 0 && t)
        emit(dir ? "RMDIR" : "UNLINK", abs, NULL, NULL);
    unlock();
    errno = e;
    return rc;
}

#define PATH2(name, params, args, d1, p1, d2, p2, opname)                                                              \
    REAL(name);                                                                                                        \
    int name params                                                                                                    \
    {                                                                                                                  \
        LOAD(name);                                                                                                    \
        char a1[PATH_MAX], a2[PATH_MAX];                                                                               \
        lock();                                                                                                        \
        int ok = enabled > 0 && resolve(d1, p1, a1) && resolve(d2, p2, a2) && (traced(a1) || traced(a2));              \
        int rc = real_##name args;                                                                                     \
        int e = errno;                                                                                                 \
        if (rc == 0 && ok)                                                                                             \
            emit(opname, a1, a2, NULL);                                                                                \
        unlock();                                                                                                      \
        errno = e;                                                                                                     \
        return rc;                                                                                                     \
    }
PATH2(rename, (const char *o, const char *n), (o, n), AT_FDCWD, o, AT_FDCWD, n, "RENAME")
PATH2(renameat, (int od, const char *o, int nd, const char *n), (od, o, nd, n), od, o, nd, n, "RENAME")
PATH2(renameat2, (int od, const char *o, int nd, const char *n, unsigned fl), (od, o, nd, n, fl), od, o, nd, n,
      (fl & RENAME_EXCHANGE) ? "EXCHANGE" : "RENAME")
PATH2(link, (const char *o, const char *n), (o, n), AT_FDCWD, o, AT_FDCWD, n, "LINK")
PATH2(linkat, (int od, const char *o, int nd, const char *n, int fl), (od, o, nd, n, fl), od, o, nd, n, "LINK")
PATH2(symlink, (const char *o, const char *n), (o, n), AT_FDCWD, o, AT_FDCWD, n, "SYMLINK")

/* ---- writes the shim cannot see ---- */

REAL(mmap);
REAL(mmap64);
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    LOAD(mmap);
    void *p = real_mmap(addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED && (prot & PROT_WRITE) && (flags & MAP_SHARED) && fd_traced(fd)) {
        int e = errno;
        lock();
        emit("MMAPW", NULL, NULL, "%d %zu", fd, len);
        unlock();
        errno = e;
    }
    return p;
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
    LOAD(mmap64);
    void *p = real_mmap64(addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED && (prot & PROT_WRITE) && (flags & MAP_SHARED) && fd_traced(fd)) {
        int e = errno;
        lock();
        emit("MMAPW", NULL, NULL, "%d %zu", fd, len);
        unlock();
        errno = e;
    }
    return p;
}
