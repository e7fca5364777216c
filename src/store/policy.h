/*
 * The lifecycle rules of the configuration (docs/lifecycle.md): immutable tags, which a push never moves and only an
 * administrator deletes, and retention, which removes the tags a rule does not keep. Rules name repositories by
 * pattern (a name, a name followed by "/" and "*", or "*") and tags by PCRE2 pattern; the first retention rule whose
 * pattern covers a repository is the one applied to it. Mirrored repositories are left to the mirrors' eviction.
 */
#ifndef BERTH_STORE_POLICY_H
#define BERTH_STORE_POLICY_H

#include <stdint.h>
#include "config/config.h"
#include "store/metastore.h"

typedef struct policy policy_t;

/** The rules of `cfg` (validated by config_load), compiled; NULL on failure (logged). Free with policy_free. */
policy_t *policy_new(const config_t *cfg);
void policy_free(policy_t *p);
/** Whether `p` has retention rules (NULL: none). */
int policy_has_retention(const policy_t *p);

/** 1 if tag `tag` of repository `repo` is immutable under `p` (NULL: no tag is). Any thread. */
int policy_tag_immutable(const policy_t *p, const char *repo, const char *tag);

/**
 * Inside a write (metastore_write or the caller's transaction): may tags `tags` of `repo` point at manifest `d`?
 * 0, or BERTH_EDENIED with the first immutable tag that points elsewhere in *denied (one of `tags`).
 */
int policy_check_push(const policy_t *p, metastore_t *m, const char *repo, const digest_t *d, const char *const *tags,
                      size_t ntags, const char **denied);
/**
 * Inside a write: may a caller who is (`admin`) or is not an administrator delete tag `tag` of `repo` (NULL: manifest
 * `d` with all its tags)? 0, or BERTH_EDENIED with an immutable tag it would remove in `denied` (a buffer of
 * TAG_MAX + 1 bytes).
 */
int policy_check_delete(const policy_t *p, metastore_t *m, const char *repo, const char *tag, const digest_t *d,
                        int admin, char *denied);

/** A tag retention removes (or would, in a dry run). Strings are valid during the callback only. */
typedef struct {
    const char *repo, *tag, *digest;
    int64_t pushed; /* when the tag was last moved to its manifest, Unix seconds */
    int rule;       /* index of the rule in the configuration's list */
} retention_item_t;

typedef struct {
    int dry_run; /* find and report, remove nothing */
    void (*report)(void *ctx, const retention_item_t *it);
    void *ctx;
    const int *stop; /* as gc_options_t's */
} retention_options_t;

typedef struct {
    uint64_t repositories; /* hosted repositories a rule covered */
    uint64_t examined;     /* tags judged */
    uint64_t removed;      /* tags removed */
} retention_stats_t;

/**
 * Apply the retention rules to every hosted repository of `db` (a connection of the caller's, no transaction open),
 * one write transaction per repository; immutable tags are always kept. The manifests the removed tags leave untagged
 * go by garbage collection, after gc.untagged_grace. Adds to *st. 0 or BERTH_ERROR (logged).
 */
int retention_run(const policy_t *p, metastore_t *db, const retention_options_t *o, retention_stats_t *st);

/** The index of the retention rule applied to repository `repo`, or -1 if none covers it. */
int policy_retention_rule(const policy_t *p, const char *repo);

/** The repository pattern `pattern` covers `repo`. */
int policy_pattern_covers(const char *pattern, const char *repo);

#endif
