/*
 * The store as one object: the blob files, the upload sessions and the metadata database of a storage root, opened
 * and closed together by `berth serve`, with the chores that keep them tidy (expiring stale upload sessions) on a
 * thread of their own, the scrub that re-hashes the blobs (store/scrub.h) and the garbage collector (store/gc.h) on
 * threads of theirs. The CLI opens only the database (store_db_create, then metastore_open).
 */
#ifndef BERTH_STORE_STORE_H
#define BERTH_STORE_STORE_H

#include <pthread.h>
#include "config/config.h"
#include "store/blobstore.h"
#include "store/gc.h"
#include "store/metastore.h"
#include "store/policy.h"
#include "store/scrub.h"
#include "store/upload.h"

typedef struct {
    blobstore_t blobs;
    uploads_t uploads;
    metastore_writer_t *writer; /* the one writer of the database */
    scrub_t *scrub;             /* the background scrub (storage.scrub_rate), or NULL when it is off */
    gc_thread_t *gc;            /* the background garbage collector (gc.interval), or NULL when it is off */
    policy_t *policy;           /* immutable tags and retention (store/policy.h) */
    char *db_path;              /* <root>/berth.db */
    const config_t *cfg;
    struct evict_mirror *_evict; /* the collector's mirror cache eviction (store/evict.h): the mirrors' limits */
    struct {
        pthread_t thread;
        pthread_mutex_t mu;
        pthread_cond_t cond;
        int started, stop;
    } _chores;
} store_t;

/**
 * Create the storage root (and its parents) and the database file at <root>/berth.db, owner-only (it holds password
 * hashes; SQLite gives its -wal and -shm files the same mode, and as root the owner of the root folder). The path goes
 * to `path` (`len` bytes). 0, or -1 with errno.
 */
int store_db_create(const char *root, char *path, size_t len);

/**
 * Open the store of `cfg` (which must outlive it): folders, the database (migrated to the embedded schema), the
 * writer thread, the chores thread, and the scrub's when storage.scrub_rate is set. 0, or -1 (logged; nothing left open).
 */
int store_open(store_t *s, const config_t *cfg);
/** Stop the chores and the writer (after finishing queued writes), and free everything. */
void store_close(store_t *s);

/** A new read connection to the store's database with a read cache (one per event loop); NULL on failure. */
metastore_t *store_connect(store_t *s);

/**
 * Free space on the storage volume: the bytes an unprivileged writer may still use in *free_bytes. Returns 1 when
 * that is below storage.min_free (pushes are refused, pulls go on), 0 when not, -1 if it cannot be told (errno).
 */
int store_space(const store_t *s, uint64_t *free_bytes);

#endif
