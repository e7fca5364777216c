#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "store/body.h"
#include "util/log.h"
#include "util/status.h"
#include "util/time.h"

void body_copy_init(body_copy_t *c, const upload_t *up)
{
    *c = (body_copy_t){.start = up->offset, .t_start = time_mono_s()};
}

/*
 * Only pages wholly inside the body go: the page around its end may hold the next request. EINVAL (the heap) and
 * EOPNOTSUPP (a file system without hole punching) count as done, so that the same pages are not asked again.
 */
static void release_copied(body_copy_t *c, char *body)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), base = (uintptr_t)body;
    uintptr_t from = (base + c->dropped + page - 1) & ~(page - 1), to = (base + c->done) & ~(page - 1);
    if (to <= from)
        return;
    if (madvise((void *)from, to - from, MADV_REMOVE) == 0 || errno == EINVAL || errno == EOPNOTSUPP)
        c->dropped = to - base;
}

/* Write, then hash, `n` bytes in pieces still in the CPU cache; on failure cut the session back to where the body
 * began. */
static int append(body_copy_t *c, upload_t *up, const char *p, size_t n)
{
    for (size_t k = 0; k < n; k += BODY_COPY_PIECE) {
        if (upload_append(up, p + k, n - k < BODY_COPY_PIECE ? n - k : BODY_COPY_PIECE) != 0) {
            int e = errno;
            log_error("upload %s: write: %s", up->uuid, strerror(e));
            upload_truncate(up, c->start);
            errno = e;
            return BERTH_ERROR;
        }
    }
    return 0;
}

int body_copy_step(body_copy_t *c, upload_t *up, void *body, size_t len)
{
    size_t n = len - c->done;
    if (n > BODY_COPY_SLICE)
        n = BODY_COPY_SLICE;
    if (append(c, up, (char *)body + c->done, n) != 0)
        return BERTH_ERROR;
    upload_writeback(up, up->offset - n, n);
    c->done += n;
    release_copied(c, body);
    if (c->done < len)
        return BODY_COPY_MORE;
    c->seconds = time_mono_s() - c->t_start;
    return BODY_COPY_DONE;
}

/* ---- hashing behind the writes ---- */

#define BEHIND_READ (1024 * 1024) /* read back and hashed at a time */

struct body_hash {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int fd;
    digest_hasher_t *hasher;
    uint64_t hashed;  /* the file's bytes the hash covers (the thread's) */
    uint64_t written; /* the file's bytes written so far */
    int end, stop, failed;
    char *buf;
};

static atomic_uint behind_threads;

static void *hash_main(void *arg)
{
    body_hash_t *b = arg;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (b->hashed == b->written && !b->end && !b->stop)
            pthread_cond_wait(&b->cond, &b->mu);
        if (b->stop || b->failed || b->hashed == b->written)
            break;
        uint64_t at = b->hashed, upto = b->written;
        pthread_mutex_unlock(&b->mu);
        while (at < upto) {
            size_t n = upto - at < BEHIND_READ ? (size_t)(upto - at) : BEHIND_READ;
            ssize_t r = pread(b->fd, b->buf, n, (off_t)at);
            if (r <= 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                log_error("hashing an upload as it arrives: read: %s", r < 0 ? strerror(errno) : "end of file");
                b->failed = 1;
                break;
            }
            digest_hasher_update(b->hasher, b->buf, (size_t)r);
            at += (uint64_t)r;
        }
        pthread_mutex_lock(&b->mu);
        b->hashed = at;
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

void body_copy_hash_behind(body_copy_t *c, upload_t *up)
{
    unsigned most = 2 * (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    if (up->hasher == NULL || atomic_fetch_add(&behind_threads, 1) >= most) {
        if (up->hasher != NULL)
            atomic_fetch_sub(&behind_threads, 1);
        return;
    }
    body_hash_t *b = calloc(1, sizeof(*b));
    b->buf = malloc(BEHIND_READ);
    b->fd = up->fd;
    b->hasher = up->hasher;
    b->hashed = b->written = up->offset;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cond, NULL);
    if (pthread_create(&b->thread, NULL, hash_main, b) != 0) {
        pthread_mutex_destroy(&b->mu);
        pthread_cond_destroy(&b->cond);
        free(b->buf);
        free(b);
        atomic_fetch_sub(&behind_threads, 1);
        return;
    }
    up->hasher = NULL; /* the thread's until body_copy_join */
    c->behind = b;
}

/* Tell the thread how far the file is written (and whether that is all, or whether to stop). */
static void behind_tell(body_hash_t *b, uint64_t written, int end, int stop)
{
    pthread_mutex_lock(&b->mu);
    b->written = written;
    b->end |= end;
    b->stop |= stop;
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->mu);
}

static void behind_end(body_copy_t *c, upload_t *up)
{
    body_hash_t *b = c->behind;
    pthread_join(b->thread, NULL);
    if (b->failed || b->hashed != up->offset)
        digest_hasher_free(b->hasher); /* upload_finish hashes the file */
    else
        up->hasher = b->hasher;
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cond);
    free(b->buf);
    free(b);
    c->behind = NULL;
    atomic_fetch_sub(&behind_threads, 1);
}

void body_copy_join(body_copy_t *c, upload_t *up)
{
    if (c->behind == NULL)
        return;
    behind_tell(c->behind, up->offset, 1, 0);
    behind_end(c, up);
}

/* ---- a body fed in pieces ---- */

int body_copy_feed(body_copy_t *c, upload_t *up, const char *p, size_t n)
{
    if (append(c, up, p, n) != 0)
        return BERTH_ERROR;
    c->done += n;
    if (c->done - c->synced >= BODY_COPY_SLICE) {
        upload_writeback(up, c->start + c->synced, c->done - c->synced);
        c->synced = c->done;
    }
    if (c->behind != NULL)
        behind_tell(c->behind, up->offset, 0, 0);
    return 0;
}

void body_copy_end(body_copy_t *c, upload_t *up)
{
    if (c->done > c->synced)
        upload_writeback(up, c->start + c->synced, c->done - c->synced);
    c->synced = c->done;
    c->seconds = time_mono_s() - c->t_start;
    if (c->behind != NULL)
        behind_tell(c->behind, up->offset, 1, 0);
}

void body_copy_abandon(body_copy_t *c, upload_t *up)
{
    if (c->behind != NULL) {
        behind_tell(c->behind, up->offset, 0, 1);
        behind_end(c, up);
    }
    upload_truncate(up, c->start);
}
