#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "auth/admin.h"
#include "auth/password.h"
#include "store/accounts.h"
#include "util/secret.h"
#include "util/status.h"

int admin_ensure(metastore_t *m, const char *password, char **generated)
{
    char *secret = NULL, *hash = NULL;
    account_t a;
    int rc;

    if (generated)
        *generated = NULL;
    if ((rc = accounts_get(m, "admin", &a)) != BERTH_ENOTFOUND) {
        if (rc == 0)
            account_dispose(&a);
        return rc; /* 0: it exists (whatever its kind); or an error */
    }
    if (password != NULL && password[0] == '\0')
        password = NULL;
    if (password == NULL && generated == NULL)
        return 0;
    if (password == NULL && (password = secret = secret_random(18)) == NULL)
        return BERTH_ERROR;
    if ((hash = password_hash(password)) == NULL) {
        rc = BERTH_ERROR;
        goto Exit;
    }
    rc = accounts_user_add(m, "admin", hash, 1);
    if (rc == BERTH_EEXISTS)
        rc = 0; /* another process made it meanwhile */
    else if (rc == 0)
        rc = 1;
    if (rc == 1 && secret != NULL) {
        *generated = secret;
        secret = NULL;
    }
Exit:
    if (secret) {
        OPENSSL_cleanse(secret, strlen(secret));
        free(secret);
    }
    free(hash);
    return rc;
}
