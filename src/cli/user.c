/* `berth user …`: users, their passwords, and htpasswd import. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "auth/password.h"
#include "cli/cli_int.h"
#include "util/status.h"

static const char *kind_name(account_kind_t k)
{
    return k == ACCOUNT_ORG ? "org" : k == ACCOUNT_ROBOT ? "robot" : "user";
}

static int user_add(cli_t *c, int argc, char **argv)
{
    char *pos[1], *hash = NULL;
    int n, admin = 0, from_stdin = 0, rc;
    const cli_opt_t opts[] = {{"--admin", NULL, &admin}, {"--password-stdin", NULL, &from_stdin}, {NULL}};
    if ((rc = cli_args(argc, argv, opts, pos, 1, 1, &n)) != 0)
        return rc;
    if (!accounts_name_valid(pos[0]))
        return cli_usage_error(
            "invalid user name %s: lowercase letters and digits, separated by . _ __ or -, at most %d", pos[0],
            ACCOUNT_NAME_MAX);
    /* hash before the write lock: yescrypt takes a while */
    if ((rc = cli_password_hash(from_stdin, &hash)) != 0 || (rc = cli_open(c, 1)) != 0)
        goto Exit;
    switch (accounts_user_add(c->m, pos[0], hash, admin)) {
    case 0:
        if ((rc = cli_audit(c, "user.add", NULL, pos[0], admin ? "administrator" : NULL)) == 0 &&
            (rc = cli_commit(c)) == 0)
            printf("added user %s%s\n", pos[0], admin ? " (administrator)" : "");
        break;
    case BERTH_EEXISTS:
        rc = cli_fail("the name %s is taken", pos[0]);
        break;
    default:
        rc = cli_fail("cannot add user %s", pos[0]);
        break;
    }
Exit:
    free(hash);
    return cli_rollback(c, rc);
}

static int user_passwd(cli_t *c, int argc, char **argv)
{
    char *pos[1], *hash = NULL;
    int n, from_stdin = 0, rc;
    const cli_opt_t opts[] = {{"--password-stdin", NULL, &from_stdin}, {NULL}};
    if ((rc = cli_args(argc, argv, opts, pos, 1, 1, &n)) != 0)
        return rc;
    if ((rc = cli_password_hash(from_stdin, &hash)) != 0 || (rc = cli_open(c, 1)) != 0)
        goto Exit;
    switch (accounts_user_set_password(c->m, pos[0], hash)) {
    case 0:
        if ((rc = cli_audit(c, "user.passwd", NULL, pos[0], NULL)) == 0 && (rc = cli_commit(c)) == 0)
            printf("changed the password of %s\n", pos[0]);
        break;
    case BERTH_ENOTFOUND:
        rc = cli_fail("no user %s", pos[0]);
        break;
    default:
        rc = cli_fail("cannot change the password of %s", pos[0]);
        break;
    }
Exit:
    free(hash);
    return cli_rollback(c, rc);
}

/* del, disable, enable: one name, one call */
static int user_simple(cli_t *c, int argc, char **argv)
{
    char *pos[1];
    int n, rc;
    if ((rc = cli_args(argc, argv, NULL, pos, 1, 1, &n)) != 0)
        return rc;
    if ((rc = cli_open(c, 1)) != 0)
        return rc;
    const char *what = argv[0];
    if (strcmp(what, "del") == 0)
        rc = accounts_user_delete(c->m, pos[0]);
    else
        rc = accounts_user_set_disabled(c->m, pos[0], strcmp(what, "disable") == 0);
    if (rc == BERTH_ENOTFOUND)
        return cli_rollback(c, cli_fail("no user or robot %s", pos[0]));
    if (rc != 0)
        return cli_rollback(c, cli_fail("cannot %s %s", what, pos[0]));
    char action[32];
    snprintf(action, sizeof(action), "user.%s", what);
    if ((rc = cli_audit(c, action, NULL, pos[0], NULL)) != 0)
        return cli_rollback(c, rc);
    if ((rc = cli_commit(c)) == 0)
        printf("%s %s\n",
               strcmp(what, "del") == 0       ? "deleted"
               : strcmp(what, "disable") == 0 ? "disabled"
                                              : "enabled",
               pos[0]);
    return rc;
}

static void list_one(void *ctx, const account_t *a)
{
    printf("%s\t%s\t%s\t%s\n", a->name, kind_name(a->kind), a->admin ? "yes" : "no", a->disabled ? "yes" : "no");
}

static int user_list(cli_t *c, int argc, char **argv)
{
    int n, rc;
    if ((rc = cli_args(argc, argv, NULL, NULL, 0, 0, &n)) != 0)
        return rc;
    if ((rc = cli_open(c, 0)) != 0)
        return rc;
    printf("NAME\tKIND\tADMIN\tDISABLED\n");
    if (accounts_list(c->m, list_one, NULL) < 0)
        return cli_rollback(c, cli_fail("cannot list the accounts"));
    return cli_commit(c);
}

