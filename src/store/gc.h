/*
 * Garbage collection: giving back the space of what nothing references, while the server runs.
 *
 * What is live: a tagged manifest; a manifest an index of its repository lists; a referrer whose subject is in its
 * repository; an untagged manifest younger than the untagged grace (counted from its push or from when it lost its
 * last tag). A link (repository, blob) is live while a manifest of that repository references the blob, or while it
 * is younger than the blob grace (clients upload layers before the manifest). A blob is live while a repository
 * links it. Everything else goes: manifests, then links, then blobs (row, then file).
 *
 * Finding garbage costs time in proportion to what changed, not to the size of the store: the database's triggers
 * (schema/004_gc.sql) queue whatever may have lost its last reference, in the transaction that changed it, and a
 * run looks only at the queue (a run with nothing to collect is a few indexed queries).
 *
 * Safety while clients push, and across crashes:
 * - each batch is one short write transaction that checks again what it removes; a push commits before or after
 *   it, never in between (SQLite's write lock, also across processes: `berth gc` beside `berth serve`). A manifest
 *   put checks its references in its own transaction, so it either sees the blob (which the collector then keeps)
 *   or is answered MANIFEST_BLOB_UNKNOWN. A mount links only a blob whose row is still there; an upload records its
 *   blob only if the file is still there.
 * - a blob's row is deleted, and its digest recorded in gc_unlink, in one transaction; its file is unlinked in the
 *   next one (under the write lock, and only if no row names the digest again). After a crash between the two,
 *   gc_recover unlinks what gc_unlink lists: a file goes only after its row, and nothing referenced is lost.
 */
#ifndef BERTH_STORE_GC_H
#define BERTH_STORE_GC_H

#include <stdint.h>
#include "store/metastore.h"
#include "store/policy.h"

typedef struct {
    const char *kind;   /* "manifest", "link" (a repository's link to a blob), "blob"; "image": evicted (evict.h) */
    const char *repo;   /* the repository (NULL for a blob) */
    const char *digest; /* the manifest's or blob's digest; an image's: its top manifest's */
    uint64_t size;      /* bytes: the manifest's, or the blob file's (a link frees nothing itself); an image's: what
                           its mirror's size went down by (its manifests, the blobs no other repository of it links) */
    /* an image only: */
    const char *tags;  /* its tags, comma-separated ("" for none) */
    const char *why;   /* "max_age" or "max_size" */
    int64_t pulled_at; /* when it was last pulled (Unix seconds) */
    int mirror;        /* its mirror: the index in gc_options_t.mirrors */
} gc_item_t;

struct evict_mirror;

typedef struct {
    int64_t blob_grace_s;     /* unreferenced links younger than this stay */
    int64_t untagged_grace_s; /* untagged, unreferenced manifests stay this long; 0 keeps them forever */
    int dry_run;              /* find, report and count, remove nothing (one transaction, rolled back) */
    void (*report)(void *ctx, const gc_item_t *it); /* each removal (NULL: none); strings valid during the call */
    void *ctx;
    const int *stop; /* when set and *stop becomes non-zero (atomically), the run ends after its batch */
    /* mirror cache eviction (store/evict.h), before the collection: every configured mirror, in the configuration's
     * order (the caller's, outliving the run); none: no eviction */
    const struct evict_mirror *mirrors;
    size_t nmirrors;
} gc_options_t;

typedef struct {
    uint64_t images, image_manifests, image_bytes; /* evicted from mirrors (evict.h); image_bytes as gc_item_t.size */
    uint64_t manifests, links, blobs;              /* removed */
    uint64_t bytes_freed;                          /* blob files' bytes given back */
    uint64_t examined;                             /* queued items looked at */
} gc_stats_t;

/**
 * One collection over the database `db` (a connection of the caller's, no transaction open) of storage root `root`.
 * Adds to *st. 0, or BERTH_ERROR (logged; what was committed before stays removed, the rest waits for the next run).
 */
int gc_run(metastore_t *db, const char *root, const gc_options_t *o, gc_stats_t *st);

/**
 * Unlink the files of blobs whose rows a collection deleted and committed but that it did not unlink yet (it was
 * stopped or killed): gc_unlink. `berth serve` runs it at start, berth fsck --repair before its checks. 0, or
 * BERTH_ERROR (logged).
 */
int gc_recover(metastore_t *db, const char *root);

/**
 * Lower the calling thread's CPU priority to nice GC_NICE: a collection takes what the server leaves (with CFS about a
 * tenth of a busy CPU, all of an idle one). The background collector runs so, and `berth gc`.
 */
#define GC_NICE 10
void gc_background_priority(void);

/** The background collector of `berth serve`: a run every `interval_ms`, on a connection of its own. */
typedef struct gc_thread gc_thread_t;

/** What the background collector did since the server started. */
typedef struct {
    gc_stats_t total;
    uint64_t runs, failures;
    double last_seconds;         /* the last run's duration */
    retention_stats_t retention; /* what the retention rules removed before the runs */
    uint64_t retention_failures;
} gc_totals_t;

/** What mirror cache eviction took from one mirror since the server started. */
typedef struct {
    uint64_t images, bytes; /* images evicted; what the mirror's size went down by */
} gc_mirror_totals_t;

/**
 * Start it (interval_ms > 0; `o` is copied, its report must be NULL: evictions are logged; o->mirrors must outlive
 * it). Before each run it applies the retention rules of `policy` (NULL or none: no retention; it must outlive the
 * thread). NULL if the thread cannot start (logged).
 */
gc_thread_t *gc_thread_start(const char *root, const char *db_path, uint64_t interval_ms, const gc_options_t *o,
                             const policy_t *policy);
/** Stop it (a run in progress ends after its batch) and free it. NULL is ignored. */
void gc_thread_stop(gc_thread_t *g);
/** The counters (all zero for NULL). Any thread. */
void gc_thread_totals(gc_thread_t *g, gc_totals_t *out);
/** The eviction counters of mirror `i` of the options' mirrors (zero for NULL or an index out of range). */
void gc_thread_mirror_totals(gc_thread_t *g, size_t i, gc_mirror_totals_t *out);

#endif
