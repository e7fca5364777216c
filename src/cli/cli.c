/*
 * The administration commands' common part: dispatch, argument parsing, the database connection and its
 * transaction, reading passwords. Passwords never come from argv (other users see it in ps and /proc).
 */
#include <errno.h>
#include <pwd.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include "auth/admin.h"
#include "auth/password.h"
#include "cli/cli.h"
#include "cli/cli_int.h"
#include "store/audit.h"
#include "store/store.h"
#include "util/status.h"

static const struct {
    const char *name;
    int (*fn)(cli_t *c, int argc, char **argv);
    int whole; /* no subcommand: fn's argv[0] is the command itself */
} commands[] = {
    {"user", cli_user, 0},        {"org", cli_org, 0},       {"robot", cli_robot, 0},
    {"team", cli_team, 0},        {"repo", cli_repo, 0},     {"token", cli_token, 0},
    {"fsck", cli_fsck, 1},        {"gc", cli_gc, 1},         {"retention", cli_retention, 0},
    {"quota", cli_quota, 0},      {"du", cli_du, 1},         {"backup", cli_backup, 1},
    {"restore", cli_restore, 1},  {"import", cli_import, 1}, {"replicate", cli_replicate, 1},
    {"audit", cli_audit_list, 1},
};

static const char *cur_cmd = "berth"; /* for messages: "user add: …" */

static const char *const synopsis[] = {
    "berth user add NAME [--admin] [--password-stdin]",
    "berth user passwd NAME [--password-stdin]",
    "berth user del|disable|enable NAME",
    "berth user list",
    "berth user import-htpasswd FILE     (bcrypt entries; existing users are updated)",
    "berth org add NAME",
    "berth robot add NAME",
    "berth team add ORG TEAM [--permission pull|push|delete|pull,push|...]",
    "berth team member ORG TEAM USER [--remove]",
    "berth repo visibility REPO public|private",
    "berth repo grant REPO|NS/*|* USER|ORG/TEAM ACTIONS",
    "berth repo revoke REPO|NS/*|* USER|ORG/TEAM",
    "berth token create OWNER NAME --scope \"repository:NS/*:pull ...\" [--expires 30d]",
    "berth token list [OWNER]",
    "berth token revoke ID",
    "berth fsck [--verify] [--repair] [--grace 1h]   (check the storage; exit 0 clean, 1 findings, 2 error)",
    "berth gc [--dry-run] [--blob-grace 24h] [--untagged-grace 7d]   (remove what nothing references)",
    "berth retention list                (the retention and immutable-tags rules, and what they cover)",
    "berth retention run [--dry-run]     (remove the tags the retention rules do not keep)",
    "berth quota list                    (namespaces' quotas and usage)",
    "berth quota set NAMESPACE SIZE      (50GiB, 500MB...; 0 or none removes the quota)",
    "berth du [NAMESPACE|REPOSITORY]     (bytes used: unique and shared)",
    "berth backup FILE.tar.zst [--since PREVIOUS.tar.zst] [--threads N] [--level N]   (- : standard output)",
    "berth restore FULL.tar.zst [INCREMENTAL.tar.zst...]   (into an empty storage root)",
    "berth import [--copy] [--jobs N] DIR (a docker-registry's rootdirectory: repositories, tags, manifests, blobs)",
    "berth replicate [RULE] [--dry-run]  (run the replication rules once: push to or pull from other registries)",
    "berth audit [--since 24h|2026-01-31[T12:00:00Z]] [--repo NAME|NS/*] [--user NAME] [--json]   (the audit log)",
};

/* The synopsis lines of command `cmd` (all of them when NULL). */
static void usage_of(FILE *out, const char *cmd)
{
    size_t len = cmd ? strlen(cmd) : 0;
    for (size_t i = 0; i < sizeof(synopsis) / sizeof(synopsis[0]); ++i)
        if (cmd == NULL || (strncmp(synopsis[i] + 6, cmd, len) == 0 && synopsis[i][6 + len] == ' '))
            fprintf(out, "       %s\n", synopsis[i]);
}

void cli_usage(FILE *out)
{
    usage_of(out, NULL);
    fprintf(
        out,
        "Passwords are typed twice on the terminal, or given as one line on standard input with --password-stdin.\n");
}

