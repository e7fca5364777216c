/*
 * `berth retention list`: the retention and immutable-tags rules of the configuration and the repositories each
 * retention rule covers; `berth retention run [--dry-run]`: apply them now (store/policy.h does the work, also while
 * `berth serve` runs), one line per tag removed and a summary. The server applies them before each scheduled
 * garbage collection (gc.interval).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "cli/cli_int.h"
#include "store/policy.h"
#include "store/store.h"
#include "util/status.h"
#include "util/time.h"

typedef struct {
    const policy_t *p;
    metastore_t *m;
    size_t *covered; /* per rule: repositories it covers */
} list_t;

static void on_repo(void *ctx, const char *repo)
{
    list_t *l = ctx;
    int rule = policy_retention_rule(l->p, repo);
    if (rule >= 0 && metastore_repo_origin(l->m, repo) == 0) { /* hosted: mirrored ones are the mirrors' to evict */
        printf("  %s: rule %d\n", repo, rule);
        l->covered[rule]++;
    }
}

static void print_removed(void *ctx, const retention_item_t *it)
{
    char when[32];
    time_t t = (time_t)it->pushed;
    struct tm tm;
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    printf("%s tag %s:%s (%s, pushed %s, rule %d)\n", (const char *)ctx, it->repo, it->tag, it->digest, when, it->rule);
}

static int list(cli_t *c, policy_t *p)
{
    const config_t *cfg = c->cfg;
    if (cfg->nretention == 0)
        printf("no retention rules (the retention list of the configuration; see docs/lifecycle.md)\n");
    for (size_t i = 0; i < cfg->nretention; ++i) {
        const config_retention_t *r = &cfg->retention[i];
        char within[32] = "-";
        if (r->keep_within_ms > 0)
            snprintf(within, sizeof(within), "%llus", (unsigned long long)(r->keep_within_ms / 1000));
        printf("retention rule %zu: repositories %s, tags %s: keep_last %s%ld, keep_within %s, keep_tags %s\n", i,
               r->repositories, r->tags ? r->tags : "(all)", r->keep_last < 0 ? "-" : "",
               r->keep_last < 0 ? 0L : r->keep_last, within, r->keep_tags ? r->keep_tags : "-");
    }
    for (size_t i = 0; i < cfg->nimmutable; ++i)
        printf("immutable rule %zu: repositories %s, tags %s\n", i, cfg->immutable[i].repositories,
               cfg->immutable[i].tags ? cfg->immutable[i].tags : "(all)");
    if (cfg->nretention == 0)
        return CLI_OK;
    size_t covered[cfg->nretention];
    memset(covered, 0, sizeof(covered));
    list_t l = {p, c->m, covered};
    printf("repositories covered:\n");
    if (metastore_catalog(c->m, NULL, -1, on_repo, &l) < 0)
        return cli_fail("cannot list the repositories");
    for (size_t i = 0; i < cfg->nretention; ++i)
        printf("rule %zu covers %zu repositories\n", i, covered[i]);
    return CLI_OK;
}

int cli_retention(cli_t *c, int argc, char **argv)
{
    char path[4096];
    int dry = 0, n, rc;
    const cli_opt_t opts[] = {{"--dry-run", NULL, &dry}, {NULL}};
    int run = strcmp(argv[0], "run") == 0;
    if (!run && strcmp(argv[0], "list") != 0)
        return cli_usage_error("retention: unknown subcommand %s (list, run)", argv[0]);
    if (cli_args(argc, argv, run ? opts : NULL, NULL, 0, 0, &n) != 0)
        return CLI_USAGE;
    if (store_db_create(c->cfg->storage_root, path, sizeof(path)) != 0)
        return cli_fail("cannot create the database in %s", c->cfg->storage_root);
    if ((c->m = metastore_open(path, 1)) == NULL)
        return cli_fail("cannot open %s", path);
    policy_t *p = policy_new(c->cfg);
    if (p == NULL)
        return cli_fail("cannot compile the rules");
    if (!run) {
        rc = list(c, p);
        policy_free(p);
        return rc;
    }
    retention_options_t o = {dry, print_removed, (void *)(dry ? "would remove" : "removed"), NULL};
    retention_stats_t st = {0};
    double t0 = time_mono_s();
    rc = retention_run(p, c->m, &o, &st);
    policy_free(p);
    printf("retention%s: %s %llu tags of %llu judged in %llu repositories (%.3f s)\n", dry ? " --dry-run" : "",
           dry ? "would remove" : "removed", (unsigned long long)st.removed, (unsigned long long)st.examined,
           (unsigned long long)st.repositories, time_mono_s() - t0);
    if (rc != 0)
        return cli_fail("retention stopped on an error (see above); what it removed before stays removed");
    return CLI_OK;
}
