/*
 * Mirror cache eviction: a pull-through mirror's repositories are a cache of its upstream, and each mirror may bound
 * it by size (max_size) and by age since the last pull (max_age). The garbage collector evicts at the start of each
 * run (store/gc.h), so that the same run's blob phase gives the space back.
 *
 * What goes is a whole image: a manifest no other manifest of its repository lists (an index's entries) or refers to
 * (a referrer's subject), with its tags, and what it holds: the manifests it lists and its referrers, recursively,
 * unless another manifest of the repository still lists them or a tag of their own keeps them. An image was last
 * pulled when its top manifest was (manifest.pulled_at, mirror/pulled.h): by tag or by that digest, as clients pull
 * (a platform's manifest pulled alone by digest does not keep its index; it is fetched again if it goes with it). Per mirror, images last pulled before
 * now - max_age go; then, while the mirror holds more than max_size, the least recently pulled. The mirror's size is
 * that of the distinct blobs its repositories link plus their manifests. With the manifests go the repository's
 * links to blobs no remaining manifest of it references (without waiting for gc.blob_grace): a blob no repository
 * links any more is removed by the same run, one a hosted repository (or another mirror) links stays.
 *
 * Only repositories a mirror created (repository.mirror = 1) are ever looked at, each belonging to the mirror whose
 * prefix is the longest that names it, else to the mirror of every name (prefix ""), as requests are routed.
 */
#ifndef BERTH_STORE_EVICT_H
#define BERTH_STORE_EVICT_H

#include <stddef.h>
#include <stdint.h>
#include "config/config.h"
#include "store/gc.h"

/** One configured mirror, as eviction sees it. */
typedef struct evict_mirror {
    const char *prefix; /* the repositories it serves: "<prefix>/..." or, for "", every mirrored one no other takes */
    uint64_t max_size;  /* bytes; 0 = no limit */
    int64_t max_age_s;  /* evict what was not pulled for this long; 0 = never */
} evict_mirror_t;

/** The mirrors of `cfg` (which must outlive the array), malloc'd (the caller frees it); NULL if none. */
evict_mirror_t *evict_mirrors_new(const config_t *cfg);

/** Whether any of the `n` mirrors has a limit (else eviction costs nothing, not even a query). */
int evict_enabled(const evict_mirror_t *mirrors, size_t n);

/**
 * Which of the `n` mirrors repository `name` (a mirrored one) belongs to: its index, or -1 if none serves that
 * name any more (it is then left alone).
 */
int evict_mirror_of(const evict_mirror_t *mirrors, size_t n, const char *name);

/**
 * Evict what the limits of o->mirrors say must go, on `db` (a connection of the caller's; inside the caller's
 * transaction for a dry run, else in short write transactions of its own), reporting each image (kind "image") and
 * adding to *st. `now` is the run's clock (Unix seconds). 0, or BERTH_ERROR (logged; what was committed stays
 * evicted).
 */
int evict_run(metastore_t *db, const gc_options_t *o, gc_stats_t *st, int64_t now);

#endif
