/*
 * Pull-through mirrors: which upstream serves a repository name, and under which names. Pure functions of the
 * configuration (the "mirrors" list), unit-tested in tests/unit/mirror_test.c; the routing that asks the database
 * is mirror/route.c, the fetching mirror/fetch.c, the HTTP client mirror/upstream.c.
 *
 * A request names a repository either as berth stores it ("<prefix>/<upstream name>", or the upstream name for a
 * mirror of every name, prefix "") or, from containerd with ?ns=<upstream host>, as the upstream knows it. With
 * `library` (Docker Hub), one-word names get "library/" as docker adds it.
 */
#ifndef BERTH_MIRROR_MIRROR_H
#define BERTH_MIRROR_MIRROR_H

#include <stddef.h>
#include <stdint.h>
#include "config/config.h"

struct upstream;

typedef struct mirror_s {
    const config_mirror_t *cfg;
    struct upstream *up;
    /* counters (atomic): fetches from upstream, stale copies served because the upstream failed, failures */
    uint64_t fetches, stale, errors;
} mirror_t;

/** The configured mirrors, set by mirror_init. */
extern mirror_t *mirrors;
extern size_t nmirrors;

/** Set up the mirrors of `cfg` (which must outlive them); 0 or -1. */
int mirror_init(const config_t *cfg);
/** Free the mirrors and their upstream clients, once no fetch runs any more (the fetch threads stopped). */
void mirror_dispose(void);

/**
 * Which mirror serves repository `name` of a request (with containerd's ?ns= value `ns`, or NULL): the mirror,
 * with berth's name for the repository in `local` and the upstream's in `up` (both NAME_MAX_LEN + 1 bytes), or
 * NULL if no mirror serves it (an `ns` no mirror has means none: the client asks for another registry's names).
 * A mirror of every name (prefix "") is returned for any name no other mirror takes; whether the name is
 * hosted here instead is the caller's question (it needs the database).
 */
const mirror_t *mirror_select(const char *name, const char *ns, char *local, char *up);

/**
 * Whether a configured mirror creates repository `repo` under that very name on its first pull (for the access
 * decision, auth/decide.h: such a repository is as public as the ones the mirror created). Asked at decision time,
 * so it answers for the mirrors set up by mirror_init, whenever that ran.
 */
int mirror_creates(const char *repo);

#endif