int cli_is_command(const char *cmd)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); ++i)
        if (strcmp(cmd, commands[i].name) == 0)
            return 1;
    return 0;
}

int cli_main(const char *cmd, int argc, char **argv, config_t *cfg)
{
    cli_t c = {cfg, NULL, 0};
    int status = CLI_USAGE;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); ++i) {
        if (strcmp(cmd, commands[i].name) != 0)
            continue;
        cur_cmd = cmd;
        if (commands[i].whole) {
            char **args = calloc((size_t)argc + 2, sizeof(*args));
            args[0] = (char *)cmd;
            memcpy(args + 1, argv, (size_t)argc * sizeof(*argv));
            status = commands[i].fn(&c, argc + 1, args);
            free(args);
            break;
        }
        if (argc < 1)
            return cli_usage_error("%s: a subcommand is needed", cmd);
        if (strcmp(argv[0], "help") == 0 || strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0) {
            cli_usage(stdout);
            return CLI_OK;
        }
        status = commands[i].fn(&c, argc, argv);
        break;
    }
    if (c.in_tx)
        cli_rollback(&c, 0);
    metastore_close(c.m);
    return status;
}

static void vreport(const char *fmt, va_list ap)
{
    fputs("berth: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int cli_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(fmt, ap);
    va_end(ap);
    return CLI_FAIL;
}

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(fmt, ap);
    va_end(ap);
    fputs("usage:\n", stderr);
    usage_of(stderr, strcmp(cur_cmd, "berth") == 0 ? NULL : cur_cmd);
    return CLI_USAGE;
}

int cli_args(int argc, char **argv, const cli_opt_t *opts, char **pos, int minpos, int maxpos, int *npos)
{
    int n = 0, options = 1;
    char sub[64] = ""; /* " add" after "user"; nothing after a command without subcommands (fsck) */
    if (strcmp(argv[0], cur_cmd) != 0)
        snprintf(sub, sizeof(sub), " %s", argv[0]);
    for (int i = 1; i < argc; ++i) { /* argv[0] is the subcommand */
        const char *a = argv[i];
        if (options && strcmp(a, "--") == 0) {
            options = 0;
            continue;
        }
        if (!options || a[0] != '-' || a[1] == '\0') { /* "-" alone is an argument (standard input) */
            if (n >= maxpos)
                return cli_usage_error("%s%s: too many arguments", cur_cmd, sub);
            pos[n++] = argv[i];
            continue;
        }
        const cli_opt_t *o = opts;
        size_t len = strcspn(a, "=");
        for (; o && o->name; ++o)
            if (strlen(o->name) == len && strncmp(a, o->name, len) == 0)
                break;
        if (o == NULL || o->name == NULL)
            return cli_usage_error("%s%s: unknown option %.*s", cur_cmd, sub, (int)len, a);
        if (o->value) {
            if (a[len] == '=')
                *o->value = a + len + 1;
            else if (i + 1 < argc)
                *o->value = argv[++i];
            else
                return cli_usage_error("%s%s: %s needs a value", cur_cmd, sub, o->name);
        } else {
            if (a[len] == '=')
                return cli_usage_error("%s%s: %s takes no value", cur_cmd, sub, o->name);
            *o->flag = 1;
        }
    }
    if (n < minpos)
        return cli_usage_error("%s%s: missing arguments", cur_cmd, sub);
    *npos = n;
    return 0;
}

int cli_open(cli_t *c, int write)
{
    char path[4096];
    if (store_db_create(c->cfg->storage_root, path, sizeof(path)) != 0)
        return cli_fail("cannot create %s/berth.db: %s", c->cfg->storage_root, strerror(errno));
    if ((c->m = metastore_open(path, 1)) == NULL)
        return cli_fail("cannot open the database %s", path);
    /* the CLI never generates the admin password (it would have nowhere safe to show it) */
    int rc = admin_ensure(c->m, c->cfg->admin_password, NULL);
    if (rc < 0)
        return cli_fail("cannot create the admin account");
    if (rc == 1)
        fprintf(stderr, "berth: created the site administrator \"admin\" with the configured admin_password\n");
    const char *err;
    if (metastore_begin(c->m, write, &err) != 0)
        return cli_fail("cannot start a transaction on %s: %s", path, err);
    c->in_tx = 1;
    return 0;
}

