/* The site administrator berth creates at its first start. */
#ifndef BERTH_AUTH_ADMIN_H
#define BERTH_AUTH_ADMIN_H

#include "store/metastore.h"

/**
 * Create the account "admin" (a user and administrator) if no account of that name exists, with
 * password_hash(password), or, when `password` is NULL or empty and `generated` is non-NULL, with a generated
 * password (secret_random(18)) returned malloc'd in *generated (shown once by the caller, who frees it; NULL
 * otherwise). With neither, nothing is created. Returns 1 if created, 0 if it existed (or nothing was created),
 * BERTH_ERROR.
 */
int admin_ensure(metastore_t *m, const char *password, char **generated);

#endif
