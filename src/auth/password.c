/*
 * Passwords with libxcrypt's reentrant interface (crypt_ra keeps its state in a buffer we own, so any thread may hash),
 * and random secrets from OpenSSL's CSPRNG.
 */
#include <crypt.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include "auth/password.h"
#include "util/secret.h"

/* crypt_ra's buffer holds the password-derived state: clear it before it goes back to malloc. */
static void crypt_data_free(void *data, int size)
{
    if (data != NULL)
        OPENSSL_cleanse(data, (size_t)size);
    free(data);
}

char *password_hash(const char *password)
{
    char *salt = NULL, *out = NULL;
    const char *h;
    void *data = NULL;
    int size = 0;

    if (password == NULL || (salt = crypt_gensalt_ra("$y$", 0, NULL, 0)) == NULL)
        goto Exit;
    /* Failure is NULL or, in some builds, a string starting with '*': never store either. */
    if ((h = crypt_ra(password, salt, &data, &size)) != NULL && h[0] == '$')
        out = strdup(h);
Exit:
    crypt_data_free(data, size);
    free(salt);
    return out;
}

int password_verify(const char *password, const char *hash)
{
    const char *h;
    void *data = NULL;
    int size = 0, ok = 0;

    if (password == NULL || hash == NULL || hash[0] == '\0')
        return 0;
    /* Compare whole outputs: crypt re-derives the same setting prefix, so equal means the same hash, and a
     * failure token ("*0") can never equal a stored hash that starts with '$'. */
    if ((h = crypt_ra(password, hash, &data, &size)) != NULL && h[0] != '*')
        ok = secret_equal(h, strlen(h), hash, strlen(hash));
    crypt_data_free(data, size);
    return ok;
}

static int is_crypt64(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '/';
}

int password_hash_supported(const char *hash)
{
    size_t len;

    if (hash == NULL)
        return 0;
    len = strlen(hash);
    if (strncmp(hash, "$2a$", 4) == 0 || strncmp(hash, "$2b$", 4) == 0 || strncmp(hash, "$2y$", 4) == 0) {
        /* "$2y$NN$" + 22 characters of salt + 31 of hash */
        if (len != 60 || hash[4] < '0' || hash[4] > '3' || hash[5] < '0' || hash[5] > '9' || hash[6] != '$')
            return 0;
        if ((hash[4] - '0') * 10 + (hash[5] - '0') < 4 || (hash[4] - '0') * 10 + (hash[5] - '0') > 31)
            return 0;
        for (size_t i = 7; i < len; ++i)
            if (!is_crypt64(hash[i]))
                return 0;
        return 1;
    }
    if (strncmp(hash, "$y$", 3) == 0) {
        /* "$y$<params>$<salt>$<hash>": the hash part must be there (a bare setting would match nothing) */
        const char *last = strrchr(hash, '$');
        size_t dollars = 0;
        for (size_t i = 0; i < len; ++i) {
            if (hash[i] == '$')
                ++dollars;
            else if (!is_crypt64(hash[i]))
                return 0;
        }
        return dollars == 4 && last[1] != '\0' && crypt_checksalt(hash) == CRYPT_SALT_OK;
    }
    return 0;
}

int password_htpasswd_line(const char *line, char **user, char **hash)
{
    const char *p = line, *colon, *end;

    *user = *hash = NULL;
    while (*p == ' ' || *p == '\t')
        ++p;
    if (*p == '\0' || *p == '\n' || *p == '\r' || *p == '#')
        return 1;
    /* the line as given, without its line ending or trailing blanks */
    end = p + strlen(p);
    while (end > p && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
        --end;
    if ((colon = memchr(p, ':', (size_t)(end - p))) == NULL || colon == p)
        return -1;
    *hash = strndup(colon + 1, (size_t)(end - colon - 1));
    if (!password_hash_supported(*hash)) { /* $apr1$ (MD5), {SHA}, plain crypt: too weak or not crypt(3) at all */
        free(*hash);
        *hash = NULL;
        return -1;
    }
    *user = strndup(p, (size_t)(colon - p));
    return 0;
}