typedef struct {
    long line;
    char *user, *hash;
} entry_t;

/*
 * Import an htpasswd file (bcrypt entries, as `htpasswd -B` writes them; yescrypt too): new names become users,
 * existing users get the file's hash. Lines berth cannot use are reported by number (never with their content,
 * which holds a hash) and skipped; the rest is imported in one transaction.
 */
static int user_import(cli_t *c, int argc, char **argv)
{
    char *pos[1], *line = NULL;
    size_t cap = 0, nent = 0, i;
    entry_t *ent = NULL;
    long lineno = 0, skipped = 0, added = 0, updated = 0, same = 0;
    int n, rc;
    FILE *f;
    if ((rc = cli_args(argc, argv, NULL, pos, 1, 1, &n)) != 0)
        return rc;
    const char *file = pos[0];
    if ((f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r")) == NULL)
        return cli_fail("cannot open %s: %s", file, strerror(errno));
    while (getline(&line, &cap, f) >= 0) {
        char *user, *hash;
        ++lineno;
        int r = password_htpasswd_line(line, &user, &hash);
        if (r == 1)
            continue;
        if (r != 0) {
            fprintf(stderr,
                    "berth: %s:%ld: unsupported or malformed entry (berth takes bcrypt and yescrypt hashes), "
                    "skipped\n",
                    file, lineno);
            ++skipped;
            continue;
        }
        if (!accounts_name_valid(user)) {
            fprintf(stderr, "berth: %s:%ld: invalid user name, skipped\n", file, lineno);
            ++skipped;
            free(user);
            free(hash);
            continue;
        }
        ent = realloc(ent, (nent + 1) * sizeof(*ent));
        ent[nent++] = (entry_t){lineno, user, hash};
    }
    int read_error = ferror(f);
    if (f != stdin)
        fclose(f);
    free(line);
    if (read_error) {
        rc = cli_fail("cannot read %s", file);
        goto Exit;
    }
    if ((rc = cli_open(c, 1)) != 0)
        goto Exit;
    for (i = 0; i < nent; ++i) {
        account_t a;
        int r = accounts_get(c->m, ent[i].user, &a);
        if (r == BERTH_ENOTFOUND) {
            if ((r = accounts_user_add(c->m, ent[i].user, ent[i].hash, 0)) == 0)
                ++added;
        } else if (r == 0) {
            if (a.kind != ACCOUNT_USER) {
                fprintf(stderr, "berth: %s:%ld: %s is a%s %s, skipped\n", file, ent[i].line, ent[i].user,
                        a.kind == ACCOUNT_ORG ? "n" : "", a.kind == ACCOUNT_ORG ? "organisation" : "robot");
                ++skipped;
            } else if (a.password_hash != NULL && strcmp(a.password_hash, ent[i].hash) == 0) {
                ++same; /* unchanged: no need to end its sessions */
            } else if ((r = accounts_user_set_password(c->m, ent[i].user, ent[i].hash)) == 0) {
                ++updated;
            }
            account_dispose(&a);
        }
        if (r < 0) {
            rc = cli_rollback(c, cli_fail("cannot import %s (line %ld): nothing imported", file, ent[i].line));
            goto Exit;
        }
    }
    char detail[128];
    snprintf(detail, sizeof(detail), "%ld added, %ld updated", added, updated);
    if ((rc = cli_audit(c, "user.import", NULL, file, detail)) != 0 || (rc = cli_commit(c)) != 0)
        goto Exit;
    printf("imported %s: %ld added, %ld updated, %ld unchanged, %ld skipped\n", file, added, updated, same, skipped);
    rc = skipped ? CLI_FAIL : 0;
Exit:
    for (i = 0; i < nent; ++i) {
        free(ent[i].user);
        free(ent[i].hash);
    }
    free(ent);
    return rc;
}

int cli_user(cli_t *c, int argc, char **argv)
{
    const char *sub = argv[0];
    if (strcmp(sub, "add") == 0)
        return user_add(c, argc, argv);
    if (strcmp(sub, "passwd") == 0)
        return user_passwd(c, argc, argv);
    if (strcmp(sub, "del") == 0 || strcmp(sub, "disable") == 0 || strcmp(sub, "enable") == 0)
        return user_simple(c, argc, argv);
    if (strcmp(sub, "list") == 0)
        return user_list(c, argc, argv);
    if (strcmp(sub, "import-htpasswd") == 0)
        return user_import(c, argc, argv);
    return cli_usage_error("user: unknown subcommand %s", sub);
}
