#include <string.h>
#include "mirror/route.h"
#include "util/status.h"

static mirror_route_kind_t hosted(mirror_route_t *out)
{
    out->m = NULL;
    out->local[0] = out->up[0] = '\0';
    return MIRROR_ROUTE_HOSTED;
}

mirror_route_kind_t mirror_route(metastore_t *db, const char *name, const char *ns, int push, mirror_route_t *out)
{
    out->m = NULL;
    if (nmirrors == 0)
        return hosted(out);
    const mirror_t *m = mirror_select(name, ns, out->local, out->up);
    if (m == NULL) {
        /* ?ns= names a registry no mirror here serves: a repository hosted here may answer, never a copy mirrored
         * from another upstream (docker.io's library/x is not quay.io's) */
        if (ns != NULL && metastore_repo_origin(db, name) == 1) {
            hosted(out);
            return MIRROR_ROUTE_NO_MIRROR;
        }
        return hosted(out);
    }
    int origin = 0, asked = 0; /* where `name` comes from, once asked */
    if (*m->cfg->prefix == '\0') {
        asked = 1;
        /* a mirror of every name not hosted here: is this one hosted here, or about to be by this push? */
        origin = metastore_repo_origin(db, name);
        if (origin == 0 || (origin == BERTH_ENOTFOUND && push && metastore_repo_origin(db, out->local) != 1))
            return hosted(out);
        if (origin == BERTH_ERROR)
            return MIRROR_ROUTE_ERROR;
    }
    if (push) {
        out->m = m;
        return MIRROR_ROUTE_DENY_PUSH;
    }
    /* the mirror's name for it may be a repository pushed here ("foo" is library/foo): serve that one, never fetch
     * into it (a revalidation would move its tags to the upstream's manifests, or delete them); under the
     * catch-all the name is often the same, and already asked about */
    if (!asked || strcmp(out->local, name) != 0)
        origin = metastore_repo_origin(db, out->local);
    if (origin == 0) {
        out->up[0] = '\0';
        return MIRROR_ROUTE_HOSTED;
    }
    if (origin == BERTH_ERROR)
        return MIRROR_ROUTE_ERROR;
    out->m = m;
    return MIRROR_ROUTE_MIRRORED;
}
