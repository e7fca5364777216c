/*
 * `berth replicate [RULE] [--dry-run]`: run the replication rules (replicate/replicate.h) once, now: all of them, or
 * the one named. Also while `berth serve` runs: what a pull rule brings is written to the same store, in
 * transactions of this process's own, and the server's caches see it at once (they follow the database's
 * generation, store/db.h). One line per image copied, then a summary per rule. Exit 0 when every image was copied or
 * up to date, 1 when something failed.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli_int.h"
#include "replicate/replicate.h"
#include "store/store.h"
#include "util/time.h"

static int stop;

static void on_signal(int sig)
{
    (void)sig;
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
}

/* The CLI's writes: a transaction of its own each (BEGIN IMMEDIATE waits for the server's writer). */
static int cli_write(void *ctx, metastore_write_fn fn, void *arg)
{
    metastore_t *m = ctx;
    if (metastore_begin(m, 1, NULL) != 0)
        return -1;
    int rc = fn(m, arg);
    if (rc < 0) {
        metastore_rollback(m);
        return rc;
    }
    return metastore_commit(m, NULL) == 0 ? rc : -1;
}

static void print_line(void *ctx, const char *line)
{
    (void)ctx;
    printf("%s\n", line);
    fflush(stdout);
}

int cli_replicate(cli_t *c, int argc, char **argv)
{
    char *pos[1], path[4096], *err = NULL;
    int dry = 0, help = 0, n, status = CLI_OK;
    const cli_opt_t opts[] = {{"--dry-run", NULL, &dry}, {"--help", NULL, &help}, {NULL}};
    if (cli_args(argc, argv, opts, pos, 0, 1, &n) != 0)
        return CLI_USAGE;
    if (help) {
        printf("usage: berth replicate [RULE] [--dry-run]\n"
               "Runs the replication rules of the configuration once (all, or the one named): a push rule sends the\n"
               "tags of the repositories it covers to its remote, a pull rule brings the remote's into %s/.\n"
               "What the destination has already is skipped. --dry-run asks the destination only, and lists what\n"
               "would be copied. See docs/replication.md.\n",
               c->cfg->storage_root);
        return CLI_OK;
    }
    if (c->cfg->nreplication == 0)
        return cli_fail("no replication rules in the configuration (replication: in the file given with -c)");
    replicate_t *r = replicate_new(c->cfg, &err);
    if (r == NULL) {
        status = cli_fail("%s", err ? err : "cannot set up replication");
        free(err);
        return status;
    }
    long only = -1;
    if (n == 1 && (only = replicate_find(r, pos[0])) < 0) {
        replicate_free(r);
        return cli_usage_error("replicate: no rule named %s", pos[0]);
    }
    if (store_db_create(c->cfg->storage_root, path, sizeof(path)) != 0 || (c->m = metastore_open(path, 1)) == NULL) {
        replicate_free(r);
        return cli_fail("cannot open the database in %s", c->cfg->storage_root);
    }
    blobstore_t blobs;
    if (blobstore_init(&blobs, c->cfg->storage_root) != 0) {
        replicate_free(r);
        return cli_fail("cannot open the blob store in %s", c->cfg->storage_root);
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    replicate_env_t env = {c->m,
                           &blobs,
                           c->cfg->storage_root,
                           c->cfg->storage_manifest_max_size,
                           c->cfg->http_max_body_size,
                           cli_write,
                           c->m,
                           &stop,
                           print_line,
                           NULL};
    for (size_t i = 0; i < replicate_count(r) && !__atomic_load_n(&stop, __ATOMIC_RELAXED); ++i) {
        if (only >= 0 && (size_t)only != i)
            continue;
        const config_replication_t *rule = replicate_rule(r, i);
        replicate_stats_t st = {0};
        double t0 = time_mono_s();
        int rc = replicate_run(r, i, &env, NULL, dry, &st);
        double secs = time_mono_s() - t0;
        printf("replicate %s%s (%s %s): %s %llu images (%llu manifests), %llu blobs, %llu bytes (%.1f MB/s); "
               "%llu blobs mounted or linked, %llu already there, %llu tags up to date; %llu failed; %.2f s\n",
               rule->name, dry ? " --dry-run" : "", rule->pull ? "pull from" : "push to", rule->remote,
               dry ? "would copy" : "copied", (unsigned long long)st.images, (unsigned long long)st.manifests,
               (unsigned long long)st.blobs, (unsigned long long)st.bytes,
               secs > 0 ? (double)st.bytes / 1e6 / secs : 0.0, (unsigned long long)st.mounted,
               (unsigned long long)st.present, (unsigned long long)st.uptodate, (unsigned long long)st.errors, secs);
        fflush(stdout);
        if (rc != 0) {
            cli_fail("replicate %s: %s", rule->name, st.first_error[0] ? st.first_error : "failed");
            status = CLI_FAIL;
        }
    }
    if (__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        fflush(stdout);
        status = cli_fail("replicate: interrupted; run it again to finish (what was copied stays)");
    }
    blobstore_dispose(&blobs);
    replicate_free(r);
    return status;
}
