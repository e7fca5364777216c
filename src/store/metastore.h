/*
 * Metadata in SQLite (WAL): repositories, blobs and their repository links, manifests with what they
 * reference, tags. The schema is schema/NNN_*.sql, embedded in the binary and applied in order at start-up.
 *
 * Connections are single-threaded: each event loop has its own read connection, and all writes go through one
 * writer thread (metastore_writer_t) that batches whatever is queued into one transaction (group commit) with
 * synchronous=FULL, so a caller that got its answer knows the write is durable. The connection, its statements,
 * migrations, the writer and the read cache are the database layer's (store/db.h, private to store/).
 */
#ifndef BERTH_STORE_METASTORE_H
#define BERTH_STORE_METASTORE_H

#include <stddef.h>
#include <stdint.h>
#include "oci/digest.h"
#include "oci/manifest.h"

typedef struct metastore metastore_t;

/** Whether repositories created from now on start public (set once at start-up from the mode). */
extern int metastore_new_repos_public;

/** Open the database at `path` (creating it); with `migrate`, apply pending migrations. NULL on failure (logged). */
metastore_t *metastore_open(const char *path, int migrate);
void metastore_close(metastore_t *m);
/** The schema version the database is at (0 if none). */
int metastore_schema_version(metastore_t *m);
/**
 * A transaction of the caller's own on `m` (the CLI's: BEGIN IMMEDIATE when `write`, so that it waits for the server's
 * writer instead of failing later). 0, or BERTH_ERROR with the database's message in *err (valid until the next call
 * on `m`; err may be NULL).
 */
int metastore_begin(metastore_t *m, int write, const char **err);
int metastore_commit(metastore_t *m, const char **err);
void metastore_rollback(metastore_t *m);

/**
 * Give a read connection (one event loop's) a cache of manifests, blob sizes, repository origins and repository
 * facts (store/accounts.h), invalidated whenever a committed write may have changed the database (this process's
 * or another's, such as the CLI's). Reads on it then cost no query while nothing is written.
 */
void metastore_enable_cache(metastore_t *m);
/**
 * The generation of connection `m`: it moves whenever a committed write may have changed the database, this
 * process's writer's, `m`'s own or another process's (the CLI's). Costs no query in WAL mode, berth's (store/db.h).
 * For caches above the store: stamp what was read with the generation read before it, and trust it while that has
 * not moved.
 */
uint64_t metastore_generation(metastore_t *m);

/** A trivial query, for readiness checks: 0 if the database answers. */
int metastore_ping(metastore_t *m);

/* ---- reads (any connection) ---- */

/** Size of blob `d` if repository `repo` may serve it: 0, BERTH_ENOTFOUND or BERTH_ERROR. */
int metastore_blob_get(metastore_t *m, const char *repo, const digest_t *d, uint64_t *size);

typedef struct {
    digest_t digest;
    char *media_type; /* malloc'd */
    void *content;    /* malloc'd */
    size_t size;
    int64_t checked_at; /* by tag: when a mirror last confirmed the tag upstream (0: pushed here) */
    int64_t pulled_at;  /* a mirrored manifest: when it was last pulled, to a granularity (0: pushed here) */
    int lent;           /* media_type and content belong to the connection's cache (see below) */
} metastore_manifest_t;

/**
 * A manifest of `repo` by tag (when `tag` is non-NULL) or by digest. 0 (fill *out; free with
 * metastore_manifest_dispose), BERTH_ENOTFOUND or BERTH_ERROR. On a connection with a cache, the strings may be
 * lent by the cache: use them before the next call on the connection.
 */
int metastore_manifest_get(metastore_t *m, const char *repo, const char *tag, const digest_t *d,
                           metastore_manifest_t *out);
void metastore_manifest_dispose(metastore_manifest_t *mf);

/**
 * The manifest tag `tag` of `repo` points at: its digest in *d, media type into `media_type` (`mtlen` bytes; may be
 * NULL) and size in *size (may be NULL). 0, BERTH_ENOTFOUND or BERTH_ERROR. No cache: for the writer (a tag move is
 * audited) and the webhooks (a delete by tag names what the tag pointed at).
 */
int metastore_tag_target(metastore_t *m, const char *repo, const char *tag, digest_t *d, char *media_type, size_t mtlen,
                         int64_t *size);

/**
 * The repositories that hold blob `d`, in byte order, at most `limit`, with its size in *size: the count (0 if
 * none), or BERTH_ERROR. For mounting a blob the caller may read without naming where it comes from.
 */
int metastore_blob_repos(metastore_t *m, const digest_t *d, long limit, uint64_t *size,
                         void (*cb)(void *ctx, const char *repo), void *ctx);

/** One manifest whose subject is a given digest. Strings are valid during the callback only. */
typedef struct {
    const char *digest, *media_type, *artifact_type, *annotations_json; /* the last two may be NULL */
    int64_t size;
} metastore_referrer_t;
/**
 * The manifests of `repo` whose subject is `subject`, optionally only those of `artifact_type`, ordered by
 * digest. Returns the count (0 for an unknown repository or subject) or BERTH_ERROR.
 */
int metastore_referrers(metastore_t *m, const char *repo, const digest_t *subject, const char *artifact_type,
                        void (*cb)(void *ctx, const metastore_referrer_t *r), void *ctx);

typedef void (*metastore_name_cb)(void *ctx, const char *name);
/**
 * Tags of `repo` in byte order, after `last` (NULL: from the start), at most `limit` (< 0: all). Returns the
 * count, BERTH_ENOTFOUND for an unknown repository, or BERTH_ERROR.
 */
