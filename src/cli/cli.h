/*
 * The administration commands: `berth user|org|robot|team|repo|token …`. They work on <storage.root>/berth.db
 * through their own SQLite connection, each command in one BEGIN IMMEDIATE transaction (with the metastore's busy
 * timeout), so they run while `berth serve` runs on the same data; the server notices through the auth generation.
 * `berth fsck` checks the whole storage root (store/fsck.h), also while the server runs.
 */
#ifndef BERTH_CLI_CLI_H
#define BERTH_CLI_CLI_H

#include <stdio.h>
#include "config/config.h"

/** 1 if `cmd` is one of the administration commands (user, org, robot, team, repo, token, fsck). */
int cli_is_command(const char *cmd);

/**
 * Run administration command `cmd` with its arguments (argv[0] is the subcommand, e.g. "add"; `-c FILE` already
 * removed). Returns the exit status: 0, 1 on failure (message on stderr), 2 on a usage error (fsck: 1 findings left,
 * 2 the check could not run).
 */
int cli_main(const char *cmd, int argc, char **argv, config_t *cfg);

/** Print the administration commands' synopsis. */
void cli_usage(FILE *out);

#endif
