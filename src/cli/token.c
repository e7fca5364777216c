/* `berth token …`: access tokens of users and robots (the secret is printed once, at creation, and never stored),
 * and the refresh tokens the token service issued (listed and revoked by id "r<N>"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>
#include "cli/cli_int.h"
#include "util/status.h"

static char *time_format(int64_t t, char *buf, size_t len)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (t == 0)
        snprintf(buf, len, "never");
    else
        strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
    return buf;
}

static int token_create(cli_t *c, int argc, char **argv)
{
    const char *scope = NULL, *expires = NULL;
    char *pos[2], *secret = NULL, when[32];
    int64_t expires_at = 0;
    uint64_t ms;
    int n, rc;
    const cli_opt_t opts[] = {{"--scope", &scope, NULL}, {"--expires", &expires, NULL}, {NULL}};
    if ((rc = cli_args(argc, argv, opts, pos, 2, 2, &n)) != 0)
        return rc;
    if (scope == NULL)
        return cli_usage_error("token create: --scope is required, e.g. --scope \"repository:acme/*:pull\"");
    if (!accounts_scope_valid(scope))
        return cli_usage_error("invalid scope %s: space-separated repository:PATTERN:ACTIONS (PATTERN a repository "
                               "name, NS/* or *; ACTIONS pull, push, delete, * separated by commas) or "
                               "registry:catalog:*",
                               scope);
    if (pos[1][0] == '\0' || strlen(pos[1]) >= sizeof(((access_token_t *)0)->name))
        return cli_usage_error("invalid token name: 1 to %zu bytes", sizeof(((access_token_t *)0)->name) - 1);
    if (expires != NULL && strcmp(expires, "never") != 0 && strcmp(expires, "0") != 0) {
        if (config_parse_duration_ms(expires, &ms) != 0 || ms == 0 || ms / 1000 > INT32_MAX * 100ull)
            return cli_usage_error("invalid --expires %s: a duration such as 90m, 12h, 30d, or never", expires);
        expires_at = (int64_t)time(NULL) + (int64_t)((ms + 999) / 1000);
    }
    if ((rc = cli_open(c, 1)) != 0)
        return rc;
    rc = accounts_token_create(c->m, pos[0], pos[1], scope, expires_at, &secret);
    if (rc == BERTH_ENOTFOUND)
        return cli_rollback(c, cli_fail("no user or robot %s", pos[0]));
    if (rc != 0)
        return cli_rollback(c, cli_fail("cannot create the token"));
    char detail[600];
    /* the id is the secret's first part: berth_<id>_<secret> */
    snprintf(detail, sizeof(detail), "id %lld, %s, scope %s", strtoll(secret + 6, NULL, 10), pos[1], scope);
    if ((rc = cli_audit(c, "token.create", NULL, pos[0], detail)) != 0 || (rc = cli_commit(c)) != 0) {
        OPENSSL_cleanse(secret, strlen(secret));
        free(secret);
        return cli_rollback(c, rc);
    }
    /* the secret alone on stdout (for TOKEN=$(berth token create …)), the rest on stderr */
    fprintf(stderr, "created token \"%s\" for %s, scope \"%s\", expires %s\n", pos[1], pos[0], scope,
            time_format(expires_at, when, sizeof(when)));
    printf("%s\n", secret);
    fflush(stdout);
    fprintf(stderr, "store it now: it will not be shown again\n");
    OPENSSL_cleanse(secret, strlen(secret));
    free(secret);
    return rc;
}

static void list_one(void *ctx, const access_token_t *t, const char *owner)
{
    char when[32];
    int64_t now = *(int64_t *)ctx;
    printf("%lld\t%s\t%s\t%s\t%s%s\t%s\n", (long long)t->id, owner, t->name, t->scope,
           time_format(t->expires_at, when, sizeof(when)),
           t->expires_at != 0 && t->expires_at <= now ? " (expired)" : "", t->revoked ? "yes" : "no");
}

typedef struct {
    int64_t now;
    int header; /* printed */
} refresh_list_t;

static void refresh_one(void *ctx, const refresh_token_t *t, const char *owner)
{
    refresh_list_t *l = ctx;
    char created[32], used[32], expires[32];
    if (!l->header) {
        printf("\nREFRESH\tOWNER\tCLIENT\tCREATED\tLAST USED\tEXPIRES\n");
        l->header = 1;
    }
    printf("r%lld\t%s\t%s\t%s\t%s\t%s%s\n", (long long)t->id, owner, t->client[0] ? t->client : "-",
           time_format(t->created_at, created, sizeof(created)), time_format(t->last_used_at, used, sizeof(used)),
           time_format(t->expires_at, expires, sizeof(expires)), t->expires_at <= l->now ? " (expired)" : "");
}

static int token_list(cli_t *c, int argc, char **argv)
{
    char *pos[1];
    int n, rc;
    int64_t now = (int64_t)time(NULL);
    if ((rc = cli_args(argc, argv, NULL, pos, 0, 1, &n)) != 0)
        return rc;
    if ((rc = cli_open(c, 0)) != 0)
        return rc;
    printf("ID\tOWNER\tNAME\tSCOPE\tEXPIRES\tREVOKED\n");
    rc = accounts_token_list(c->m, n ? pos[0] : NULL, list_one, &now);
    /* then the refresh tokens, in a table of their own, if there are any */
    refresh_list_t rl = {now, 0};
    if (rc >= 0)
        rc = accounts_refresh_list(c->m, n ? pos[0] : NULL, refresh_one, &rl);
    if (rc == BERTH_ENOTFOUND)
        return cli_rollback(c, cli_fail("no account %s", pos[0]));
    if (rc < 0)
        return cli_rollback(c, cli_fail("cannot list the tokens"));
    return cli_commit(c);
}

static int token_revoke(cli_t *c, int argc, char **argv)
{
    char *pos[1], *end;
    int n, rc;
    if ((rc = cli_args(argc, argv, NULL, pos, 1, 1, &n)) != 0)
        return rc;
    /* "r<N>": a refresh token; "<N>": an access token */
    int refresh = pos[0][0] == 'r';
    const char *digits = pos[0] + refresh, *kind = refresh ? "refresh token r" : "token ";
    errno = 0;
    long long id = strtoll(digits, &end, 10);
    if (errno != 0 || *end != '\0' || end == digits || id <= 0 || !(*digits >= '1' && *digits <= '9'))
        return cli_usage_error("invalid token id %s: N for an access token, rN for a refresh token (see berth token "
                               "list)",
                               pos[0]);
    if ((rc = cli_open(c, 1)) != 0)
        return rc;
    rc = refresh ? accounts_refresh_revoke(c->m, id) : accounts_token_revoke(c->m, id);
    if (rc == BERTH_ENOTFOUND)
        return cli_rollback(c, cli_fail("no %s%lld", kind, id));
    if (rc != 0)
        return cli_rollback(c, cli_fail("cannot revoke %s%lld", kind, id));
    if ((rc = cli_audit(c, "token.revoke", NULL, pos[0], refresh ? "refresh token" : "access token")) != 0)
        return cli_rollback(c, rc);
    if ((rc = cli_commit(c)) == 0)
        printf("revoked %s%lld\n", kind, id);
    return rc;
}

int cli_token(cli_t *c, int argc, char **argv)
{
    if (strcmp(argv[0], "create") == 0)
        return token_create(c, argc, argv);
    if (strcmp(argv[0], "list") == 0)
        return token_list(c, argc, argv);
    if (strcmp(argv[0], "revoke") == 0)
        return token_revoke(c, argc, argv);
    return cli_usage_error("token: unknown subcommand %s", argv[0]);
}
