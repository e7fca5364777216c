/*
 * Which repository a request for a name reaches when mirrors are configured: one hosted here, or one mirrored
 * from an upstream. mirror_select (mirror/mirror.h) answers from the configuration alone; this adds what only the
 * database knows (whether the name, or the mirror's name for it, was pushed here), so that the HTTP layer only
 * turns the decision into an answer.
 */
#ifndef BERTH_MIRROR_ROUTE_H
#define BERTH_MIRROR_ROUTE_H

#include "mirror/mirror.h"
#include "oci/name.h"
#include "store/metastore.h"

typedef enum {
    MIRROR_ROUTE_HOSTED,    /* no mirror: serve the repository hosted here (under `local` when that is set) */
    MIRROR_ROUTE_MIRRORED,  /* serve it through mirror `m`: berth's name `local`, the upstream's `up` */
    MIRROR_ROUTE_DENY_PUSH, /* a push to repository `local`, which mirror `m` serves: 403 DENIED */
    MIRROR_ROUTE_NO_MIRROR, /* ?ns= names a registry no mirror here serves, and the name is a mirrored copy: 404 */
    MIRROR_ROUTE_ERROR,     /* the database failed (logged): 500; `out` holds nothing of use */
} mirror_route_kind_t;

typedef struct {
    const mirror_t *m; /* MIRRORED and DENY_PUSH; NULL otherwise */
    /* berth's name for the repository; for HOSTED, "" when it is the name asked for */
    char local[NAME_MAX_LEN + 1];
    char up[NAME_MAX_LEN + 1]; /* MIRRORED: the upstream's name for it */
} mirror_route_t;

/**
 * Route a request for repository `name` (with containerd's ?ns= value `ns`, or NULL; `push` for a write) by the
 * configured mirrors and the repositories of `db` (a read connection). Fills `out` (the caller's; nothing to
 * free). A repository pushed here is never served as a mirrored copy, nor fetched into; a name not here yet is
 * left to a push under the mirror of every name.
 */
mirror_route_kind_t mirror_route(metastore_t *db, const char *name, const char *ns, int push, mirror_route_t *out);

#endif
