#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "store/upload.h"
#include "util/log.h"
#include "util/status.h"
#include "util/time.h"

static unsigned bucket_of(const char *uuid)
{
    unsigned h = 0;
    for (const char *p = uuid; *p; ++p)
        h = h * 31 + (unsigned char)*p;
    return h % 256;
}

static void session_path(const uploads_t *u, const char *uuid, const char *file, char *buf, size_t len)
{
    if (file)
        snprintf(buf, len, "%s/%s/%s", u->dir, uuid, file);
    else
        snprintf(buf, len, "%s/%s", u->dir, uuid);
}

int uploads_init(uploads_t *u, const char *root)
{
    char path[BLOBSTORE_PATH_MAX];
    memset(u, 0, sizeof(*u));
    snprintf(path, sizeof(path), "%s/uploads", root);
    u->dir = strdup(path);
    pthread_mutex_init(&u->_mu, NULL);
    return 0;
}

static void upload_free(upload_t *up)
{
    if (up->fd >= 0)
        close(up->fd);
    if (up->hasher)
        digest_hasher_free(up->hasher);
    free(up->repo);
    free(up);
}

void uploads_dispose(uploads_t *u)
{
    for (int i = 0; i < 256; ++i) {
        while (u->_buckets[i]) {
            upload_t *up = u->_buckets[i];
            u->_buckets[i] = up->_next;
            upload_free(up);
        }
    }
    pthread_mutex_destroy(&u->_mu);
    free(u->dir);
}

