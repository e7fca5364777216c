/*
 * Passwords and secrets: hashing with libcrypt (yescrypt by default; bcrypt "$2y$"/"$2b$" hashes, as
 * `htpasswd -B` writes them, are verified too), constant-time comparison, random secrets.
 * Hashing is slow on purpose (yescrypt at libxcrypt's default cost: ~70 ms and 16 MiB per call measured on the 2-vCPU
 * development machine): never call these on an event loop. All functions are thread-safe.
 */
#ifndef BERTH_AUTH_PASSWORD_H
#define BERTH_AUTH_PASSWORD_H

#include <stddef.h>

/** Hash `password` with yescrypt and a fresh salt; malloc'd "$y$…" string, or NULL. */
char *password_hash(const char *password);

/** 1 if `password` matches `hash` (yescrypt, bcrypt, or any scheme libcrypt knows), else 0. Constant-time compare. */
int password_verify(const char *password, const char *hash);

/** 1 if `hash` uses a scheme berth accepts for storage or import (yescrypt "$y$", bcrypt "$2a$/$2b$/$2y$"). */
int password_hash_supported(const char *hash);

/**
 * Parse one htpasswd line "user:hash" into freshly malloc'd *user and *hash (the line ending and trailing blanks are
 * dropped). Blank lines and comments give 1 (skip); 0 on success; -1 if malformed (no colon, empty user, unsupported
 * scheme such as MD5 "$apr1$" or crypt/SHA1). *user and *hash are NULL unless 0 is returned.
 */
int password_htpasswd_line(const char *line, char **user, char **hash);

#endif
