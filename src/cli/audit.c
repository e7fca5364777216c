/* `berth audit`: the audit log (store/audit.h), filtered by time, repository and user, as a table or JSON lines. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "cli/cli_int.h"
#include "oci/name.h"
#include "store/audit.h"
#include "util/status.h"

/* --since: a duration back from now (24h, 7d) or a UTC time (2026-01-31, 2026-01-31T12:00:00Z): 0, or -1. */
static int parse_since(const char *s, int64_t now, int64_t *out)
{
    uint64_t ms;
    if (config_parse_duration_ms(s, &ms) == 0) {
        *out = now - (int64_t)(ms / 1000);
        return 0;
    }
    static const char *const formats[] = {"%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S",
                                          "%Y-%m-%dT%H:%MZ",    "%Y-%m-%dT%H:%M",    "%Y-%m-%d"};
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); ++i) {
        struct tm tm;
        memset(&tm, 0, sizeof(tm));
        const char *end = strptime(s, formats[i], &tm);
        if (end != NULL && *end == '\0') {
            *out = (int64_t)timegm(&tm);
            return 0;
        }
    }
    return -1;
}

typedef struct {
    int json;
} list_t;

static void print_row(void *ctx, const audit_row_t *r)
{
    list_t *l = ctx;
    char when[32];
    struct tm tm;
    time_t t = (time_t)r->at;
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    if (l->json) {
        json_t *o = json_pack("{s:I,s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "id", (json_int_t)r->id, "time", when,
                              "user", r->actor, "token", (json_int_t)r->token_id, "action", r->action, "repository",
                              r->repository, "reference", r->reference, "digest", r->digest, "address", r->address,
                              "detail", r->detail, "count", (json_int_t)r->count);
        char *line = json_dumps(o, JSON_COMPACT);
        printf("%s\n", line);
        free(line);
        json_decref(o);
        return;
    }
    char token[32] = "-", count[32] = "";
    if (r->token_id != 0)
        snprintf(token, sizeof(token), "%lld", (long long)r->token_id);
    if (r->count > 1)
        snprintf(count, sizeof(count), " (%lld times)", (long long)r->count);
    printf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s%s\n", when, r->actor, token, r->action,
           r->repository[0] ? r->repository : "-", r->reference[0] ? r->reference : "-",
           r->address[0] ? r->address : "-", r->digest[0] && strcmp(r->digest, r->reference) != 0 ? r->digest : "-",
           r->detail, count);
}

int cli_audit_list(cli_t *c, int argc, char **argv)
{
    const char *since = NULL, *repo = NULL, *user = NULL;
    int json = 0, n, rc;
    int64_t from = 0, now = (int64_t)time(NULL);
    const cli_opt_t opts[] = {
        {"--since", &since, NULL}, {"--repo", &repo, NULL}, {"--user", &user, NULL}, {"--json", NULL, &json}, {NULL}};
    if ((rc = cli_args(argc, argv, opts, NULL, 0, 0, &n)) != 0)
        return rc;
    if (since != NULL && parse_since(since, now, &from) != 0)
        return cli_usage_error("invalid --since %s: a duration (90m, 24h, 7d) or a UTC time (2026-01-31, "
                               "2026-01-31T12:00:00Z)",
                               since);
    if (repo != NULL && !config_repo_pattern_valid(repo))
        return cli_usage_error("invalid --repo %s: a repository name, NAMESPACE/* or *", repo);
    if (repo != NULL && strcmp(repo, "*") == 0)
        repo = NULL;
    if ((rc = cli_open(c, 0)) != 0)
        return rc;
    list_t l = {json};
    if (!json)
        printf("TIME\tUSER\tTOKEN\tACTION\tREPOSITORY\tREFERENCE\tADDRESS\tDIGEST\tDETAIL\n");
    if (audit_list(c->m, from, repo, user, print_row, &l) < 0)
        return cli_rollback(c, cli_fail("cannot read the audit log"));
    return cli_commit(c);
}