int metastore_tags_list(metastore_t *m, const char *repo, const char *last, long limit, metastore_name_cb cb,
                        void *ctx);
/** Repository names in byte order, as metastore_tags_list. */
int metastore_catalog(metastore_t *m, const char *last, long limit, metastore_name_cb cb, void *ctx);

/**
 * Where repository `repo` comes from: 0 pushed here, 1 created by a pull-through mirror, BERTH_ENOTFOUND,
 * BERTH_ERROR.
 */
int metastore_repo_origin(metastore_t *m, const char *repo);

/* ---- writes (only inside a metastore_write callback) ---- */

/**
 * Record blob `d` of `size` bytes and link it to `repo`. The caller checks in the same callback that the file is
 * (still) in the blob store (blobstore_has): garbage collection removes a file only in a transaction of its own.
 */
int metastore_blob_link(metastore_t *m, const char *repo, const digest_t *d, uint64_t size);
/** Link blob `d`, which the store holds, to `repo` (a mount): 0, or BERTH_ENOTFOUND if the store no longer has it. */
int metastore_blob_mount(metastore_t *m, const char *repo, const digest_t *d);

/** A manifest's reference that its repository cannot serve as described. */
typedef struct {
    digest_t digest;
    int64_t size;   /* as the descriptor says */
    int64_t stored; /* the stored object's size; -1 if it is missing */
} metastore_bad_ref_t;

/**
 * Store manifest `d` (parsed `mf`, raw `body`) in `repo`, and point the `ntags` tags at it. Every blob the
 * manifest references must be linked to `repo` (foreign layers excepted), every child manifest stored in it,
 * each of the size its descriptor gives: otherwise BERTH_EMISSING or BERTH_ESIZE, with the first such reference
 * in *bad. With `sparse` (storage.sparse_manifests), references that are absent are accepted; those present must still
 * have the size their descriptor gives. The subject need not exist.
 */
int metastore_manifest_put(metastore_t *m, const char *repo, const digest_t *d, const manifest_t *mf, const void *body,
                           size_t len, const char *const *tags, size_t ntags, int sparse, metastore_bad_ref_t *bad);

/*
 * A pull-through mirror records what it fetched as if it had been pushed, except that a manifest need not have
 * its blobs yet (they are fetched when asked for). The repository is created as a mirrored, public one.
 */
int metastore_mirror_blob_link(metastore_t *m, const char *repo, const digest_t *d, uint64_t size);
/** Store manifest `d` fetched from upstream, and point `tag` (unless NULL) at it, confirmed at `checked_at`. */
int metastore_mirror_manifest_put(metastore_t *m, const char *repo, const digest_t *d, const manifest_t *mf,
                                  const void *body, size_t len, const char *tag, int64_t checked_at);
/** The upstream confirmed `tag` of `repo` at `checked_at` (and the tag's manifest was pulled now): 0 or
 * BERTH_ENOTFOUND. */
int metastore_tag_checked(metastore_t *m, const char *repo, const char *tag, int64_t checked_at);
/**
 * Mirrored manifest `d` of `repo` was pulled at `pulled_at` (for mirror cache eviction, store/evict.h): 1 if that
 * moved its pulled_at forward, 0 if not (a later pull recorded, not there, or `repo` is not a mirrored one),
 * BERTH_ERROR.
 */
int metastore_manifest_pulled(metastore_t *m, const char *repo, const digest_t *d, int64_t pulled_at);

/**
 * Make repository `repo`, if a pull-through mirror created it, a hosted one (what `berth import` brings in is hosted
 * from then on: pushed to, never evicted nor revalidated upstream): 1 if it was a mirror's, 0 if not (or absent),
 * BERTH_ERROR.
 */
int metastore_repo_hosted(metastore_t *m, const char *repo);

/** Delete manifest `d` of `repo` with its tags: 0 or BERTH_ENOTFOUND. */
int metastore_manifest_delete(metastore_t *m, const char *repo, const digest_t *d);
/** Delete tag `tag` of `repo` (the manifest stays): 0 or BERTH_ENOTFOUND. */
int metastore_tag_delete(metastore_t *m, const char *repo, const char *tag);
/** Unlink blob `d` from `repo` (the file stays for the garbage collector): 0 or BERTH_ENOTFOUND. */
int metastore_blob_unlink(metastore_t *m, const char *repo, const digest_t *d);

/* ---- the writer thread ---- */

typedef struct metastore_writer metastore_writer_t;
typedef int (*metastore_write_fn)(metastore_t *m, void *arg);

/** Start the writer thread on its own connection to `path`. NULL on failure. */
metastore_writer_t *metastore_writer_start(const char *path);
/**
 * Run `fn(m, arg)` in the writer's next transaction and wait until it committed. Returns fn's result; a
 * negative result rolls back that call's changes only. BERTH_ERROR if the commit failed. Blocking: call on a
 * worker thread, never on an event loop.
 */
int metastore_write(metastore_writer_t *w, metastore_write_fn fn, void *arg);
/**
 * metastore_write, with the folder `dir` fsynced before the transaction commits: for a blob renamed into the blob store
 * (blobstore_rename), whose folder must be durable before the row that records the blob. The folders of concurrent
 * writes are fsynced together, each distinct one once, just before their batch. BERTH_ERROR (fn not run) if the fsync
 * fails.
 */
int metastore_write_synced(metastore_writer_t *w, metastore_write_fn fn, void *arg, const char *dir);
/** Finish queued writes and stop the thread. */
void metastore_writer_stop(metastore_writer_t *w);

#endif
