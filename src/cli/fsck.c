/*
 * `berth fsck [--verify] [--repair] [--grace DURATION]`: check the storage root (store/fsck.h does the work, also
 * while `berth serve` runs), one line per finding on stdout and a summary. Exit 0 when nothing needs doing, 1 when a
 * finding is left (an error, or an orphan not removed; pending ones do not count), 2 when the check could not run.
 */
#include <stdio.h>
#include <string.h>
#include "cli/cli_int.h"
#include "store/fsck.h"

#define FSCK_GRACE_DEFAULT "1h"

static void print_finding(void *ctx, const fsck_finding_t *f)
{
    static const char *const classes[] = {"error", "orphan", "pending"};
    (void)ctx;
    printf("%s %s %s: %s%s\n", classes[f->cls], f->kind, f->subject, f->detail, f->removed ? ": removed" : "");
}

int cli_fsck(cli_t *c, int argc, char **argv)
{
    const char *grace = FSCK_GRACE_DEFAULT;
    int verify = 0, repair = 0, help = 0, n;
    fsck_options_t o = {0};
    fsck_stats_t st;
    const cli_opt_t opts[] = {{"--verify", NULL, &verify},
                              {"--repair", NULL, &repair},
                              {"--grace", &grace, NULL},
                              {"--help", NULL, &help},
                              {NULL}};
    if (cli_args(argc, argv, opts, NULL, 0, 0, &n) != 0)
        return CLI_USAGE;
    if (help) {
        printf(
            "usage: berth fsck [--verify] [--repair] [--grace DURATION]\n"
            "Checks %s/ (also while berth serve runs): the blob files the database records (their size; with\n"
            "--verify, their digest, reading every byte), tags, manifests and their references, and lists what\n"
            "nothing references (orphans). --repair removes the orphans changed more than --grace (default %s) ago.\n"
            "Exit status: 0 nothing to do, 1 findings left, 2 the check could not run. See docs/operations.md.\n",
            c->cfg->storage_root, FSCK_GRACE_DEFAULT);
        return CLI_OK;
    }
    if (config_parse_duration_ms(grace, &o.grace_ms) != 0)
        return cli_usage_error("invalid --grace %s: a duration such as 90s, 30m, 1h", grace);
    o.verify = verify;
    o.repair = repair;
    o.upload_ttl_ms = c->cfg->storage_upload_ttl_ms;
    o.sparse = c->cfg->storage_sparse_manifests;
    o.report = print_finding;
    if (fsck_run(c->cfg->storage_root, &o, &st) != 0) {
        fflush(stdout);
        fprintf(stderr, "berth: fsck of %s could not run to the end\n", c->cfg->storage_root);
        return 2;
    }
    printf("fsck: %llu blobs (%llu bytes", (unsigned long long)st.blobs, (unsigned long long)st.blob_bytes);
    if (verify)
        printf(", %llu hashed", (unsigned long long)st.bytes_hashed);
    printf("), %llu manifests, %llu tags, %llu uploads in progress: %llu errors, %llu orphans (%llu removed), %llu "
           "pending\n",
           (unsigned long long)st.manifests, (unsigned long long)st.tags, (unsigned long long)st.uploads,
           (unsigned long long)st.errors, (unsigned long long)st.orphans, (unsigned long long)st.removed,
           (unsigned long long)st.pending);
    return st.errors > 0 || st.orphans > st.removed ? CLI_FAIL : CLI_OK;
}
