#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "store/blobstore.h"
#include "store/db.h"
#include "store/fsck.h"
#include "store/scrub.h"
#include "util/log.h"
#include "util/status.h"
#include "util/time.h"

#define PAGE 64             /* blob rows read per read transaction */
#define FILE_COST 4096      /* bytes charged to the rate per file: many small files are paced too */
#define PASS_PAUSE_MS 1000  /* at least this long between two passes (a small store is not re-read in a loop) */
#define CHUNK_MAX (1 << 20) /* largest read */
#define KNOWN_MAX 64        /* damaged blobs remembered from one pass to the next, to log each once */

struct scrub {
    char *root, *db_path;
    uint64_t rate;
    size_t chunk;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond; /* on CLOCK_MONOTONIC */
    int stop;
    uint64_t t0_ms; /* pacing: `spent` bytes charged since t0 */
    double spent;
    /* damaged blobs of the last pass (logged then: the next pass does not log them again) and of this one */
    char (*known)[DIGEST_MAX_STR + 1], (*found)[DIGEST_MAX_STR + 1];
    unsigned nknown, nfound;
    /* the counters, read by scrub_stats on any thread */
    uint64_t blobs, bytes, passes, corrupt_last, corrupt_now;
};

static db_query_t q_page = {"SELECT digest, size FROM blob WHERE digest > ?1 ORDER BY digest LIMIT ?2", 0};

