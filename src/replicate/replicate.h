/*
 * Replication: the rules of the configuration's `replication:` list copy images between berth and another registry
 * (any that speaks the distribution API). A push rule sends the tags of local repositories matching its patterns
 * to the remote; a pull rule brings the remote's into berth's store. For every tag: the manifest (or index, with its
 * children, recursively), its blobs and, for push rules, the manifests that name it as their subject (referrers).
 * What the destination has already is skipped (a tag pointing at the same digest: one HEAD; a blob: one HEAD), so a
 * second run copies nothing and an interrupted one, run again, sends only what is missing. Manifests go byte for
 * byte with their media type: digests are preserved. Deletes are not replicated.
 *
 * The remote is reached with the pull-through mirror's client (mirror/upstream.h: libcurl, the token dance, one
 * connection per thread kept open); what a pull brings is verified and stored as the mirror stores what it fetches
 * (digest checked while it arrives, fsynced, renamed into the blob store, then recorded), but as a hosted
 * repository's content. Every name, tag and digest the remote sends is checked against the grammar (oci/) before
 * it touches a path or a query. Blocking: run on a thread of its own (the CLI's, or the server's replication
 * thread, replicate/service.h).
 */
#ifndef BERTH_REPLICATE_REPLICATE_H
#define BERTH_REPLICATE_REPLICATE_H

#include <stddef.h>
#include <stdint.h>
#include "config/config.h"
#include "store/blobstore.h"
#include "store/metastore.h"

typedef struct replicate replicate_t;

/** What a run reads and writes with; every pointer is the caller's. */
typedef struct {
    metastore_t *db;            /* a read connection of the calling thread (no read cache: a push reads manifests) */
    blobstore_t *blobs;         /* the blob files */
    const char *storage_root;   /* a blob being pulled is written under <storage_root>/tmp first */
    uint64_t manifest_max_size; /* storage.manifest_max_size: a larger manifest from the remote is refused */
    uint64_t blob_max_size;     /* http.max_body_size: a larger blob from the remote is refused */
    /* Run fn(m, arg) in a write transaction and return its result (negative: rolled back): the server's writer
     * thread, or the CLI's own transaction. */
    int (*write)(void *ctx, metastore_write_fn fn, void *arg);
    void *write_ctx;
    const int *stop; /* when *stop becomes non-zero (atomically), the run stops as soon as it can; may be NULL */
    /* One line per image copied (or, in a dry run, that would be) and per failure; may be NULL. */
    void (*report)(void *ctx, const char *line);
    void *report_ctx;
} replicate_env_t;

/** What a run did (added to, so that runs of several rules may share one). */
typedef struct {
    uint64_t images;    /* tags copied (their manifests put at the destination) */
    uint64_t manifests; /* manifests put, children and referrers included */
    uint64_t blobs;     /* blobs sent or fetched */
    uint64_t bytes;     /* their bytes */
    uint64_t mounted;   /* blobs the destination took by a cross-repository mount (or berth linked from its store) */
    uint64_t present;   /* blobs the destination had already */
    uint64_t uptodate;  /* tags the destination had already, pointing at the same digest */
    uint64_t errors;    /* images that could not be copied */
    char first_error[320];
} replicate_stats_t;

/**
 * The rules of `cfg` (which must outlive the result), each with its client of the remote; loads libcurl and reads
 * the password files. NULL with a malloc'd reason in *err (the caller frees it) if it cannot.
 */
replicate_t *replicate_new(const config_t *cfg, char **err);
void replicate_free(replicate_t *r);

/** The number of rules, and the index of the rule named `name` (-1 if none). */
size_t replicate_count(const replicate_t *r);
long replicate_find(const replicate_t *r, const char *name);
const config_replication_t *replicate_rule(const replicate_t *r, size_t i);

/** 1 if push rule `i` covers local repository `repo` (its patterns and local prefix), else 0. */
int replicate_covers(const replicate_t *r, size_t i, const char *repo);

/**
 * Run rule `i` once: every repository and tag it covers (with `only_repo`, a push rule's run for that local
 * repository alone). With `dry_run`, only the destination is asked (HEAD, GET): what would be copied is counted
 * and reported, nothing is sent or stored. Returns 0 when every image was copied or up to date, -1 when some
 * failed (st->errors, st->first_error) or the rule could not run at all (the remote refused the credentials, did
 * not answer).
 */
int replicate_run(replicate_t *r, size_t i, const replicate_env_t *env, const char *only_repo, int dry_run,
                  replicate_stats_t *st);

/**
 * Map a name between the two sides of rule `rule`: with `to_remote`, a local name starting with local_prefix to
 * the remote's (remote_prefix instead), else the other way. 0 with the name in `out` (NAME_MAX_LEN + 1 bytes), -1
 * if the name is not under the prefix or the result is not a valid name.
 */
int replicate_map_name(const config_replication_t *rule, const char *name, int to_remote, char *out);

#endif
