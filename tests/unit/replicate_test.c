/* Unit tests for the replication rules (src/replicate/replicate.c): the name mapping between the two sides, which
 * local repositories a push rule covers, and finding rules by name. The copying itself is tested end to end by
 * tests/integration/replicate.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "config/config.h"
#include "oci/name.h"
#include "replicate/replicate.h"
#include "tap.h"

static char path[] = "/tmp/berth-replicate-test.XXXXXX";

static int load(config_t *cfg, const char *text)
{
    FILE *fp = fopen(path, "w");
    if (fp == NULL || fputs(text, fp) < 0 || fclose(fp) != 0) {
        perror(path);
        exit(2);
    }
    char *err = NULL;
    int rc = config_load(cfg, path, &err);
    if (rc != 0)
        printf("# %s\n", err);
    free(err);
    return rc;
}

/* The mapping of `name` by `rule`, or "-" when it does not map. */
static const char *map(const config_replication_t *rule, const char *name, int to_remote)
{
    static char out[NAME_MAX_LEN + 1];
    return replicate_map_name(rule, name, to_remote, out) == 0 ? out : "-";
}

int main(void)
{
    int fd = mkstemp(path);
    if (fd < 0)
        return 2;
    close(fd);
    config_t cfg;
    ok(load(&cfg, "replication:\n"
                  "  - name: plain\n"
                  "    remote: http://127.0.0.1:1\n"
                  "    repositories: [team/*, 'apps/**']\n"
                  "  - name: prefixed\n"
                  "    remote: http://127.0.0.1:1\n"
                  "    repositories: 'prod/**'\n"
                  "    local_prefix: prod/\n"
                  "    remote_prefix: backup/prod/\n"
                  "  - name: in\n"
                  "    direction: pull\n"
                  "    remote: http://127.0.0.1:1\n"
                  "    repositories: '**'\n"
                  "    local_prefix: hub/\n") == 0,
       "three rules load");
    char *err = NULL;
    replicate_t *r = replicate_new(&cfg, &err);
    ok(r != NULL && replicate_count(r) == 3, "replicate_new: one client per rule%s%s", err ? ": " : "", err ? err : "");
    free(err);
    if (r == NULL)
        return tap_done();
    ok(replicate_find(r, "prefixed") == 1 && replicate_find(r, "in") == 2 && replicate_find(r, "nope") == -1,
       "rules are found by name");

    const config_replication_t *plain = replicate_rule(r, 0), *pre = replicate_rule(r, 1), *in = replicate_rule(r, 2);
    ok(strcmp(map(plain, "team/app", 1), "team/app") == 0, "no prefixes: the same name on both sides");
    ok(strcmp(map(pre, "prod/web", 1), "backup/prod/web") == 0, "push: local_prefix replaced by remote_prefix");
    ok(strcmp(map(pre, "backup/prod/web", 0), "prod/web") == 0, "and back: remote_prefix replaced by local_prefix");
    ok(strcmp(map(pre, "dev/web", 1), "-") == 0 && strcmp(map(pre, "prod/", 1), "-") == 0 &&
           strcmp(map(pre, "production/web", 1), "-") == 0,
       "a name outside the local prefix does not map");
    ok(strcmp(map(in, "library/alpine", 0), "hub/library/alpine") == 0, "pull: local_prefix added");
    char longname[NAME_MAX_LEN + 1];
    memset(longname, 'a', NAME_MAX_LEN);
    longname[NAME_MAX_LEN] = '\0';
    ok(strcmp(map(in, longname, 0), "-") == 0, "a mapping longer than a name may be does not map");

    ok(replicate_covers(r, 0, "team/app") && replicate_covers(r, 0, "apps/a/b/c") &&
           !replicate_covers(r, 0, "team/a/b") && !replicate_covers(r, 0, "other/x"),
       "covers: the patterns of a push rule");
    ok(replicate_covers(r, 1, "prod/a/b") && !replicate_covers(r, 1, "dev/a"), "covers: patterns and prefix");
    ok(!replicate_covers(r, 2, "library/alpine"), "covers: never a pull rule");

    replicate_free(r);
    config_dispose(&cfg);
    unlink(path);
    return tap_done();
}