/* Wait until `due_ms` on the monotonic clock, or until told to stop: 1 if stopping. */
static int sleep_until(scrub_t *s, uint64_t due_ms)
{
    pthread_mutex_lock(&s->mu);
    while (!s->stop && time_mono_ms() < due_ms) {
        struct timespec until = time_mono_ts(due_ms);
        pthread_cond_timedwait(&s->cond, &s->mu, &until);
    }
    int stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

/* Charge `n` bytes to the rate, sleeping as long as it takes: 1 if stopping. At most a second's worth of credit is
 * kept, so that a pause (between passes) is not made up for by a burst. */
static int charge(scrub_t *s, uint64_t n)
{
    uint64_t now = time_mono_ms();
    s->spent += (double)n;
    uint64_t due = s->t0_ms + (uint64_t)(s->spent * 1000.0 / (double)s->rate);
    if (due + 1000 < now) {
        s->t0_ms = now - 1000;
        s->spent = (double)s->rate;
        return 0;
    }
    return sleep_until(s, due);
}

static int pace(void *ctx, uint64_t n)
{
    scrub_t *s = ctx;
    __atomic_add_fetch(&s->bytes, n, __ATOMIC_RELAXED);
    return charge(s, n);
}

/* Log a damaged blob, unless the last pass did: a blob that stays damaged is logged once, not once per pass. */
static void damaged(scrub_t *s, const digest_t *d, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void damaged(scrub_t *s, const digest_t *d, const char *fmt, ...)
{
    char what[BLOBSTORE_PATH_MAX + 256];
    va_list ap;
    int seen = 0;
    for (unsigned i = 0; i < s->nknown && !seen; ++i)
        seen = strcmp(s->known[i], d->str) == 0;
    if (s->nfound < KNOWN_MAX)
        memcpy(s->found[s->nfound++], d->str, d->len + 1);
    if (seen)
        return;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    log_error("scrub: blob %s: %s", d->str, what);
}

/* Check one blob: 1 if it is damaged, 0 if not, -1 when stopping. */
static int check(scrub_t *s, const char *ds, int64_t size)
{
    blobstore_t bs = {s->root};
    char path[BLOBSTORE_PATH_MAX];
    digest_t d, got;
    uint64_t n = 0;
    if (digest_parse(&d, ds, strlen(ds)) != DIGEST_OK)
        return 0; /* not a blob berth could have stored: berth fsck reports it */
    blobstore_path(&bs, &d, path, sizeof(path));
    int rc = fsck_hash_file(path, d.algo, s->chunk, pace, s, &got, &n), e = errno;
    if (rc == BERTH_EBUSY || charge(s, FILE_COST) != 0)
        return -1;
    __atomic_add_fetch(&s->blobs, 1, __ATOMIC_RELAXED);
    if (rc == BERTH_ENOTFOUND)
        damaged(s, &d, "its file %s is missing", path);
    else if (rc != 0)
        damaged(s, &d, "cannot read %s: %s", path, strerror(e));
    else if (n != (uint64_t)size)
        damaged(s, &d, "%s has %llu bytes, the database says %lld", path, (unsigned long long)n, (long long)size);
    else if (!digest_equal(&got, &d))
        damaged(s, &d, "%s is corrupt, its bytes hash to %s (push the blob again to replace the file)", path, got.str);
    else
        return 0;
    return 1;
}

static void *scrub_main(void *arg)
{
    scrub_t *s = arg;
    char last[DIGEST_MAX_STR + 1] = "";
    uint64_t corrupt = 0, pass_start = time_mono_ms();
    struct {
        char digest[DIGEST_MAX_STR + 1];
        int64_t size;
    } page[PAGE];
    db_t *db = db_open(s->db_path, 0);
    if (db == NULL) {
        log_error("scrub: cannot open the database: no scrub");
        return NULL;
    }
    s->t0_ms = time_mono_ms();
    s->spent = 0;
    for (;;) {
        sqlite3_stmt *st = db_stmt(db, &q_page);
        int n = 0, rc = BERTH_ERROR;
        if (st != NULL) {
            db_bind_text(st, 1, last);
            sqlite3_bind_int(st, 2, PAGE);
            while ((rc = db_step(db, st)) == 1 && n < PAGE) {
                const char *t = (const char *)sqlite3_column_text(st, 0);
                snprintf(page[n].digest, sizeof(page[n].digest), "%s", t ? t : "");
                page[n++].size = sqlite3_column_int64(st, 1);
            }
            db_done(db, st);
        }
        if (rc < 0) { /* logged; try again later */
            if (sleep_until(s, time_mono_ms() + 60000))
                break;
            continue;
        }
        for (int i = 0; i < n; ++i) {
            int bad = check(s, page[i].digest, page[i].size);
            if (bad < 0)
                goto Exit;
            if (bad)
                __atomic_store_n(&s->corrupt_now, ++corrupt, __ATOMIC_RELAXED);
        }
        if (n == PAGE) {
            memcpy(last, page[n - 1].digest, sizeof(last));
            continue;
        }
        /* a pass is complete */
        log_debug("scrub: pass %llu done in %.1f s: %llu damaged",
                  (unsigned long long)__atomic_load_n(&s->passes, __ATOMIC_RELAXED) + 1,
                  (double)(time_mono_ms() - pass_start) / 1000.0, (unsigned long long)corrupt);
        __atomic_store_n(&s->corrupt_last, corrupt, __ATOMIC_RELAXED);
        __atomic_store_n(&s->corrupt_now, 0, __ATOMIC_RELAXED);
        __atomic_add_fetch(&s->passes, 1, __ATOMIC_RELAXED);
        corrupt = 0;
        last[0] = '\0';
        void *swap = s->known;
        s->known = s->found;
        s->nknown = s->nfound;
        s->found = swap;
        s->nfound = 0;
        if (sleep_until(s, pass_start + PASS_PAUSE_MS))
            break;
        pass_start = time_mono_ms();
    }
Exit:
    db_close(db);
    return NULL;
}

scrub_t *scrub_start(const char *root, const char *db_path, uint64_t rate)
{
    scrub_t *s = calloc(1, sizeof(*s));
    pthread_condattr_t ca;
    s->root = strdup(root);
    s->db_path = strdup(db_path);
    s->rate = rate;
    s->known = calloc(KNOWN_MAX, sizeof(*s->known));
    s->found = calloc(KNOWN_MAX, sizeof(*s->found));
    s->chunk = rate / 8 < 4096 ? 4096 : rate / 8 > CHUNK_MAX ? CHUNK_MAX : rate / 8;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&s->thread, NULL, scrub_main, s) != 0) {
        log_error("cannot start the scrub's thread");
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cond);
        free(s->known);
        free(s->found);
        free(s->root);
        free(s->db_path);
        free(s);
        return NULL;
    }
    log_info("scrub: re-hashing every blob, %llu bytes per second at most", (unsigned long long)rate);
    return s;
}

void scrub_stop(scrub_t *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    free(s->known);
    free(s->found);
    free(s->root);
    free(s->db_path);
    free(s);
}

void scrub_stats(const scrub_t *s, scrub_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (s == NULL)
        return;
    out->blobs_checked = __atomic_load_n(&s->blobs, __ATOMIC_RELAXED);
    out->bytes_checked = __atomic_load_n(&s->bytes, __ATOMIC_RELAXED);
    out->passes = __atomic_load_n(&s->passes, __ATOMIC_RELAXED);
    uint64_t last = __atomic_load_n(&s->corrupt_last, __ATOMIC_RELAXED);
    uint64_t now = __atomic_load_n(&s->corrupt_now, __ATOMIC_RELAXED);
    out->corrupt = last > now ? last : now;
}