int cli_commit(cli_t *c)
{
    const char *err;
    if (metastore_commit(c->m, &err) != 0) {
        int rc = cli_fail("cannot commit: %s", err);
        return cli_rollback(c, rc);
    }
    c->in_tx = 0;
    return 0;
}

int cli_audit(cli_t *c, const char *action, const char *repo, const char *reference, const char *detail)
{
    char actor[96];
    struct passwd *pw = getpwuid(geteuid());
    if (pw != NULL)
        snprintf(actor, sizeof(actor), "cli:%s", pw->pw_name);
    else
        snprintf(actor, sizeof(actor), "cli:%u", (unsigned)geteuid());
    audit_record_t r = {.actor = actor,
                        .action = action,
                        .repository = repo,
                        .reference = reference,
                        .address = "local",
                        .detail = detail};
    return audit_insert(c->m, &r) == 0 ? 0 : cli_fail("cannot record %s in the audit log", action);
}

int cli_rollback(cli_t *c, int status)
{
    if (c->in_tx && c->m)
        metastore_rollback(c->m);
    c->in_tx = 0;
    return status;
}

unsigned cli_actions_parse(const char *s)
{
    unsigned actions = 0;
    while (*s) {
        size_t len = strcspn(s, ",");
        unsigned a = scope_action_parse(s, len);
        if (a == 0)
            return 0;
        actions |= a;
        s += len + (s[len] == ',');
    }
    return actions;
}

/* ---- passwords ---- */

static void line_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* One line of `f` without its line ending (LF, CRLF); NULL at end of input. */
static char *line_read(FILE *f)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    if (n < 0) {
        if (line)
            OPENSSL_cleanse(line, cap);
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    return line;
}

static struct termios saved_tty;
static volatile sig_atomic_t tty_changed;

/* Ctrl-C while echo is off: put the terminal back before dying. */
static void tty_signal(int sig)
{
    if (tty_changed)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
    signal(sig, SIG_DFL);
    raise(sig);
}

static char *tty_prompt(const char *prompt)
{
    struct termios t;
    struct sigaction sa = {0}, old_int, old_term;
    char *line;

    if (tcgetattr(STDIN_FILENO, &saved_tty) != 0)
        return NULL;
    sa.sa_handler = tty_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    t = saved_tty;
    t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    /* echo off (flushing what was typed ahead) before the prompt: what is typed after it is kept */
    tty_changed = tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) == 0;
    fputs(prompt, stderr);
    fflush(stderr);
    line = line_read(stdin);
    if (tty_changed)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
    tty_changed = 0;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    fputc('\n', stderr);
    return line;
}

int cli_password_hash(int from_stdin, char **hash)
{
    char *pw = NULL, *again = NULL;
    int rc = CLI_FAIL;
    *hash = NULL;
    if (from_stdin) {
        if ((pw = line_read(stdin)) == NULL) {
            rc = cli_fail("no password on standard input");
            goto Exit;
        }
    } else if (isatty(STDIN_FILENO)) {
        if ((pw = tty_prompt("Password: ")) == NULL || (again = tty_prompt("Retype password: ")) == NULL) {
            rc = cli_fail("cannot read the password");
            goto Exit;
        }
        if (strcmp(pw, again) != 0) {
            rc = cli_fail("the passwords do not match");
            goto Exit;
        }
    } else {
        fputs("berth: standard input is not a terminal: give the password on it with --password-stdin\n", stderr);
        rc = CLI_USAGE;
        goto Exit;
    }
    if (pw[0] == '\0') {
        rc = cli_fail("empty passwords are refused");
        goto Exit;
    }
    if (strncmp(pw, "berth_", 6) == 0) { /* logins read such a secret as an access token, never as a password */
        rc = cli_fail("passwords may not begin with \"berth_\" (the prefix of access tokens)");
        goto Exit;
    }
    if ((*hash = password_hash(pw)) == NULL) {
        rc = cli_fail("cannot hash the password");
        goto Exit;
    }
    rc = 0;
Exit:
    line_free(pw);
    line_free(again);
    return rc;
}
