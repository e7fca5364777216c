/*
 * `berth gc [--dry-run] [--blob-grace D] [--untagged-grace D]`: collect garbage now (store/gc.h does the work, also
 * while `berth serve` runs), after evicting what mirrors over their limits must give up (store/evict.h), one line
 * per eviction and removal on stdout and a summary. The graces default to the configuration's
 * (gc.blob_grace, gc.untagged_grace). Exit 0 when the run finished, 1 when it stopped on an error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cli/cli_int.h"
#include "store/evict.h"
#include "store/gc.h"
#include "store/store.h"
#include "util/time.h"

static void print_item(void *ctx, const gc_item_t *it)
{
    const char *verb = ctx;
    if (strcmp(it->kind, "image") == 0) { /* a mirror's, evicted: the same line in a dry run and a real one */
        char when[32];
        time_t t = (time_t)it->pulled_at;
        struct tm tm;
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
        printf("%s %s@%s%s%s (%llu bytes, last pulled %s, %s)\n",
               strncmp(verb, "would", 5) == 0 ? "would evict" : "evicted", it->repo, it->digest,
               *it->tags ? " tags " : "", it->tags, (unsigned long long)it->size, when, it->why);
        return;
    }
    if (it->repo != NULL)
        printf("%s %s %s@%s (%llu bytes)\n", verb, it->kind, it->repo, it->digest, (unsigned long long)it->size);
    else
        printf("%s %s %s (%llu bytes)\n", verb, it->kind, it->digest, (unsigned long long)it->size);
}

int cli_gc(cli_t *c, int argc, char **argv)
{
    char blob_grace[32], untagged_grace[32], path[4096];
    const char *bg = NULL, *ug = NULL;
    int dry = 0, help = 0, n;
    uint64_t bg_ms = c->cfg->gc_blob_grace_ms, ug_ms = c->cfg->gc_untagged_grace_ms;
    const cli_opt_t opts[] = {{"--dry-run", NULL, &dry},
                              {"--blob-grace", &bg, NULL},
                              {"--untagged-grace", &ug, NULL},
                              {"--help", NULL, &help},
                              {NULL}};
    if (cli_args(argc, argv, opts, NULL, 0, 0, &n) != 0)
        return CLI_USAGE;
    snprintf(blob_grace, sizeof(blob_grace), "%llus", (unsigned long long)(bg_ms / 1000));
    snprintf(untagged_grace, sizeof(untagged_grace), "%llus", (unsigned long long)(ug_ms / 1000));
    if (help) {
        printf("usage: berth gc [--dry-run] [--blob-grace DURATION] [--untagged-grace DURATION]\n"
               "Removes from %s/ what nothing references (also while berth serve runs): untagged manifests that no\n"
               "index or subject keeps, older than --untagged-grace (gc.untagged_grace, now %s; 0 keeps them), then\n"
               "blobs no manifest of a repository references, linked longer ago than --blob-grace (gc.blob_grace,\n"
               "now %s), and the files of blobs no repository links. Before that, mirrors over their max_size or\n"
               "max_age evict their least recently pulled images. --dry-run lists and counts, removes nothing.\n"
               "See docs/lifecycle.md.\n",
               c->cfg->storage_root, untagged_grace, blob_grace);
        return CLI_OK;
    }
    if (bg != NULL && config_parse_duration_ms(bg, &bg_ms) != 0)
        return cli_usage_error("invalid --blob-grace %s: a duration such as 90s, 30m, 24h, 7d", bg);
    if (ug != NULL && config_parse_duration_ms(ug, &ug_ms) != 0)
        return cli_usage_error("invalid --untagged-grace %s: a duration such as 90s, 30m, 24h, 7d", ug);
    gc_background_priority(); /* beside berth serve, serving goes first: from the start (opening costs too) */
    if (store_db_create(c->cfg->storage_root, path, sizeof(path)) != 0)
        return cli_fail("cannot create the database in %s: %s", c->cfg->storage_root, strerror(errno));
    if ((c->m = metastore_open(path, 1)) == NULL)
        return cli_fail("cannot open %s", path);
    gc_options_t o = {(int64_t)(bg_ms / 1000),
                      (int64_t)(ug_ms / 1000),
                      dry,
                      print_item,
                      (void *)(dry ? "would remove" : "removed"),
                      NULL};
    evict_mirror_t *mirrors = evict_mirrors_new(c->cfg);
    o.mirrors = mirrors;
    o.nmirrors = mirrors != NULL ? c->cfg->nmirrors : 0;
    gc_stats_t st = {0};
    double t0 = time_mono_s();
    int rc = gc_run(c->m, c->cfg->storage_root, &o, &st);
    free(mirrors);
    if (st.images > 0)
        printf("gc%s: %s %llu images (%llu manifests) from mirrors: %llu bytes\n", dry ? " --dry-run" : "",
               dry ? "would evict" : "evicted", (unsigned long long)st.images, (unsigned long long)st.image_manifests,
               (unsigned long long)st.image_bytes);
    printf("gc%s: %s %llu manifests, %llu links, %llu blobs: %llu bytes %s (%llu queued items looked at in %.3f s)\n",
           dry ? " --dry-run" : "", dry ? "would remove" : "removed", (unsigned long long)st.manifests,
           (unsigned long long)st.links, (unsigned long long)st.blobs, (unsigned long long)st.bytes_freed,
           dry ? "to free" : "freed", (unsigned long long)st.examined, time_mono_s() - t0);
    if (rc != 0) {
        fflush(stdout);
        return cli_fail("gc of %s stopped on an error (see above); what it removed before stays removed",
                        c->cfg->storage_root);
    }
    return CLI_OK;
}
