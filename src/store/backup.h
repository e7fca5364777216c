/*
 * Backups of a storage root, taken while `berth serve` runs and clients push, and restores into an empty root.
 *
 * An archive is a tar stream (POSIX ustar, pax headers where needed: util/tar.h) compressed with zstd, its members in
 * this order:
 *   berth-backup.json        what it is: {"format": "berth-backup", "version": 1, "id", "previous" (the backup an
 *                            incremental one builds on, or null), "berth", "created", "schema", counts}
 *   berth-blobs.txt          every blob the snapshot's database names ("<digest> <size>" lines, sorted): what an
 *                            incremental backup built on this one (--since) need not hold; read without decompressing
 *                            any blob data
 *   berth.db                 the database, copied by SQLite's online backup API at one instant
 *   keys/token.pem           the token signing key, when the root has one
 *   blobs/<algo>/<xx>/<hex>  the blob files: all the snapshot names (a full backup), or those the previous backup's
 *                            berth-blobs.txt does not list (an incremental one)
 * Plain `tar --zstd -xf` unpacks it into a storage root as berth lays one out.
 *
 * Consistency: the snapshot is one read transaction; its blobs cannot go from under the backup because it holds the
 * blob files (store/blobstore.h: blobstore_hold) from before the snapshot until its last blob is read; the garbage
 * collector and fsck --repair leave files to remove for later meanwhile.
 */
#ifndef BERTH_STORE_BACKUP_H
#define BERTH_STORE_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#define BACKUP_FORMAT_VERSION 1

/** Where a backup or restore is: bytes of `total` done (a backup: members' data; a restore: archive bytes read). */
typedef struct {
    uint64_t done, total; /* total 0: unknown (a restore from a pipe) */
    uint64_t out;         /* compressed bytes written (a backup) */
    int final;            /* the last report */
} backup_progress_t;

typedef void (*backup_progress_fn)(void *ctx, const backup_progress_t *p);

typedef struct {
    const char *since;           /* the previous backup's archive: an incremental backup (NULL: a full one) */
    int threads;                 /* zstd workers (0: one per CPU) */
    int level;                   /* zstd level (0: 3) */
    backup_progress_fn progress; /* every quarter second or so, and once at the end (NULL: none) */
    void *ctx;
} backup_options_t;

typedef struct {
    char id[32], previous[32];    /* this backup's id; the one it builds on ("" for a full backup) */
    uint64_t blobs, blob_bytes;   /* what the snapshot names */
    uint64_t held, held_bytes;    /* what the archive holds */
    uint64_t db_bytes, out_bytes; /* the database's size; the archive's */
    double snapshot_s, seconds;   /* the database copy's duration; the whole backup's */
} backup_stats_t;

/**
 * Write a backup of storage root `root` to `fd` (a file or a pipe; not closed, not fsynced). 0, or -1 with a message
 * in `err` (`errlen` bytes) for the user.
 */
int backup_write(const char *root, int fd, const backup_options_t *o, backup_stats_t *st, char *err, size_t errlen);

typedef struct {
    backup_progress_fn progress;
    void *ctx;
} restore_options_t;

typedef struct {
    char id[32];                          /* the last archive's backup id */
    uint64_t archives, blobs, blob_bytes; /* blobs written (verified) */
    double seconds;
} restore_stats_t;

/**
 * Restore the archives `files` (a full backup, then the incremental ones built on it, in order; "-" is standard
 * input) into storage root `root`, which must be empty or missing. Every blob's digest is checked as it is written,
 * each file and folder fsynced, the database (the last archive's) put in place last; on any failure what was written
 * is removed again and `root` left empty (or removed, when the restore made it); a root that was not empty is never
 * touched. 0, or -1 with a message in `err`.
 */
int restore_run(const char *root, char *const *files, int nfiles, const restore_options_t *o, restore_stats_t *st,
                char *err, size_t errlen);

#endif
