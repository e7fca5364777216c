/* `berth org|robot|team|repo …`: organisations and their teams, robots, repository visibility and grants. */
#include <stdio.h>
#include <string.h>
#include "cli/cli_int.h"
#include "oci/name.h"
#include "util/status.h"

#define NAME_RULE "lowercase letters and digits, separated by . _ __ or -"

/* org add NAME, robot add NAME */
static int account_add(cli_t *c, int argc, char **argv, account_kind_t kind)
{
    const char *what = kind == ACCOUNT_ORG ? "organisation" : "robot";
    char *pos[1];
    int n, rc;
    if (strcmp(argv[0], "add") != 0)
        return cli_usage_error("%s: unknown subcommand %s", kind == ACCOUNT_ORG ? "org" : "robot", argv[0]);
    if ((rc = cli_args(argc, argv, NULL, pos, 1, 1, &n)) != 0)
        return rc;
    if (!accounts_name_valid(pos[0]))
        return cli_usage_error("invalid %s name %s: " NAME_RULE, what, pos[0]);
    if ((rc = cli_open(c, 1)) != 0)
        return rc;
    rc = kind == ACCOUNT_ORG ? accounts_org_add(c->m, pos[0]) : accounts_robot_add(c->m, pos[0]);
    if (rc == BERTH_EEXISTS)
        return cli_rollback(c, cli_fail("the name %s is taken", pos[0]));
    if (rc != 0)
        return cli_rollback(c, cli_fail("cannot add %s %s", what, pos[0]));
    if ((rc = cli_audit(c, kind == ACCOUNT_ORG ? "org.add" : "robot.add", NULL, pos[0], NULL)) != 0)
        return cli_rollback(c, rc);
    if ((rc = cli_commit(c)) == 0)
        printf("added %s %s\n", what, pos[0]);
    return rc;
}

int cli_org(cli_t *c, int argc, char **argv)
{
    return account_add(c, argc, argv, ACCOUNT_ORG);
}

int cli_robot(cli_t *c, int argc, char **argv)
{
    return account_add(c, argc, argv, ACCOUNT_ROBOT);
}

/* A user or robot `name`: 0, or CLI_FAIL (reported). */
static int need_person(cli_t *c, const char *name)
{
    account_t a;
    int rc = accounts_get(c->m, name, &a);
    if (rc == BERTH_ENOTFOUND)
        return cli_fail("no user or robot %s", name);
    if (rc != 0)
        return cli_fail("cannot look %s up", name);
    int kind = a.kind;
    account_dispose(&a);
    if (kind == ACCOUNT_ORG)
        return cli_fail("%s is an organisation, not a user or robot", name);
    return 0;
}

static int team_add(cli_t *c, int argc, char **argv)
{
    const char *perm = "pull";
    char *pos[2];
    int n, rc;
    const cli_opt_t opts[] = {{"--permission", &perm, NULL}, {NULL}};
    if ((rc = cli_args(argc, argv, opts, pos, 2, 2, &n)) != 0)
        return rc;
    unsigned actions = cli_actions_parse(perm);
    if (actions == 0)
        return cli_usage_error("invalid permission %s: pull, push, delete or * separated by commas", perm);
    if (!accounts_name_valid(pos[1]))
        return cli_usage_error("invalid team name %s: " NAME_RULE, pos[1]);
    if ((rc = cli_open(c, 1)) != 0)
        return rc;
    rc = accounts_team_add(c->m, pos[0], pos[1], actions);
    if (rc == BERTH_ENOTFOUND)
        return cli_rollback(c, cli_fail("no organisation %s", pos[0]));
    if (rc == BERTH_EEXISTS)
        return cli_rollback(c, cli_fail("team %s/%s exists", pos[0], pos[1]));
    if (rc != 0)
        return cli_rollback(c, cli_fail("cannot add team %s/%s", pos[0], pos[1]));
    char team[2 * ACCOUNT_NAME_MAX + 2];
    snprintf(team, sizeof(team), "%s/%s", pos[0], pos[1]);
    if ((rc = cli_audit(c, "team.add", NULL, team, scope_actions_format(actions, (char[32]){0}, 32))) != 0)
        return cli_rollback(c, rc);
    if ((rc = cli_commit(c)) == 0)
        printf("added team %s/%s (%s)\n", pos[0], pos[1], scope_actions_format(actions, (char[32]){0}, 32));
    return rc;
}

static int team_member(cli_t *c, int argc, char **argv)
{
    char *pos[3];
    int n, rc, remove = 0;
    const cli_opt_t opts[] = {{"--remove", NULL, &remove}, {NULL}};
    if ((rc = cli_args(argc, argv, opts, pos, 3, 3, &n)) != 0)
        return rc;
    if ((rc = cli_open(c, 1)) != 0)
        return rc;
    if ((rc = need_person(c, pos[2])) != 0)
        return cli_rollback(c, rc);
    if ((rc = accounts_team_exists(c->m, pos[0], pos[1])) <= 0)
        return cli_rollback(c,
                            rc == 0 ? cli_fail("no team %s/%s", pos[0], pos[1]) : cli_fail("cannot look the team up"));
    rc = accounts_team_member(c->m, pos[0], pos[1], pos[2], !remove);
    if (rc == BERTH_ENOTFOUND)
        return cli_rollback(c, cli_fail("%s is not a member of %s/%s", pos[2], pos[0], pos[1]));
    if (rc != 0)
        return cli_rollback(c, cli_fail("cannot change the members of %s/%s", pos[0], pos[1]));
    char team[2 * ACCOUNT_NAME_MAX + 2];
    snprintf(team, sizeof(team), "%s/%s", pos[0], pos[1]);
    if ((rc = cli_audit(c, remove ? "team.member.remove" : "team.member.add", NULL, team, pos[2])) != 0)
        return cli_rollback(c, rc);
    if ((rc = cli_commit(c)) == 0)
        printf("%s %s %s %s/%s\n", remove ? "removed" : "added", pos[2], remove ? "from" : "to", pos[0], pos[1]);
    return rc;
}

