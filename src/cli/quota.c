/*
 * `berth quota list`, `berth quota set NS SIZE` (0 or none removes it): quotas per namespace (store/quota.h);
 * `berth du [NS|REPO]`: what namespaces and repositories use, unique and shared bytes. Tab-separated, exact bytes
 * first and the same for people after them.
 */
#include <stdio.h>
#include <string.h>
#include "cli/cli_int.h"
#include "oci/name.h"
#include "store/quota.h"
#include "store/store.h"
#include "util/status.h"

static void print_quota(void *ctx, const quota_t *q)
{
    char limit[32], used[32];
    (void)ctx;
    printf("%s\t%llu\t%llu\t%s\t%s\t%.0f%%\n", q->ns, (unsigned long long)q->bytes, (unsigned long long)q->used,
           quota_format_size(q->bytes, limit, sizeof(limit)), quota_format_size(q->used, used, sizeof(used)),
           q->bytes ? 100.0 * (double)q->used / (double)q->bytes : 0.0);
}

int cli_quota(cli_t *c, int argc, char **argv)
{
    char *pos[2];
    int n, rc;
    if (strcmp(argv[0], "list") == 0) {
        if ((rc = cli_args(argc, argv, NULL, NULL, 0, 0, &n)) != 0 || (rc = cli_open(c, 0)) != 0)
            return rc;
        printf("NAMESPACE\tQUOTA\tUSED\tQUOTA\tUSED\tUSE\n");
        return quota_list(c->m, print_quota, NULL) < 0 ? cli_fail("cannot list the quotas") : CLI_OK;
    }
    if (strcmp(argv[0], "set") != 0)
        return cli_usage_error("quota: unknown subcommand %s (list, set)", argv[0]);
    if ((rc = cli_args(argc, argv, NULL, pos, 2, 2, &n)) != 0)
        return rc;
    uint64_t bytes = 0;
    if (strchr(pos[0], '/') != NULL || !name_valid(pos[0], strlen(pos[0])))
        return cli_usage_error("quota set: %s is not a namespace (an account or organisation: a name without /)",
                               pos[0]);
    if (strcmp(pos[1], "none") != 0 && config_parse_size(pos[1], &bytes) != 0)
        return cli_usage_error("quota set: invalid size %s (such as 50GiB, 500MB; 0 or none removes the quota)",
                               pos[1]);
    if ((rc = cli_open(c, 1)) != 0)
        return rc;
    if (quota_set(c->m, pos[0], bytes) != 0)
        return cli_rollback(c, cli_fail("cannot set the quota of %s", pos[0]));
    quota_t q;
    if ((rc = quota_get(c->m, pos[0], &q)) < 0)
        return cli_rollback(c, cli_fail("cannot read the quota of %s", pos[0]));
    if ((rc = cli_commit(c)) != 0)
        return rc;
    if (bytes == 0) {
        printf("%s has no quota\n", pos[0]);
    } else {
        char limit[32], used[32];
        printf("%s: quota %s, %s used%s\n", q.ns, quota_format_size(q.bytes, limit, sizeof(limit)),
               quota_format_size(q.used, used, sizeof(used)),
               q.used > q.bytes ? " (over: pushes are refused until images are deleted)" : "");
    }
    return CLI_OK;
}

static void print_usage(void *ctx, const quota_usage_t *u)
{
    char un[32], sh[32];
    printf("%s%s\t%llu\t%llu\t%llu\t%s\t%s\n", (const char *)ctx, u->name, (unsigned long long)u->unique,
           (unsigned long long)u->shared, (unsigned long long)u->blobs, quota_format_size(u->unique, un, sizeof(un)),
           quota_format_size(u->shared, sh, sizeof(sh)));
}

int cli_du(cli_t *c, int argc, char **argv)
{
    char *pos[1], ns[NAME_MAX_LEN + 1];
    int n, rc, help = 0;
    const cli_opt_t opts[] = {{"--help", NULL, &help}, {NULL}};
    if ((rc = cli_args(argc, argv, opts, pos, 0, 1, &n)) != 0)
        return rc;
    if (help) {
        printf("usage: berth du [NAMESPACE|REPOSITORY]\n"
               "The bytes of the blobs each namespace (or each repository of NAMESPACE, or REPOSITORY) links: unique\n"
               "(linked by no other namespace, or repository) and shared, each blob counted once, and the blob count.\n"
               "Columns: NAME UNIQUE SHARED BLOBS (bytes), then unique and shared for people.\n");
        return CLI_OK;
    }
    if (n == 1 && !name_valid(pos[0], strlen(pos[0])))
        return cli_usage_error("du: %s is not a namespace or repository name", pos[0]);
    if ((rc = cli_open(c, 0)) != 0)
        return rc;
    printf("NAME\tUNIQUE\tSHARED\tBLOBS\tUNIQUE\tSHARED\n");
    if (n == 0)
        return quota_usage_namespaces(c->m, NULL, print_usage, "") < 0 ? cli_fail("cannot read the usage") : CLI_OK;
    quota_ns_of(pos[0], ns);
    if (strchr(pos[0], '/') != NULL) {
        rc = quota_usage_repositories(c->m, ns, pos[0], print_usage, "");
        if (rc == 0)
            return cli_fail("%s: no such repository, or it links no blob", pos[0]);
    } else if ((rc = quota_usage_namespaces(c->m, ns, print_usage, "")) >= 0) {
        if (rc == 0)
            return cli_fail("%s: no such namespace, or it links no blob", pos[0]);
        rc = quota_usage_repositories(c->m, ns, NULL, print_usage, "  ");
    }
    return rc < 0 ? cli_fail("cannot read the usage") : CLI_OK;
}
