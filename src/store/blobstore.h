/*
 * Content-addressed blob files:
 *   <root>/blobs/<algo>/<first two hex>/<hex>   one immutable file per blob
 * A blob file appears only through rename() after its digest was verified and its data fsynced, and the
 * directory is fsynced before the caller records the blob in the database. Renaming the same digest twice at
 * once is harmless: both files hold the same bytes.
 */
#ifndef BERTH_STORE_BLOBSTORE_H
#define BERTH_STORE_BLOBSTORE_H

#include <stddef.h>
#include <stdint.h>
#include "oci/digest.h"

#define BLOBSTORE_PATH_MAX 4096

typedef struct {
    char *root;                     /* the storage root */
    unsigned char _durable[2][256]; /* by algorithm and shard: its folder's entry is known durable (fsynced here) */
} blobstore_t;

/** Create the folders under `root` (blobs/sha256, blobs/sha512, uploads, tmp). 0 or -1 (logged). */
int blobstore_init(blobstore_t *bs, const char *root);
void blobstore_dispose(blobstore_t *bs);

/** Write the path of a digest's blob file into `buf`. */
void blobstore_path(const blobstore_t *bs, const digest_t *d, char *buf, size_t len);

/**
 * Make the verified, fsynced file at `src` the blob `d`: rename it into place and fsync the shard directory; the
 * first time this process puts a blob in a shard, also make the shard and fsync the algorithm directory (whether
 * the shard was there or not). Thread-safe. 0 or -1 (logged).
 */
int blobstore_commit(blobstore_t *bs, const char *src, const digest_t *d);
/**
 * blobstore_commit without the fsync of the shard folder, whose path goes to `dir` (BLOBSTORE_PATH_MAX bytes): the
 * caller makes it durable before anything records the blob (metastore_write_synced). 0 or -1 (logged).
 */
int blobstore_rename(blobstore_t *bs, const char *src, const digest_t *d, char *dir);

/** How blobstore_adopt put a file into the store. */
typedef enum { BLOBSTORE_LINKED = 0, BLOBSTORE_REFLINKED = 1, BLOBSTORE_COPIED = 2 } blobstore_how_t;

/** A file blobstore_adopt verified, waiting in <root>/tmp for blobstore_adopt_finish (or _cancel). */
typedef struct {
    int fd;
    digest_t digest;
    char path[BLOBSTORE_PATH_MAX];
} blobstore_adopted_t;

/**
 * Bring the regular file `name` in folder `dirfd` (another store's blob, e.g. docker-registry's `data`; a symbolic link
 * is refused) in as blob `d`: hard-linked to <root>/tmp/<tmpname> when `may_link` and both are on one file system, else
 * cloned (FICLONE: a reflink on XFS or btrfs), else copied; its content is hashed from that file (the one berth will
 * serve, not the source's name, which could change meanwhile). Thread-safe.
 * Returns 0 with the size in *size, the method in *how, and the verified file in *out, which the caller finishes or
 * cancels; BERTH_EDIGEST (nothing left) when the content hashes to something else, given in *got; BERTH_ERROR with
 * errno (nothing left; ENOENT: no such file).
 */
int blobstore_adopt(blobstore_t *bs, int dirfd, const char *name, const digest_t *d, int may_link, const char *tmpname,
                    blobstore_how_t *how, uint64_t *size, digest_t *got, blobstore_adopted_t *out);
/**
 * fsync an adopted file and rename it into place without the fsync of its shard folder, whose path goes to `shard`
 * (BLOBSTORE_PATH_MAX bytes): the caller makes it durable before anything records the blob, as for blobstore_rename.
 * fsyncing many adopted files one after the other, after they were all written, costs about one journal commit
 * rather than one each. 0, or -1 (logged; the temporary file is removed).
 */
int blobstore_adopt_finish(blobstore_t *bs, blobstore_adopted_t *a, char *shard);
/** Remove an adopted file not finished. */
void blobstore_adopt_cancel(blobstore_adopted_t *a);

/** Open a blob for reading; returns the fd (size in *size) or -1 (errno set; ENOENT if absent). */
int blobstore_open(const blobstore_t *bs, const digest_t *d, uint64_t *size);

/** 1 if the file of blob `d` is in the store, 0 if not (errno says why). */
int blobstore_has(const blobstore_t *bs, const digest_t *d);

/**
 * Create the folder `path` and its missing parents (mode 0755), each made durable: the parent of every folder
 * created is fsynced (a folder is not durable until its parent is; a blob file fsynced into a folder whose own entry
 * never was can vanish at a power cut). 0, or -1 with errno.
 */
int mkdir_p(const char *path);

/** fsync a directory by path. */
int fsync_dir(const char *path);

/*
 * The hold on blob files (<root>/blobs.lock, an flock): a backup holds it shared from before its database snapshot
 * until it has read its last blob file, so that no file the snapshot names disappears meanwhile; whatever removes blob
 * files (the garbage collector, fsck --repair) takes it exclusively, without waiting, and when it cannot, leaves its
 * files for a later run. Removals stay correct without it: it only keeps the files a backup is reading.
 */
#define BLOBSTORE_LOCK "blobs.lock"

/** Hold the blob files of `root` (shared; waits for a removal in progress). The lock's fd, or -1 (errno). */
int blobstore_hold(const char *root);
/**
 * The right to remove blob files of `root` now (exclusive, without waiting): the lock's fd, or -1 when a backup holds
 * them (errno EWOULDBLOCK) or the lock file cannot be opened (logged).
 */
int blobstore_removal_begin(const char *root);
/** Give back a lock from blobstore_hold or blobstore_removal_begin (-1 is ignored). */
void blobstore_unlock(int fd);

#endif
