#include <errno.h>
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

int body_copy_feed(body_copy_t *c, upload_t *up, const char *p, size_t n)
{
    if (append(c, up, p, n) != 0)
        return BERTH_ERROR;
    c->done += n;
    if (c->done - c->synced >= BODY_COPY_SLICE) {
        upload_writeback(up, c->start + c->synced, c->done - c->synced);
        c->synced = c->done;
    }
    return 0;
}

void body_copy_end(body_copy_t *c, upload_t *up)
{
    if (c->done > c->synced)
        upload_writeback(up, c->start + c->synced, c->done - c->synced);
    c->synced = c->done;
    c->seconds = time_mono_s() - c->t_start;
}

void body_copy_abandon(body_copy_t *c, upload_t *up)
{
    upload_truncate(up, c->start);
}