int upload_uuid_valid(const char *s, size_t len)
{
    if (len != UPLOAD_UUID_LEN)
        return 0;
    for (size_t i = 0; i < len; ++i) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

static void make_uuid(char *out)
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof(b)) != 1)
        abort();
    b[6] = (b[6] & 0x0f) | 0x40; /* version 4 */
    b[8] = (b[8] & 0x3f) | 0x80; /* RFC 4122 variant */
    snprintf(out, UPLOAD_UUID_LEN + 1, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

static void table_insert(uploads_t *u, upload_t *up)
{
    unsigned b = bucket_of(up->uuid);
    up->_next = u->_buckets[b];
    u->_buckets[b] = up;
}

static void table_remove(uploads_t *u, upload_t *up)
{
    for (upload_t **p = &u->_buckets[bucket_of(up->uuid)]; *p; p = &(*p)->_next) {
        if (*p == up) {
            *p = up->_next;
            return;
        }
    }
}

static upload_t *table_find(uploads_t *u, const char *uuid)
{
    for (upload_t *up = u->_buckets[bucket_of(uuid)]; up; up = up->_next)
        if (strcmp(up->uuid, uuid) == 0)
            return up;
    return NULL;
}

int upload_create(uploads_t *u, const char *repo, digest_algo_t algo, char *uuid)
{
    char path[BLOBSTORE_PATH_MAX], info[512];
    make_uuid(uuid);
    session_path(u, uuid, NULL, path, sizeof(path));
    if (mkdir(path, 0755) != 0) {
        log_error("mkdir %s: %s", path, strerror(errno));
        return -1;
    }
    session_path(u, uuid, "info", path, sizeof(path));
    int n = snprintf(info, sizeof(info), "%s\n%s\n%lld\n", repo, digest_algo_name(algo), (long long)time(NULL));
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, info, n) != n) {
        log_error("write %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    session_path(u, uuid, "data", path, sizeof(path));
    if ((fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
        log_error("create %s: %s", path, strerror(errno));
        return -1;
    }
    close(fd); /* opened again by each request that uses the session */
    upload_t *up = calloc(1, sizeof(*up));
    memcpy(up->uuid, uuid, UPLOAD_UUID_LEN + 1);
    up->repo = strdup(repo);
    up->fd = -1;
    up->algo = algo;
    up->hasher = digest_hasher_new(algo);
    pthread_mutex_lock(&u->_mu);
    table_insert(u, up);
    pthread_mutex_unlock(&u->_mu);
    return 0;
}

/* Load a session that is on disk but not in memory (the server restarted). Called with the mutex held. */
static upload_t *load_session(uploads_t *u, const char *uuid)
{
    char path[BLOBSTORE_PATH_MAX], info[512];
    session_path(u, uuid, "info", path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    ssize_t n = read(fd, info, sizeof(info) - 1);
    close(fd);
    if (n <= 0)
        return NULL;
    info[n] = '\0';
    char *algo = strchr(info, '\n');
    if (algo == NULL)
        return NULL;
    *algo++ = '\0';
    char *end = strchr(algo, '\n');
    if (end == NULL)
        return NULL;
    *end = '\0';
    int a = digest_algo_from_name(algo, strlen(algo));
    if (a < 0)
        return NULL;
    session_path(u, uuid, "data", path, sizeof(path));
    struct stat st;
    if (stat(path, &st) != 0)
        return NULL;
    upload_t *up = calloc(1, sizeof(*up));
    memcpy(up->uuid, uuid, UPLOAD_UUID_LEN + 1);
    up->repo = strdup(info);
    up->fd = -1;
    up->algo = (digest_algo_t)a;
    up->offset = (uint64_t)st.st_size;
    up->hasher = up->offset == 0 ? digest_hasher_new(up->algo) : NULL;
    table_insert(u, up);
    return up;
}

int upload_acquire(uploads_t *u, const char *uuid, const char *repo, upload_t **out)
{
    int rc = 0;
    pthread_mutex_lock(&u->_mu);
    upload_t *up = table_find(u, uuid);
    if (up == NULL)
        up = load_session(u, uuid);
    if (up == NULL || strcmp(up->repo, repo) != 0) {
        rc = BERTH_ENOTFOUND;
    } else if (up->busy) {
        rc = BERTH_EBUSY;
    } else {
        char path[BLOBSTORE_PATH_MAX];
        session_path(u, uuid, "data", path, sizeof(path));
        if ((up->fd = open(path, O_RDWR | O_CLOEXEC)) >= 0) {
            up->busy = 1;
            *out = up;
        } else {
            /* gone (expired meanwhile) is unknown; out of descriptors or memory is an error, never "unknown" */
            rc = errno == ENOENT ? BERTH_ENOTFOUND : BERTH_ERROR;
            log_error("upload %s: open: %s", uuid, strerror(errno));
        }
    }
    int e = errno;
    pthread_mutex_unlock(&u->_mu);
    errno = e;
    return rc;
}

void upload_release(uploads_t *u, upload_t *up)
{
    pthread_mutex_lock(&u->_mu);
    up->busy = 0;
    if (up->fd >= 0)
        close(up->fd);
    up->fd = -1;
    pthread_mutex_unlock(&u->_mu);
}

int upload_append(upload_t *up, const void *data, size_t len)
{
    const char *p = data;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(up->fd, p + done, len - done, (off_t)(up->offset + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            if (ftruncate(up->fd, (off_t)up->offset) != 0) { /* keep the file equal to what was acknowledged */
            }
            errno = e;
            return -1;
        }
        done += (size_t)n;
    }
    if (up->hasher)
        digest_hasher_update(up->hasher, data, len);
    /* atomic: upload_peek reads it from another thread while this session is busy (only its holder writes it) */
    __atomic_store_n(&up->offset, up->offset + len, __ATOMIC_RELAXED);
    return 0;
}

void upload_writeback(upload_t *up, uint64_t offset, uint64_t len)
{
    if (len > 0)
        (void)sync_file_range(up->fd, (off64_t)offset, (off64_t)len, SYNC_FILE_RANGE_WRITE);
}

int upload_truncate(upload_t *up, uint64_t offset)
{
    if (offset == up->offset)
        return 0;
    if (ftruncate(up->fd, (off_t)offset) != 0)
        return -1;
    __atomic_store_n(&up->offset, offset, __ATOMIC_RELAXED); /* see upload_append */
    if (up->hasher) {
        digest_hasher_free(up->hasher);
        up->hasher = NULL;
    }
    return 0;
}

static void remove_session(uploads_t *u, upload_t *up)
{
    char path[BLOBSTORE_PATH_MAX];
    session_path(u, up->uuid, "data", path, sizeof(path));
    unlink(path);
    session_path(u, up->uuid, "info", path, sizeof(path));
    unlink(path);
    session_path(u, up->uuid, NULL, path, sizeof(path));
    rmdir(path);
    pthread_mutex_lock(&u->_mu);
    table_remove(u, up);
    pthread_mutex_unlock(&u->_mu);
    upload_free(up);
}

static int rehash(upload_t *up, digest_algo_t algo, digest_t *out)
{
    static const size_t bufsz = 1 << 20;
    char *buf = malloc(bufsz);
    digest_hasher_t *h = digest_hasher_new(algo);
    uint64_t off = 0;
    int rc = 0;
    while (off < up->offset) {
        ssize_t n = pread(up->fd, buf, bufsz, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            log_error("upload %s: read: %s", up->uuid, n < 0 ? strerror(errno) : "short file");
            rc = -1;
            break;
        }
        digest_hasher_update(h, buf, (size_t)n);
        off += (uint64_t)n;
    }
    if (rc == 0)
        digest_hasher_final(h, out);
    digest_hasher_free(h);
    free(buf);
    return rc;
}

int upload_finish(uploads_t *u, upload_t *up, const digest_t *expect, blobstore_t *bs, uint64_t *size,
                  upload_phases_t *phases)
{
    digest_t got;
    char path[BLOBSTORE_PATH_MAX];
    upload_phases_t ph;
    double t = time_mono_s(), t1;
    if (up->hasher != NULL && digest_hasher_algo(up->hasher) == expect->algo) {
        digest_hasher_final(up->hasher, &got);
        digest_hasher_free(up->hasher);
        up->hasher = NULL;
    } else if (rehash(up, expect->algo, &got) != 0) {
        upload_release(u, up);
        return BERTH_ERROR;
    }
    if (!digest_equal(&got, expect)) {
        remove_session(u, up);
        return BERTH_EDIGEST;
    }
    t1 = time_mono_s();
    ph.hash = t1 - t;
    t = t1;
    if (fsync(up->fd) != 0) {
        log_error("upload %s: fsync: %s", up->uuid, strerror(errno));
        upload_release(u, up);
        return BERTH_ERROR;
    }
    t1 = time_mono_s();
    ph.fsync = t1 - t;
    t = t1;
    session_path(u, up->uuid, "data", path, sizeof(path));
    if (blobstore_commit(bs, path, expect) != 0) {
        upload_release(u, up);
        return BERTH_ERROR;
    }
    ph.commit = time_mono_s() - t;
    if (phases != NULL)
        *phases = ph;
    *size = up->offset;
    remove_session(u, up);
    return 0;
}

void upload_cancel(uploads_t *u, upload_t *up)
{
    remove_session(u, up);
}

int upload_peek(uploads_t *u, const char *uuid, const char *repo, uint64_t *offset)
{
    int rc = BERTH_ENOTFOUND;
    pthread_mutex_lock(&u->_mu);
    upload_t *up = table_find(u, uuid);
    if (up == NULL)
        up = load_session(u, uuid);
    if (up != NULL && strcmp(up->repo, repo) == 0) {
        /* a busy session's holder moves it without the lock (upload_append): a value it had at some point */
        *offset = __atomic_load_n(&up->offset, __ATOMIC_RELAXED);
        rc = 0;
    }
    pthread_mutex_unlock(&u->_mu);
    return rc;
}

int uploads_expire(uploads_t *u, uint64_t ttl_ms)
{
    char path[BLOBSTORE_PATH_MAX];
    struct stat st;
    struct dirent *e;
    int removed = 0;
    DIR *dir = opendir(u->dir);
    if (dir == NULL)
        return 0;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    while ((e = readdir(dir)) != NULL) {
        if (!upload_uuid_valid(e->d_name, strlen(e->d_name)))
            continue;
        session_path(u, e->d_name, "data", path, sizeof(path));
        if (stat(path, &st) != 0) {
            session_path(u, e->d_name, "info", path, sizeof(path));
            if (stat(path, &st) != 0)
                session_path(u, e->d_name, NULL, path, sizeof(path));
            if (stat(path, &st) != 0)
                continue;
        }
        uint64_t age_ms = (uint64_t)(now.tv_sec - st.st_mtim.tv_sec) * 1000;
        if (now.tv_sec < st.st_mtim.tv_sec || age_ms <= ttl_ms)
            continue;
        pthread_mutex_lock(&u->_mu);
        upload_t *up = table_find(u, e->d_name);
        if (up != NULL && up->busy) {
            pthread_mutex_unlock(&u->_mu);
            continue;
        }
        if (up != NULL) {
            table_remove(u, up);
            upload_free(up);
        }
        /* still under the lock, so that no request loads the session while its files go */
        session_path(u, e->d_name, "data", path, sizeof(path));
        unlink(path);
        session_path(u, e->d_name, "info", path, sizeof(path));
        unlink(path);
        session_path(u, e->d_name, NULL, path, sizeof(path));
        rmdir(path);
        pthread_mutex_unlock(&u->_mu);
        ++removed;
    }
    closedir(dir);
    return removed;
}
