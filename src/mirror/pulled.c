#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "mirror/pulled.h"
#include "oci/name.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/time.h"

#define HOUR 3600
#define SLOTS 256 /* records on their way, by (repository, digest) hash: a burst of pulls queues one */

static metastore_writer_t *writer;
static void (*spawn)(void (*fn)(void *arg), void *arg);

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    uint64_t key;
    int64_t at; /* when it was queued */
} slots[SLOTS];

typedef struct {
    metastore_writer_t *w;
    char repo[NAME_MAX_LEN + 1];
    digest_t digest;
    int64_t at;
} record_t;

int64_t mirror_pull_granularity_s(const config_mirror_t *cfg)
{
    int64_t g = (int64_t)(cfg->max_age_ms / 1000 / 16);
    return cfg->max_age_ms == 0 || g > HOUR ? HOUR : g < 1 ? 1 : g;
}

void mirror_pulled_init(metastore_writer_t *w, void (*sp)(void (*fn)(void *arg), void *arg))
{
    writer = w;
    spawn = sp;
}

static int record_write(metastore_t *m, void *arg)
{
    record_t *r = arg;
    return metastore_manifest_pulled(m, r->repo, &r->digest, r->at) < 0 ? -1 : 0;
}

static void record_run(void *arg)
{
    if (metastore_write(((record_t *)arg)->w, record_write, arg) != 0)
        log_warn("mirror: cannot record a pull of %s@%s (eviction may take it for older than it is)",
                 ((record_t *)arg)->repo, ((record_t *)arg)->digest.str);
    free(arg);
}

int mirror_pulled(const mirror_t *m, const char *local, const digest_t *d, int64_t pulled_at)
{
    int64_t now = time_now_s(), g = mirror_pull_granularity_s(m->cfg);
    if (writer == NULL || now - pulled_at < g || strlen(local) > NAME_MAX_LEN)
        return 0;
    uint64_t key = hash_fnv(hash_fnv(HASH_FNV_INIT, local, strlen(local) + 1), d->str, strlen(d->str));
    size_t i = key % SLOTS;
    pthread_mutex_lock(&mu);
    /* queued within the granularity: it is on its way, or committed and the caller read an older generation */
    int queued = slots[i].key == key && now - slots[i].at < g;
    if (!queued) {
        slots[i].key = key;
        slots[i].at = now;
    }
    pthread_mutex_unlock(&mu);
    if (queued)
        return 0;
    record_t *r = malloc(sizeof(*r));
    if (r == NULL)
        return 0;
    r->w = writer;
    strcpy(r->repo, local);
    r->digest = *d;
    r->at = now;
    spawn(record_run, r);
    return 1;
}
