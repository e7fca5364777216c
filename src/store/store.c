#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include "store/audit.h"
#include "store/events.h"
#include "store/evict.h"
#include "store/store.h"
#include "util/log.h"
#include "util/time.h"

int store_db_create(const char *root, char *path, size_t len)
{
    struct stat st;
    if (snprintf(path, len, "%s/berth.db", root) >= (int)len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (mkdir_p(root) != 0)
        return -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno == EEXIST ? 0 : -1;
    /* root running the CLI on a server's folder must not leave a database the server cannot open */
    if (geteuid() == 0 && stat(root, &st) == 0 && st.st_uid != 0 && fchown(fd, st.st_uid, st.st_gid) != 0) {
        close(fd);
        return -1;
    }
    return close(fd);
}

static int prune_write(metastore_t *m, void *arg)
{
    const store_t *s = arg;
    int n = audit_prune(m, time_now_s() - (int64_t)(s->cfg->audit_retention_ms / 1000));
    if (n > 0)
        log_info("audit: removed %d row(s) older than audit.retention", n);
    return n < 0 ? n : 0;
}

/* What waits in memory for a write: audit records of logins, webhook events of pulls. */
static int flush_write(metastore_t *m, void *arg)
{
    int rc = audit_flush(m, arg);
    return rc == 0 ? events_flush(m, arg) : rc;
}

#define AUDIT_PRUNE_EVERY_MS (3600 * 1000)

/*
 * Periodic chores off the event loops: expire stale upload sessions; write the queued audit records (about once a
 * second, all in one transaction: logins have no write of their own to ride with), and the webhook events of pulls
 * likewise; prune the audit log at start and
 * every hour.
 */
static void *chores_main(void *arg)
{
    store_t *s = arg;
    uint64_t ttl = s->cfg->storage_upload_ttl_ms, every = ttl / 4, next_expire = 0, next_prune = 0;
    if (every < 1000)
        every = 1000;
    if (every > 600000)
        every = 600000;
    pthread_mutex_lock(&s->_chores.mu);
    while (!s->_chores.stop) {
        pthread_mutex_unlock(&s->_chores.mu);
        uint64_t now = time_mono_ms();
        if (now >= next_expire) {
            int n = uploads_expire(&s->uploads, ttl);
            if (n > 0)
                log_info("removed %d upload session(s) idle for more than %llu s", n, (unsigned long long)(ttl / 1000));
            next_expire = now + every;
        }
        if (audit_queued() > 0 || events_queued() > 0)
            metastore_write(s->writer, flush_write, NULL);
        if (s->cfg->audit_retention_ms > 0 && now >= next_prune) {
            metastore_write(s->writer, prune_write, s);
            next_prune = now + AUDIT_PRUNE_EVERY_MS;
        }
        pthread_mutex_lock(&s->_chores.mu);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        while (!s->_chores.stop && pthread_cond_timedwait(&s->_chores.cond, &s->_chores.mu, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&s->_chores.mu);
    if (audit_queued() > 0 || events_queued() > 0) /* the writer stops after this thread */
        metastore_write(s->writer, flush_write, NULL);
    return NULL;
}

int store_open(store_t *s, const config_t *cfg)
{
    char path[BLOBSTORE_PATH_MAX];
    memset(s, 0, sizeof(*s));
    s->cfg = cfg;
    pthread_mutex_init(&s->_chores.mu, NULL);
    pthread_cond_init(&s->_chores.cond, NULL);
    if (store_db_create(cfg->storage_root, path, sizeof(path)) != 0) {
        log_error("cannot create %s/berth.db: %s", cfg->storage_root, strerror(errno));
        goto Error;
    }
    s->db_path = strdup(path);
    if (blobstore_init(&s->blobs, cfg->storage_root) != 0)
        goto Error;
    uploads_init(&s->uploads, cfg->storage_root);
    metastore_t *m = metastore_open(s->db_path, 1); /* applies the schema */
    if (m == NULL)
        goto Error;
    int recovered = gc_recover(m, cfg->storage_root); /* the files a stopped collection left to unlink */
    metastore_close(m);
    if (recovered != 0)
        goto Error;
    if ((s->writer = metastore_writer_start(s->db_path)) == NULL)
        goto Error;
    if (pthread_create(&s->_chores.thread, NULL, chores_main, s) != 0) {
        log_error("cannot start the store's chores thread");
        goto Error;
    }
    s->_chores.started = 1;
    if (cfg->storage_scrub_rate > 0 &&
        (s->scrub = scrub_start(cfg->storage_root, s->db_path, cfg->storage_scrub_rate)) == NULL)
        goto Error;
    if ((s->policy = policy_new(cfg)) == NULL)
        goto Error;
    if (cfg->gc_interval_ms > 0) {
        gc_options_t o = {(int64_t)(cfg->gc_blob_grace_ms / 1000), (int64_t)(cfg->gc_untagged_grace_ms / 1000)};
        o.mirrors = s->_evict = evict_mirrors_new(cfg);
        o.nmirrors = s->_evict != NULL ? cfg->nmirrors : 0;
        if ((s->gc = gc_thread_start(cfg->storage_root, s->db_path, cfg->gc_interval_ms, &o, s->policy)) == NULL)
            goto Error;
    }
    return 0;
Error:
    store_close(s);
    return -1;
}

void store_close(store_t *s)
{
    gc_thread_stop(s->gc);
    s->gc = NULL;
    policy_free(s->policy);
    s->policy = NULL;
    free(s->_evict);
    s->_evict = NULL;
    scrub_stop(s->scrub);
    s->scrub = NULL;
    if (s->_chores.started) {
        pthread_mutex_lock(&s->_chores.mu);
        s->_chores.stop = 1;
        pthread_cond_signal(&s->_chores.cond);
        pthread_mutex_unlock(&s->_chores.mu);
        pthread_join(s->_chores.thread, NULL);
        s->_chores.started = 0;
    }
    if (s->writer != NULL)
        metastore_writer_stop(s->writer);
    s->writer = NULL;
    if (s->uploads.dir != NULL)
        uploads_dispose(&s->uploads);
    if (s->blobs.root != NULL)
        blobstore_dispose(&s->blobs);
    pthread_mutex_destroy(&s->_chores.mu);
    pthread_cond_destroy(&s->_chores.cond);
    free(s->db_path);
    s->db_path = NULL;
}

metastore_t *store_connect(store_t *s)
{
    metastore_t *m = metastore_open(s->db_path, 0);
    if (m != NULL)
        metastore_enable_cache(m);
    return m;
}

int store_space(const store_t *s, uint64_t *free_bytes)
{
    struct statvfs st;
    if (statvfs(s->blobs.root, &st) != 0)
        return -1;
    *free_bytes = (uint64_t)st.f_bavail * st.f_frsize;
    return *free_bytes < s->cfg->storage_min_free;
}
