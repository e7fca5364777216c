#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mirror/mirror.h"
#include "mirror/upstream.h"
#include "oci/name.h"

mirror_t *mirrors;
size_t nmirrors;

int mirror_init(const config_t *cfg)
{
    if (cfg->nmirrors == 0)
        return 0;
    if (upstream_global_init() != 0)
        return -1;
    if ((mirrors = calloc(cfg->nmirrors, sizeof(*mirrors))) == NULL)
        return -1;
    for (size_t i = 0; i < cfg->nmirrors; ++i) {
        mirrors[i].cfg = &cfg->mirrors[i];
        if ((mirrors[i].up = upstream_new(&cfg->mirrors[i])) == NULL)
            return -1;
        ++nmirrors;
    }
    return 0;
}

void mirror_dispose(void)
{
    for (size_t i = 0; i < nmirrors; ++i)
        upstream_free(mirrors[i].up);
    free(mirrors);
    mirrors = NULL;
    nmirrors = 0;
}

/* The upstream's name for `rest` of a request: "library/" added to a one-word name where the mirror says so. */
static int upstream_name(const mirror_t *m, const char *rest, char *up)
{
    int n =
        snprintf(up, NAME_MAX_LEN + 1, "%s%s", m->cfg->library && strchr(rest, '/') == NULL ? "library/" : "", rest);
    return n > 0 && n <= NAME_MAX_LEN && name_valid(up, (size_t)n) ? 0 : -1;
}

/* berth's name for upstream name `up` under mirror `m`. */
static int local_name(const mirror_t *m, const char *up, char *local)
{
    const char *p = m->cfg->prefix;
    int n = snprintf(local, NAME_MAX_LEN + 1, "%s%s%s", p, *p ? "/" : "", up);
    return n > 0 && n <= NAME_MAX_LEN ? 0 : -1;
}

const mirror_t *mirror_select(const char *name, const char *ns, char *local, char *up)
{
    const mirror_t *m = NULL;
    const char *rest = name;
    if (ns != NULL) {
        for (size_t i = 0; i < nmirrors && m == NULL; ++i)
            if (strcmp(mirrors[i].cfg->ns, ns) == 0)
                m = &mirrors[i];
    } else {
        size_t best = 0;
        for (size_t i = 0; i < nmirrors; ++i) {
            const char *p = mirrors[i].cfg->prefix;
            size_t plen = strlen(p);
            if (plen == 0 ? m == NULL : plen >= best && strncmp(name, p, plen) == 0 && name[plen] == '/') {
                m = &mirrors[i];
                best = plen;
                rest = name + plen + (plen != 0);
            }
        }
    }
    if (m == NULL || upstream_name(m, rest, up) != 0 || local_name(m, up, local) != 0)
        return NULL;
    return m;
}

int mirror_creates(const char *repo)
{
    char local[NAME_MAX_LEN + 1], up[NAME_MAX_LEN + 1];
    return nmirrors != 0 && mirror_select(repo, NULL, local, up) != NULL && strcmp(local, repo) == 0;
}
