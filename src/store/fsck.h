/*
 * Checking a storage root (`berth fsck`), also while `berth serve` runs on it, and hashing blob files (for fsck
 * --verify and the background scrub, store/scrub.h).
 *
 * What is checked, and how each finding is classed:
 * - error: damage a client would see. A blob the database records whose file is missing, has another size, or (with
 *   `verify`) other bytes; a link of a repository to a blob the database does not record; a tag pointing at no
 *   manifest of its repository; a manifest of a pushed repository referencing a blob its repository does not link
 *   (or of another size than the descriptor says) or a child manifest the repository does not hold; a manifest whose
 *   stored bytes do not match its size (or, with `verify`, its digest); the database's own check failing, or rows whose parent row is gone. Repair
 *   touches none of these: each needs a decision (push the blob again, delete the manifest).
 * - orphan: what nothing references, left by an interrupted push or a crash: a blob file with no database row
 *   (with `verify`, also whether its bytes match its name), a stray file in the blob tree, a file in <root>/tmp, an upload session that expired (storage.upload_ttl) or
 *   lost its files. With `repair`, each is removed (and first the files a stopped garbage collection left to unlink:
 *   store/gc.h).
 * - pending: an orphan changed less than `grace_ms` ago (its mtime or ctime; rename() sets the ctime). A push
 *   renames its blob into blobs/ before the database records it, so a young blob file with no row may be about
 *   to be linked; it is listed and left alone.
 * Subjects of mirrored repositories are not held to having their blobs (they are fetched when asked for), and a
 * manifest's subject need not exist (the spec lets referrers come first).
 *
 * The checks read the database in short read transactions (WAL: they never block the server's writer) and walk
 * the files; a removal takes the database's write lock only for the moment it rechecks that no row names the file.
 */
#ifndef BERTH_STORE_FSCK_H
#define BERTH_STORE_FSCK_H

#include <stdint.h>
#include "oci/digest.h"

typedef enum { FSCK_ERROR, FSCK_ORPHAN, FSCK_PENDING } fsck_class_t;

typedef struct {
    fsck_class_t cls;
    const char *kind;    /* "missing", "size", "digest", "link", "tag", "reference", "manifest", "database" (errors);
                            "blob", "stray", "temp", "upload" (orphans) */
    const char *subject; /* a digest, REPO:TAG, REPO@DIGEST, or a path relative to the root */
    const char *detail;
    int removed; /* repair removed it */
} fsck_finding_t;

typedef struct {
    int verify;             /* hash every blob file and every manifest */
    int repair;             /* remove the orphans older than grace_ms */
    uint64_t grace_ms;      /* orphans changed more recently are pending (left alone) */
    uint64_t upload_ttl_ms; /* upload sessions idle longer have expired (the server's storage.upload_ttl) */
    int sparse;             /* storage.sparse_manifests: a manifest's absent blob or child is no finding */
    /* called once per finding; the strings are valid during the call only */
    void (*report)(void *ctx, const fsck_finding_t *f);
    void *ctx;
} fsck_options_t;

typedef struct {
    uint64_t blobs, blob_bytes, bytes_hashed, manifests, tags, uploads; /* checked; uploads: sessions in progress */
    uint64_t errors, orphans, removed, pending;                         /* findings */
} fsck_stats_t;

/**
 * Check the storage root `root` (its database must exist) as `o` says, reporting each finding. Returns 0 when
 * every check ran (the findings are in *st), BERTH_ERROR if one could not (logged), e.g. no database.
 */
int fsck_run(const char *root, const fsck_options_t *o, fsck_stats_t *st);

/**
 * Pace callback of fsck_hash_file, called after each read of `n` bytes: return non-zero to stop (the hash then
 * fails with BERTH_EBUSY).
 */
typedef int (*fsck_pace_fn)(void *ctx, uint64_t n);

/**
 * Hash the file at `path` with `algo`, reading past the page cache (O_DIRECT) where the file system allows, so that
 * what is checked is what the disk holds, and so that a scan does not evict what the server reads. The digest goes
 * to *out, the bytes read to *size. `pace` (may be NULL) is called after every read of at most `chunk` bytes (a
 * multiple of 4096, at least 4096). 0, BERTH_ENOTFOUND (no such file), BERTH_EBUSY (pace stopped it), BERTH_ERROR
 * (errno set).
 */
int fsck_hash_file(const char *path, digest_algo_t algo, size_t chunk, fsck_pace_fn pace, void *ctx, digest_t *out,
                   uint64_t *size);

#endif
