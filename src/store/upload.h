/*
 * Upload sessions: a blob in the making, one file each:
 *   <root>/uploads/<uuid>.<key>   the bytes received so far; <key> ties the session to its repository (the first 32
 *                                 hex digits of the SHA-256 of the repository's name)
 * The file becomes the blob: upload_finish renames it into the blob store, so a session costs one file made and
 * none removed (a single-request upload, POST ?digest= or POST then one PUT, is one file from the start). Sessions
 * live on disk, so they survive a restart; the announced algorithm and the running hash live in memory, and a
 * session reloaded after a restart (or one whose announced algorithm differs from the final digest's) is re-hashed
 * from its file when it finishes. One request at a time may use a session (upload_acquire marks it busy); only then
 * is its file open, so that sessions left waiting hold no file descriptor.
 *
 * Sessions that an older berth left as folders (<root>/uploads/<uuid>/data and info, "repository\nalgorithm\n...")
 * are still resumed, expired and checked.
 */
#ifndef BERTH_STORE_UPLOAD_H
#define BERTH_STORE_UPLOAD_H

#include <pthread.h>
#include <stdint.h>
#include "oci/digest.h"
#include "store/blobstore.h"

#define UPLOAD_UUID_LEN 36
#define UPLOAD_KEY_LEN 32

typedef struct upload {
    char uuid[UPLOAD_UUID_LEN + 1];
    char *repo;
    char *path;              /* its data file */
    int fd;                  /* the data file, open read-write while busy; -1 otherwise */
    uint64_t offset;         /* bytes received; written by the session's holder only, atomically (upload_peek) */
    digest_algo_t algo;      /* the algorithm the client announced (sha256 unless told) */
    digest_hasher_t *hasher; /* hash of [0, offset), or NULL when it must be recomputed from the file */
    int busy;
    int _folder; /* an older berth's session: uploads/<uuid>/{data,info} */
    struct upload *_next;
} upload_t;

typedef struct {
    char *dir; /* <root>/uploads */
    pthread_mutex_t _mu;
    upload_t *_buckets[256];
} uploads_t;

int uploads_init(uploads_t *u, const char *root);
void uploads_dispose(uploads_t *u);

/** 1 if `s` is a well-formed upload id (lowercase UUID, 36 characters). */
int upload_uuid_valid(const char *s, size_t len);

/**
 * 1 if `name` (NUL-terminated) is the name of a session's file, "<uuid>.<key>"; its first UPLOAD_UUID_LEN characters
 * are the session's id.
 */
int upload_file_name_valid(const char *name);

/** Start a session for `repo`; writes its id to `uuid` (37 bytes). 0 or -1. The session is not busy. */
int upload_create(uploads_t *u, const char *repo, digest_algo_t algo, char *uuid);

/**
 * Find session `uuid` of repository `repo` (loading it from disk after a restart), open its data file and mark it
 * busy. Returns 0 with *out set, BERTH_ENOTFOUND (unknown, or another repository's), BERTH_EBUSY, or BERTH_ERROR
 * (errno says why: out of file descriptors, for one).
 */
int upload_acquire(uploads_t *u, const char *uuid, const char *repo, upload_t **out);
/** Give a busy session back (its data file is closed). */
void upload_release(uploads_t *u, upload_t *up);

/** Append `len` bytes at the session's offset, hashing them. 0 or -1 (errno; the offset is unchanged). */
int upload_append(upload_t *up, const void *data, size_t len);

/**
 * Start writing `len` bytes at `offset` of the data to disk without waiting (sync_file_range), so that dirty
 * pages do not pile up and the fsync in upload_finish has little left to do. A hint: errors are ignored.
 */
void upload_writeback(upload_t *up, uint64_t offset, uint64_t len);

/** Cut the data back to `offset` bytes (after a failed or interrupted chunk); the hash is recomputed later. */
int upload_truncate(upload_t *up, uint64_t offset);

/** Seconds spent in each step of upload_finish (for the debug log). */
typedef struct {
    double hash, fsync, commit;
} upload_phases_t;

/**
 * Finish a busy session: fsync, check the data against `expect` (re-hashing the file when needed), move it
 * into the blob store. On success the session is gone and *size is the blob's size. On BERTH_EDIGEST the session
 * is gone too and nothing was stored. `phases` (may be NULL) receives the time of each step. Blocking: call on a
 * worker thread.
 */
int upload_finish(uploads_t *u, upload_t *up, const digest_t *expect, blobstore_t *bs, uint64_t *size,
                  upload_phases_t *phases);
/**
 * upload_finish, except that the blob's shard folder is not fsynced here: its path goes to `dir` (BLOBSTORE_PATH_MAX
 * bytes), and the blob must not be recorded before that folder is durable (metastore_write_synced does both).
 */
int upload_finish_unsynced(uploads_t *u, upload_t *up, const digest_t *expect, blobstore_t *bs, uint64_t *size,
                           char *dir, upload_phases_t *phases);

/** Remove a busy session and its files. */
void upload_cancel(uploads_t *u, upload_t *up);

/**
 * Remove sessions whose data was last written more than `ttl_ms` ago and that no request is using (also the file of
 * a single-request upload that a crash interrupted).
 * Returns how many were removed. Blocking (walks the folder): call off the event loop.
 */
int uploads_expire(uploads_t *u, uint64_t ttl_ms);

/** The offset of session `uuid` of `repo` without acquiring it: 0, BERTH_ENOTFOUND. */
int upload_peek(uploads_t *u, const char *uuid, const char *repo, uint64_t *offset);
#endif
