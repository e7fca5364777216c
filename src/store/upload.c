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

/* The file of session `uuid` of `repo`: uploads/<uuid>.<key>. */
static void session_file(const uploads_t *u, const char *uuid, const char *repo, char *buf, size_t len)
{
    digest_t d;
    digest_compute(&d, DIGEST_SHA256, repo, strlen(repo));
    snprintf(buf, len, "%s/%s.%.*s", u->dir, uuid, UPLOAD_KEY_LEN, digest_hex(&d));
}

/* A file of an older berth's session folder (`file` NULL: the folder). */
static void folder_path(const uploads_t *u, const char *uuid, const char *file, char *buf, size_t len)
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
    free(up->path);
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

int upload_file_name_valid(const char *name)
{
    if (strnlen(name, UPLOAD_UUID_LEN + 1 + UPLOAD_KEY_LEN + 1) != UPLOAD_UUID_LEN + 1 + UPLOAD_KEY_LEN ||
        !upload_uuid_valid(name, UPLOAD_UUID_LEN) || name[UPLOAD_UUID_LEN] != '.')
        return 0;
    for (const char *p = name + UPLOAD_UUID_LEN + 1; *p; ++p)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
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

static upload_t *session_new(const char *uuid, const char *repo, const char *path, digest_algo_t algo)
{
    upload_t *up = calloc(1, sizeof(*up));
    memcpy(up->uuid, uuid, UPLOAD_UUID_LEN + 1);
    up->repo = strdup(repo);
    up->path = strdup(path);
    up->fd = -1;
    up->algo = algo;
    up->hasher = digest_hasher_new(algo);
    return up;
}

int upload_create(uploads_t *u, const char *repo, digest_algo_t algo, char *uuid)
{
    char path[BLOBSTORE_PATH_MAX];
    make_uuid(uuid);
    session_file(u, uuid, repo, path, sizeof(path));
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        log_error("create %s: %s", path, strerror(errno));
        return -1;
    }
    close(fd); /* opened again by each request that uses the session */
    upload_t *up = session_new(uuid, repo, path, algo);
    pthread_mutex_lock(&u->_mu);
    table_insert(u, up);
    pthread_mutex_unlock(&u->_mu);
    return 0;
}

/* An older berth's session folder of `repo`: its data file's path and status. 0 or -1. */
static int load_folder(uploads_t *u, const char *uuid, const char *repo, digest_algo_t *algo, char *path, size_t len,
                       struct stat *st)
{
    char info[512];
    folder_path(u, uuid, "info", path, len);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, info, sizeof(info) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    info[n] = '\0';
    char *name = strchr(info, '\n');
    if (name == NULL)
        return -1;
    *name++ = '\0';
    char *end = strchr(name, '\n');
    if (end == NULL || strcmp(info, repo) != 0)
        return -1;
    *end = '\0';
    int a = digest_algo_from_name(name, strlen(name));
    if (a < 0)
        return -1;
    *algo = (digest_algo_t)a;
    folder_path(u, uuid, "data", path, len);
    return stat(path, st);
}

/* Load session `uuid` of `repo` that is on disk but not in memory (the server restarted). Called with the mutex held. */
static upload_t *load_session(uploads_t *u, const char *uuid, const char *repo)
{
    char path[BLOBSTORE_PATH_MAX];
    struct stat st;
    digest_algo_t algo = DIGEST_SHA256; /* announced at POST, not kept on disk: a wrong guess costs a re-hash */
    int folder = 0;
    session_file(u, uuid, repo, path, sizeof(path));
    if (stat(path, &st) != 0) {
        if (errno != ENOENT || load_folder(u, uuid, repo, &algo, path, sizeof(path), &st) != 0)
            return NULL;
        folder = 1;
    }
    if (!S_ISREG(st.st_mode))
        return NULL;
    upload_t *up = session_new(uuid, repo, path, algo);
    up->_folder = folder;
    up->offset = (uint64_t)st.st_size;
    if (up->offset > 0) {
        digest_hasher_free(up->hasher);
        up->hasher = NULL;
    }
    table_insert(u, up);
    return up;
}

