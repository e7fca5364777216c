/* Shared by the administration commands (the files of src/cli/); not used outside src/cli/. */
#ifndef BERTH_CLI_CLI_INT_H
#define BERTH_CLI_CLI_INT_H

#include "store/accounts.h"
#include "config/config.h"

typedef struct {
    config_t *cfg;
    metastore_t *m; /* opened by cli_open */
    int in_tx;
} cli_t;

/* Exit statuses */
#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2

/** Print "berth: <message>" to stderr; returns CLI_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** Print "berth: <message>" and a hint to see `berth help` to stderr; returns CLI_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/**
 * Split argv into positional arguments and options. `opts` is terminated by a NULL name; an option with `value`
 * takes an argument ("--x V" or "--x=V"), one with `flag` is a switch. "--" ends the options. Returns 0, or
 * CLI_USAGE (reported) for an unknown option, a missing value, or a number of positional arguments outside
 * [minpos, maxpos].
 */
typedef struct {
    const char *name; /* "--admin" */
    const char **value;
    int *flag;
} cli_opt_t;
int cli_args(int argc, char **argv, const cli_opt_t *opts, char **pos, int minpos, int maxpos, int *npos);

/** Open the database (creating and migrating it), make sure of the admin account, then BEGIN (IMMEDIATE when
 * `write`). 0 or CLI_FAIL (reported). */
int cli_open(cli_t *c, int write);
/** COMMIT: 0 or CLI_FAIL (reported). */
int cli_commit(cli_t *c);
/** Record `action` (on `repo`, `reference`, with `detail`; any may be NULL) in the audit log inside the open write
 * transaction, the actor "cli:<unix user>" from "local": 0 or CLI_FAIL (reported). */
int cli_audit(cli_t *c, const char *action, const char *repo, const char *reference, const char *detail);
/** ROLLBACK if a transaction is open, then return `status`. */
int cli_rollback(cli_t *c, int status);

/** A new password: from one line of standard input (with `from_stdin`) or typed twice on the terminal. The
 * malloc'd hash (yescrypt) in *hash; 0, CLI_FAIL or CLI_USAGE (reported). */
int cli_password_hash(int from_stdin, char **hash);

/** Parse "pull", "push,delete", "*"…: ACTION_* bits, or 0 if an item is unknown or none is given. */
unsigned cli_actions_parse(const char *s);

int cli_user(cli_t *c, int argc, char **argv);
int cli_org(cli_t *c, int argc, char **argv);
int cli_robot(cli_t *c, int argc, char **argv);
int cli_team(cli_t *c, int argc, char **argv);
int cli_repo(cli_t *c, int argc, char **argv);
int cli_token(cli_t *c, int argc, char **argv);
int cli_fsck(cli_t *c, int argc, char **argv); /* argv[0] is "fsck" */
int cli_gc(cli_t *c, int argc, char **argv);   /* argv[0] is "gc" */
int cli_retention(cli_t *c, int argc, char **argv);
int cli_quota(cli_t *c, int argc, char **argv);
int cli_du(cli_t *c, int argc, char **argv);         /* argv[0] is "du" */
int cli_backup(cli_t *c, int argc, char **argv);     /* argv[0] is "backup" */
int cli_restore(cli_t *c, int argc, char **argv);    /* argv[0] is "restore" */
int cli_import(cli_t *c, int argc, char **argv);     /* argv[0] is "import" */
int cli_replicate(cli_t *c, int argc, char **argv);  /* argv[0] is "replicate" */
int cli_audit_list(cli_t *c, int argc, char **argv); /* argv[0] is "audit" */

#endif