int cli_team(cli_t *c, int argc, char **argv)
{
    if (strcmp(argv[0], "add") == 0)
        return team_add(c, argc, argv);
    if (strcmp(argv[0], "member") == 0)
        return team_member(c, argc, argv);
    return cli_usage_error("team: unknown subcommand %s", argv[0]);
}

static int repo_visibility(cli_t *c, int argc, char **argv)
{
    char *pos[2];
    int n, rc;
    if ((rc = cli_args(argc, argv, NULL, pos, 2, 2, &n)) != 0)
        return rc;
    if (strlen(pos[0]) > NAME_MAX_LEN || !name_valid(pos[0], strlen(pos[0])))
        return cli_usage_error("invalid repository name %s", pos[0]);
    int is_public = strcmp(pos[1], "public") == 0;
    if (!is_public && strcmp(pos[1], "private") != 0)
        return cli_usage_error("visibility: public or private, not %s", pos[1]);
    if ((rc = cli_open(c, 1)) != 0)
        return rc;
    if (accounts_repo_set_public(c->m, pos[0], is_public) != 0)
        return cli_rollback(c, cli_fail("cannot change the visibility of %s", pos[0]));
    if ((rc = cli_audit(c, "visibility", pos[0], NULL, pos[1])) != 0)
        return cli_rollback(c, rc);
    if ((rc = cli_commit(c)) == 0)
        printf("%s is %s\n", pos[0], pos[1]);
    return rc;
}

/* "user" or "org/team": CLI_USAGE (reported) if malformed. */
static int grantee_check(const char *g)
{
    const char *slash = strchr(g, '/');
    char org[ACCOUNT_NAME_MAX + 1];
    if (slash == NULL) {
        if (accounts_name_valid(g))
            return 0;
    } else if ((size_t)(slash - g) <= ACCOUNT_NAME_MAX) {
        snprintf(org, sizeof(org), "%.*s", (int)(slash - g), g);
        if (accounts_name_valid(org) && accounts_name_valid(slash + 1))
            return 0;
    }
    return cli_usage_error("invalid grantee %s: USER or ORG/TEAM", g);
}

/* Why a grantee was not found: 0 if it exists (so the grant was missing), else CLI_FAIL (reported). */
static int grantee_explain(cli_t *c, const char *g)
{
    const char *slash = strchr(g, '/');
    if (slash != NULL) {
        char org[ACCOUNT_NAME_MAX + 1];
        snprintf(org, sizeof(org), "%.*s", (int)(slash - g), g);
        return accounts_team_exists(c->m, org, slash + 1) == 1 ? 0 : cli_fail("no team %s", g);
    }
    account_t a;
    int rc = accounts_get(c->m, g, &a);
    if (rc != 0)
        return cli_fail("no user, robot or team %s", g);
    int kind = a.kind;
    account_dispose(&a);
    if (kind == ACCOUNT_ORG)
        return cli_fail("%s is an organisation: grant to one of its teams (%s/TEAM)", g, g);
    return 0;
}

static int repo_grant(cli_t *c, int argc, char **argv, int revoke)
{
    char *pos[3];
    unsigned actions = 0;
    int n, rc;
    if ((rc = cli_args(argc, argv, NULL, pos, revoke ? 2 : 3, revoke ? 2 : 3, &n)) != 0)
        return rc;
    if (!accounts_pattern_valid(pos[0]))
        return cli_usage_error("invalid repository pattern %s: a repository name, NAMESPACE/* or *", pos[0]);
    if ((rc = grantee_check(pos[1])) != 0)
        return rc;
    if (!revoke && (actions = cli_actions_parse(pos[2])) == 0)
        return cli_usage_error("invalid actions %s: pull, push, delete or * separated by commas", pos[2]);
    if ((rc = cli_open(c, 1)) != 0)
        return rc;
    rc = revoke ? accounts_grant_revoke(c->m, pos[0], pos[1]) : accounts_grant(c->m, pos[0], pos[1], actions);
    if (rc == BERTH_ENOTFOUND) {
        if ((rc = grantee_explain(c, pos[1])) == 0)
            rc = cli_fail("no grant on %s to %s", pos[0], pos[1]);
        return cli_rollback(c, rc);
    }
    if (rc != 0)
        return cli_rollback(c, cli_fail("cannot change the grants on %s", pos[0]));
    if ((rc = cli_audit(c, revoke ? "grant.revoke" : "grant", pos[0], pos[1],
                        revoke ? NULL : scope_actions_format(actions, (char[32]){0}, 32))) != 0)
        return cli_rollback(c, rc);
    if ((rc = cli_commit(c)) != 0)
        return rc;
    if (revoke)
        printf("revoked the grant on %s to %s\n", pos[0], pos[1]);
    else
        printf("granted %s on %s to %s\n", scope_actions_format(actions, (char[32]){0}, 32), pos[0], pos[1]);
    return 0;
}

int cli_repo(cli_t *c, int argc, char **argv)
{
    if (strcmp(argv[0], "visibility") == 0)
        return repo_visibility(c, argc, argv);
    if (strcmp(argv[0], "grant") == 0)
        return repo_grant(c, argc, argv, 0);
    if (strcmp(argv[0], "revoke") == 0)
        return repo_grant(c, argc, argv, 1);
    return cli_usage_error("repo: unknown subcommand %s", argv[0]);
}