int upload_acquire(uploads_t *u, const char *uuid, const char *repo, upload_t **out)
{
    int rc = 0;
    pthread_mutex_lock(&u->_mu);
    upload_t *up = table_find(u, uuid);
    if (up == NULL)
        up = load_session(u, uuid, repo);
    if (up == NULL || strcmp(up->repo, repo) != 0) {
        rc = BERTH_ENOTFOUND;
    } else if (up->busy) {
        rc = BERTH_EBUSY;
    } else {
        if ((up->fd = open(up->path, O_RDWR | O_CLOEXEC)) >= 0) {
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

/* An older berth's session folder, but for its data file. */
static void remove_folder(uploads_t *u, const char *uuid)
{
    char path[BLOBSTORE_PATH_MAX];
    folder_path(u, uuid, "info", path, sizeof(path));
    unlink(path);
    folder_path(u, uuid, NULL, path, sizeof(path));
    rmdir(path);
}

/* Forget a session; its data file goes too unless `stored` (it was renamed into the blob store). */
static void remove_session(uploads_t *u, upload_t *up, int stored)
{
    if (!stored)
        unlink(up->path);
    if (up->_folder)
        remove_folder(u, up->uuid);
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

int upload_finish_unsynced(uploads_t *u, upload_t *up, const digest_t *expect, blobstore_t *bs, uint64_t *size,
                           char *dir, upload_phases_t *phases)
{
    digest_t got;
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
        remove_session(u, up, 0);
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
    if ((dir != NULL ? blobstore_rename(bs, up->path, expect, dir) : blobstore_commit(bs, up->path, expect)) != 0) {
        upload_release(u, up);
        return BERTH_ERROR;
    }
    ph.commit = time_mono_s() - t;
    if (phases != NULL)
        *phases = ph;
    *size = up->offset;
    remove_session(u, up, 1);
    return 0;
}

int upload_finish(uploads_t *u, upload_t *up, const digest_t *expect, blobstore_t *bs, uint64_t *size,
                  upload_phases_t *phases)
{
    return upload_finish_unsynced(u, up, expect, bs, size, NULL, phases);
}

void upload_cancel(uploads_t *u, upload_t *up)
{
    remove_session(u, up, 0);
}

int upload_peek(uploads_t *u, const char *uuid, const char *repo, uint64_t *offset)
{
    int rc = BERTH_ENOTFOUND;
    pthread_mutex_lock(&u->_mu);
    upload_t *up = table_find(u, uuid);
    if (up == NULL)
        up = load_session(u, uuid, repo);
    if (up != NULL && strcmp(up->repo, repo) == 0) {
        /* a busy session's holder moves it without the lock (upload_append): a value it had at some point */
        *offset = __atomic_load_n(&up->offset, __ATOMIC_RELAXED);
        rc = 0;
    }
    pthread_mutex_unlock(&u->_mu);
    return rc;
}

/* When the session whose entry in uploads/ is `name` last changed: its data file's mtime (an older berth's folder
 * without one: its info file's, or the folder's). 0, or -1 if it is not a session's entry or is gone. */
static int session_mtime(uploads_t *u, const char *name, struct timespec *out)
{
    char path[BLOBSTORE_PATH_MAX];
    struct stat st;
    if (upload_file_name_valid(name)) {
        snprintf(path, sizeof(path), "%s/%s", u->dir, name);
        if (stat(path, &st) != 0)
            return -1;
    } else if (upload_uuid_valid(name, strlen(name))) {
        folder_path(u, name, "data", path, sizeof(path));
        if (stat(path, &st) != 0) {
            folder_path(u, name, "info", path, sizeof(path));
            if (stat(path, &st) != 0)
                folder_path(u, name, NULL, path, sizeof(path));
            if (stat(path, &st) != 0)
                return -1;
        }
    } else {
        return -1;
    }
    *out = st.st_mtim;
    return 0;
}

static int expired(const struct timespec *mtime, const struct timespec *now, uint64_t ttl_ms)
{
    return now->tv_sec >= mtime->tv_sec && (uint64_t)(now->tv_sec - mtime->tv_sec) * 1000 > ttl_ms;
}

int uploads_expire(uploads_t *u, uint64_t ttl_ms)
{
    char path[BLOBSTORE_PATH_MAX], uuid[UPLOAD_UUID_LEN + 1];
    struct timespec now, mtime;
    struct dirent *e;
    int removed = 0;
    DIR *dir = opendir(u->dir);
    if (dir == NULL)
        return 0;
    clock_gettime(CLOCK_REALTIME, &now);
    while ((e = readdir(dir)) != NULL) {
        if (session_mtime(u, e->d_name, &mtime) != 0 || !expired(&mtime, &now, ttl_ms))
            continue;
        memcpy(uuid, e->d_name, UPLOAD_UUID_LEN);
        uuid[UPLOAD_UUID_LEN] = '\0';
        /* again under the lock, so that no request takes the session (or writes to it) while its files go */
        pthread_mutex_lock(&u->_mu);
        upload_t *up = table_find(u, uuid);
        if ((up != NULL && up->busy) || session_mtime(u, e->d_name, &mtime) != 0 || !expired(&mtime, &now, ttl_ms)) {
            pthread_mutex_unlock(&u->_mu);
            continue;
        }
        if (up != NULL) {
            table_remove(u, up);
            upload_free(up);
        }
        if (upload_file_name_valid(e->d_name)) {
            snprintf(path, sizeof(path), "%s/%s", u->dir, e->d_name);
            unlink(path);
        } else {
            folder_path(u, uuid, "data", path, sizeof(path));
            unlink(path);
            remove_folder(u, uuid);
        }
        pthread_mutex_unlock(&u->_mu);
        ++removed;
    }
    closedir(dir);
    return removed;
}
