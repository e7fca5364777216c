/*
 * The background scrub (storage.scrub_rate): a thread that re-hashes every blob file the database records, at most
 * `rate` bytes per second, one pass after another, and reports bit rot (a file missing, of another size, or whose
 * bytes no longer match its digest) in the log and in its counters (/metrics). It reads as fsck --verify does
 * (store/fsck.h: past the page cache where it can), on a read connection of its own, a page of rows at a time.
 */
#ifndef BERTH_STORE_SCRUB_H
#define BERTH_STORE_SCRUB_H

#include <stdint.h>

typedef struct scrub scrub_t;

/** What the scrub has done since the server started. */
typedef struct {
    uint64_t blobs_checked; /* blob files read to the end (or found missing) */
    uint64_t bytes_checked; /* bytes hashed */
    uint64_t passes;        /* complete passes over every blob */
    uint64_t corrupt;       /* blobs found damaged by the last complete pass, or so far by the current one if more */
} scrub_stats_t;

/**
 * Start scrubbing the blobs of storage root `root` (database `db_path`) at `rate` bytes per second (> 0). NULL if
 * the thread cannot start (logged). Stop with scrub_stop.
 */
scrub_t *scrub_start(const char *root, const char *db_path, uint64_t rate);
/** Stop the thread (it stops within one read) and free everything. NULL is ignored. */
void scrub_stop(scrub_t *s);
/** The counters so far (all zero for NULL, a scrub that is off). Any thread. */
void scrub_stats(const scrub_t *s, scrub_stats_t *out);

#endif
