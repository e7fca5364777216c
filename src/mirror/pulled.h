/*
 * When a mirrored image was last pulled, for mirror cache eviction (store/evict.h), without a write per pull: a
 * pull serving a manifest whose recorded pulled_at is older than the mirror's granularity records the pull in the
 * background (the writer's next transaction, on a worker thread), and the answer does not wait for it. So a
 * mirrored manifest costs at most one write per granularity however often it is pulled, and eviction orders
 * images by when they were last pulled to within that granularity.
 */
#ifndef BERTH_MIRROR_PULLED_H
#define BERTH_MIRROR_PULLED_H

#include <stdint.h>
#include "config/config.h"
#include "mirror/mirror.h"
#include "oci/digest.h"
#include "store/metastore.h"

/** The most a recorded pull may lag behind the last pull: an hour, or a sixteenth of max_age (at least 1 s). */
int64_t mirror_pull_granularity_s(const config_mirror_t *cfg);

/**
 * Where the records go: the writer `w`, through `spawn`, which runs fn(arg) on a thread that may block (never an
 * event loop). Both the caller's, outliving every pull. Before the first mirror_pulled; NULL `w` turns it off.
 */
void mirror_pulled_init(metastore_writer_t *w, void (*spawn)(void (*fn)(void *arg), void *arg));

/**
 * Manifest `d` of mirrored repository `local`, served by mirror `m`, was pulled now; `pulled_at` is what the caller
 * read (metastore_manifest_t.pulled_at). Records the pull in the background when `pulled_at` is older than the
 * granularity and no record of it is on its way already. 1 if it queued a record, else 0. Any thread; never blocks
 * on the database.
 */
int mirror_pulled(const mirror_t *m, const char *local, const digest_t *d, int64_t pulled_at);

#endif
