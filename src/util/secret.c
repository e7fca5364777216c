/* Random secrets and constant-time comparison (util/secret.h). */
#include <stdlib.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include "util/secret.h"

char *secret_random(size_t nbytes)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char *raw;
    char *out;
    size_t o = 0, i = 0;

    if (nbytes > 1024 * 1024)
        return NULL;
    raw = malloc(nbytes + 1);
    out = malloc((nbytes + 2) / 3 * 4 + 1);
    if (raw == NULL || out == NULL || RAND_bytes(raw, (int)nbytes) != 1) {
        free(raw);
        free(out);
        return NULL;
    }
    for (; i + 3 <= nbytes; i += 3) {
        unsigned v = (unsigned)raw[i] << 16 | (unsigned)raw[i + 1] << 8 | raw[i + 2];
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = abc[(v >> 6) & 63];
        out[o++] = abc[v & 63];
    }
    if (nbytes - i == 1) {
        unsigned v = (unsigned)raw[i] << 16;
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
    } else if (nbytes - i == 2) {
        unsigned v = (unsigned)raw[i] << 16 | (unsigned)raw[i + 1] << 8;
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = abc[(v >> 6) & 63];
    }
    out[o] = '\0';
    OPENSSL_cleanse(raw, nbytes);
    free(raw);
    return out;
}

int secret_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    /* the lengths are not secret (a hash's length follows from its scheme); the bytes are */
    return (CRYPTO_memcmp(a, b, n) == 0) & (alen == blen);
}
