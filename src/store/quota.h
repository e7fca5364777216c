/*
 * Quotas per namespace (docs/lifecycle.md): the bytes of the distinct blobs a namespace's repositories link (each blob
 * once per namespace, however many of its repositories link it), kept by the database's triggers for namespaces with a
 * quota (schema/005_quota.sql), checked when an upload finishes, a blob is mounted and a manifest is put. A
 * repository's namespace is the first component of its name. Usage of any namespace or repository, with or without a
 * quota, for `berth du`. Manifests (in the database) are not counted. Mirrored repositories are not checked.
 */
#ifndef BERTH_STORE_QUOTA_H
#define BERTH_STORE_QUOTA_H

#include <stddef.h>
#include <stdint.h>
#include "oci/digest.h"
#include "oci/name.h"
#include "store/metastore.h"

/** A namespace's quota and what it uses. */
typedef struct {
    char ns[NAME_MAX_LEN + 1];
    uint64_t bytes; /* the limit */
    uint64_t used;
} quota_t;

/** `bytes` for people: "512 B", "1.5 KiB", "49.9 GiB" (into `buf` of `len` bytes); returns buf. */
const char *quota_format_size(uint64_t bytes, char *buf, size_t len);

/** The namespace of repository `repo` (its first component) into `ns` (NAME_MAX_LEN + 1 bytes). */
void quota_ns_of(const char *repo, char *ns);

/**
 * Inside a write: may blob `d` of `size` bytes be linked to `repo`? 0 (no quota, the namespace already has the blob,
 * or it fits), BERTH_EQUOTA (with the namespace's quota in *q), BERTH_ERROR.
 */
int quota_check_blob(metastore_t *m, const char *repo, const digest_t *d, uint64_t size, quota_t *q);
/** Inside a write: may a manifest be put in `repo`? 0, or BERTH_EQUOTA when its namespace is over quota (*q). */
int quota_check_manifest(metastore_t *m, const char *repo, quota_t *q);
/**
 * Inside a write, after quota_check_blob refused blob `d` whose file is stored: record it unlinked, for the next
 * garbage collection to remove (unless something links it by then). 0 or BERTH_ERROR.
 */
int quota_refused_blob(metastore_t *m, const digest_t *d, uint64_t size);

/**
 * Set namespace `ns`'s quota to `bytes` (0: remove it), counting what it uses now. Inside the caller's write
 * transaction. 0 or BERTH_ERROR.
 */
int quota_set(metastore_t *m, const char *ns, uint64_t bytes);
/** The quota of `ns`: 1 (*q filled), 0 if it has none, BERTH_ERROR. */
int quota_get(metastore_t *m, const char *ns, quota_t *q);
/** Every quota, by namespace: the count or BERTH_ERROR. */
int quota_list(metastore_t *m, void (*cb)(void *ctx, const quota_t *q), void *ctx);

/** What a namespace or repository uses: `unique` bytes of blobs only it links, `shared` bytes of blobs others link too. */
typedef struct {
    const char *name; /* valid during the callback */
    uint64_t unique, shared, blobs;
} quota_usage_t;
/**
 * Usage of every namespace (`ns` NULL) or of namespace `ns`, by name; `shared`: blobs another namespace links too.
 * Calls `cb` per row: the count or BERTH_ERROR. Reads every link: for the CLI.
 */
int quota_usage_namespaces(metastore_t *m, const char *ns, void (*cb)(void *ctx, const quota_usage_t *u), void *ctx);
/** Usage of every repository of namespace `ns` (or of repository `repo` in it alone); `shared`: another repository
 * links it too. As quota_usage_namespaces. */
int quota_usage_repositories(metastore_t *m, const char *ns, const char *repo,
                             void (*cb)(void *ctx, const quota_usage_t *u), void *ctx);

/** The store's totals (schema/008_totals.sql). */
typedef struct {
    uint64_t blobs, bytes; /* the blobs the database records and their bytes (a trigger and gc.c keep them) */
    uint64_t gc_runs, gc_freed_bytes; /* garbage collections run to the end, the server's and berth gc's, and what
                                         they freed */
} quota_totals_t;

/** Read the totals: one row, no count over the blobs. 0, or BERTH_ERROR. */
int quota_totals(metastore_t *m, quota_totals_t *out);

#endif
