/*
 * Registry tokens: ES256 JWTs signed and verified through libjwt 1.10, with everything libjwt does not check done
 * here. Measured on the Debian 12 build (1.10.2-1+deb12u1), jwt_decode():
 *   - accepts HS256 HMAC'd with the public PEM as secret, ES384 signed by a P-256 key and ES256 signed by a P-384 key;
 *   - skips the signature check when the key is NULL *or its length is 0* (an unsigned token then decodes);
 *   - accepts junk after the signature ("…sig===", "…sig\n");
 *   - checks no claim at all; jwt_get_grant_int() returns 0 for a string claim, without an error.
 * So the header is parsed here first (alg must be exactly ES256, kid picks the key), the token's shape is checked
 * strictly (three base64url segments, a 64-byte R||S signature), the key is always a non-empty P-256 public PEM,
 * and the claims are read with their JSON types from jwt_get_grants_json().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include "auth/token.h"
#include "oci/name.h"

#define TOKEN_MAX_LEN 8192         /* longest token looked at; berth's own are well under 2 KiB */
#define KEY_FILE_MAX (1024 * 1024) /* a PEM key or a JWKS document */
#define COORD_LEN 32               /* P-256 coordinate */
#define COORD_B64_LEN 43           /* its base64url */
#define SIG_LEN 64                 /* ES256 signature: R || S */

_Static_assert(sizeof(long) >= sizeof(int64_t), "libjwt's integer claims are long: 64-bit times need LP64");

static const char b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int fail(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(char **err, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL) {
        va_start(ap, fmt);
        if (vasprintf(err, fmt, ap) < 0)
            *err = NULL;
        va_end(ap);
    }
    return -1;
}

/* Base64url without padding into dst (room for 4 * ceil(len / 3) + 1); returns the length written. */
static size_t b64url_encode(char *dst, const unsigned char *src, size_t len)
{
    size_t o = 0, i = 0;

    for (; i + 3 <= len; i += 3) {
        unsigned v = (unsigned)src[i] << 16 | (unsigned)src[i + 1] << 8 | src[i + 2];
        dst[o++] = b64url_alphabet[v >> 18];
        dst[o++] = b64url_alphabet[(v >> 12) & 63];
        dst[o++] = b64url_alphabet[(v >> 6) & 63];
        dst[o++] = b64url_alphabet[v & 63];
    }
    if (len - i == 1) {
        unsigned v = (unsigned)src[i] << 16;
        dst[o++] = b64url_alphabet[v >> 18];
        dst[o++] = b64url_alphabet[(v >> 12) & 63];
    } else if (len - i == 2) {
        unsigned v = (unsigned)src[i] << 16 | (unsigned)src[i + 1] << 8;
        dst[o++] = b64url_alphabet[v >> 18];
        dst[o++] = b64url_alphabet[(v >> 12) & 63];
        dst[o++] = b64url_alphabet[(v >> 6) & 63];
    }
    dst[o] = '\0';
    return o;
}

static int b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/*
 * Strict base64url: the alphabet only, no padding, unused trailing bits zero, so that a byte string has exactly one
 * encoding (libjwt's decoder is lax). Returns the decoded length, or -1 if malformed or longer than cap.
 */
static long b64url_decode(unsigned char *dst, size_t cap, const char *src, size_t len)
{
    size_t o = 0, i;
    unsigned acc = 0;
    int bits = 0;

    if (len % 4 == 1 || len / 4 * 3 + (len % 4 != 0 ? len % 4 - 1 : 0) > cap)
        return -1;
    for (i = 0; i < len; ++i) {
        int v = b64url_value(src[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6 | (unsigned)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            dst[o++] = (unsigned char)(acc >> bits);
        }
    }
    if ((acc & ((1u << bits) - 1)) != 0)
        return -1;
    return (long)o;
}

/* A jansson string equal to `s`, embedded NULs included ("svc\u0000x" is not "svc"). */
static int json_str_eq(const json_t *v, const char *s)
{
    size_t n = strlen(s);
    return json_is_string(v) && json_string_length(v) == n && memcmp(json_string_value(v), s, n) == 0;
}

/* Never prompt on a terminal for an encrypted PEM (OpenSSL's default callback does): refuse it. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    return -1;
}

static char *read_small_file(const char *path, size_t max, size_t *lenp)
{
    struct stat st;
    char *buf = NULL;
    size_t off = 0;
    int fd, saved;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return NULL;
    if (fstat(fd, &st) != 0)
        goto Error;
    if (!S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
        errno = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
        goto Error;
    }
    buf = malloc((size_t)st.st_size + 1);
    while (off < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + off, (size_t)st.st_size - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break; /* shrank under us: use what is there */
        off += (size_t)r;
    }
    buf[off] = '\0';
    close(fd);
    *lenp = off;
    return buf;
Error:
    saved = errno;
    free(buf);
    close(fd);
    errno = saved;
    return NULL;
}

static char *pem_string(EVP_PKEY *pkey, int private)
{
    BIO *bio = BIO_new(private ? BIO_s_secmem() : BIO_s_mem()); /* secmem: cleared when freed */
    char *data, *out = NULL;
    long len;

    if (bio == NULL)
        return NULL;
    if (private ? PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) : PEM_write_bio_PUBKEY(bio, pkey)) {
        if ((len = BIO_get_mem_data(bio, &data)) > 0 && (out = malloc((size_t)len + 1)) != NULL) {
            memcpy(out, data, (size_t)len);
            out[len] = '\0';
        }
    }
    BIO_free(bio);
    return out;
}

static int is_p256(EVP_PKEY *pkey)
{
    char group[64];
    size_t glen;
    int nid;

    if (!EVP_PKEY_is_a(pkey, "EC") ||
        !EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen))
        return 0; /* also a key with explicit curve parameters: it has no group name */
    if ((nid = OBJ_txt2nid(group)) == NID_undef)
        nid = EC_curve_nist2nid(group);
    return nid == NID_X9_62_prime256v1;
}

/* The public point's coordinates as base64url, each padded to 32 bytes first (BN_bn2bin drops leading zeros). */
static int p256_coords_b64(EVP_PKEY *pkey, char x[COORD_B64_LEN + 1], char y[COORD_B64_LEN + 1])
{
    BIGNUM *bx = NULL, *by = NULL;
    unsigned char bin[COORD_LEN];
    int ret = -1;

    if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &bx) ||
        !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &by))
        goto Exit;
    if (BN_bn2binpad(bx, bin, COORD_LEN) != COORD_LEN)
        goto Exit;
    b64url_encode(x, bin, COORD_LEN);
    if (BN_bn2binpad(by, bin, COORD_LEN) != COORD_LEN)
        goto Exit;
    b64url_encode(y, bin, COORD_LEN);
    ret = 0;
Exit:
    BN_free(bx);
    BN_free(by);
    return ret;
}

/* RFC 7638: SHA-256 of the required members in lexicographic order, no whitespace. */
static int jwk_thumbprint(char kid[64], const char *x, const char *y)
{
    char json[160];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen;
    int n = snprintf(json, sizeof(json), "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x, y);

    if (n < 0 || (size_t)n >= sizeof(json) || !EVP_Digest(json, (size_t)n, md, &mdlen, EVP_sha256(), NULL))
        return -1;
    b64url_encode(kid, md, mdlen); /* 43 characters */
    return 0;
}

/* Fill `key` (zeroed by the caller) from a P-256 `pkey`: PEMs, thumbprint, issuer. */
static int key_from_pkey(token_key_t *key, EVP_PKEY *pkey, int with_private, const char *issuer, char **err)
{
    char x[COORD_B64_LEN + 1], y[COORD_B64_LEN + 1];

    if (!is_p256(pkey))
        return fail(err, "not an EC P-256 key");
    if (p256_coords_b64(pkey, x, y) != 0 || jwk_thumbprint(key->kid, x, y) != 0)
        return fail(err, "cannot read the public point of the key");
    if ((key->public_pem = pem_string(pkey, 0)) == NULL)
        return fail(err, "cannot encode the public key");
    if (with_private && (key->private_pem = pem_string(pkey, 1)) == NULL)
        return fail(err, "cannot encode the private key");
    key->issuer = strdup(issuer);
    return 0;
}

static void key_dispose(token_key_t *key)
{
    free(key->public_pem);
    if (key->private_pem != NULL)
        OPENSSL_clear_free(key->private_pem, strlen(key->private_pem));
    free(key->issuer);
    memset(key, 0, sizeof(*key));
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len != 0) {
        ssize_t r = write(fd, p, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

/*
 * Make a new key at `path` unless another process gets there first: the key is complete and on disk in a temp file
 * before link() publishes it, and link() never replaces, so every process ends up reading the one key that won.
 */
static int key_create(const char *path, char **err)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash == NULL ? strdup(".") : slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
    char *tmp = NULL, *pem = NULL;
    EVP_PKEY *pkey = NULL;
    int fd = -1, dfd = -1, ret = -1;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fail(err, "cannot create %s: %s", dir, strerror(errno));
        goto Exit;
    }
    if ((pkey = EVP_EC_gen("P-256")) == NULL || (pem = pem_string(pkey, 1)) == NULL) {
        fail(err, "cannot generate a P-256 key");
        goto Exit;
    }
    if (asprintf(&tmp, "%s/.%s.XXXXXX", dir, slash == NULL ? path : slash + 1) < 0) {
        tmp = NULL;
        fail(err, "out of memory");
        goto Exit;
    }
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
        fail(err, "cannot create a file in %s: %s", dir, strerror(errno));
        free(tmp);
        tmp = NULL;
        goto Exit;
    }
    if (fchmod(fd, 0600) != 0 || write_all(fd, pem, strlen(pem)) != 0 || fsync(fd) != 0) {
        fail(err, "cannot write %s: %s", tmp, strerror(errno));
        goto Exit;
    }
    if (close(fd) != 0) {
        fd = -1;
        fail(err, "cannot write %s: %s", tmp, strerror(errno));
        goto Exit;
    }
    fd = -1;
    if (link(tmp, path) != 0 && errno != EEXIST) {
        fail(err, "cannot create %s: %s", path, strerror(errno));
        goto Exit;
    }
    /* Make the new name durable; when another process won, its own fsync covers it, and ours costs little. */
    if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fsync(dfd) != 0) {
        fail(err, "cannot sync %s: %s", dir, strerror(errno));
        goto Exit;
    }
    ret = 0;
Exit:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    if (tmp != NULL)
        unlink(tmp);
    if (pem != NULL)
        OPENSSL_clear_free(pem, strlen(pem));
    EVP_PKEY_free(pkey);
    free(tmp);
    free(dir);
    return ret;
}

int token_keys_init(token_keys_t *keys, const char *path, const char *issuer, const char *service, char **err)
{
    char *pem = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;
    int ret = -1;

    memset(keys, 0, sizeof(*keys));
    if (err != NULL)
        *err = NULL;
    if (issuer == NULL || *issuer == '\0' || service == NULL || *service == '\0') {
        fail(err, "token issuer and service must be set");
        goto Exit;
    }
    if ((pem = read_small_file(path, KEY_FILE_MAX, &len)) == NULL && errno == ENOENT) {
        if (key_create(path, err) != 0)
            goto Exit;
        pem = read_small_file(path, KEY_FILE_MAX, &len);
    }
    if (pem == NULL) {
        fail(err, "cannot read %s: %s", path, strerror(errno));
        goto Exit;
    }
    if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL ||
        (pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)) == NULL) {
        fail(err, "%s: not an unencrypted PEM private key", path);
        goto Exit;
    }
    if (key_from_pkey(&keys->own, pkey, 1, issuer, err) != 0) {
        char *inner = err != NULL ? *err : NULL;
        if (err != NULL)
            fail(err, "%s: %s", path, inner != NULL ? inner : "unusable key");
        free(inner);
        goto Exit;
    }
    keys->service = strdup(service);
    ret = 0;
Exit:
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    if (pem != NULL)
        OPENSSL_clear_free(pem, len);
    if (ret != 0) {
        token_keys_dispose(keys);
        ERR_clear_error();
    }
    return ret;
}

void token_keys_dispose(token_keys_t *keys)
{
    key_dispose(&keys->own);
    for (size_t i = 0; i < keys->nexternal; ++i)
        key_dispose(&keys->external[i]);
    free(keys->external);
    free(keys->service);
    memset(keys, 0, sizeof(*keys));
}

/* An EC P-256 public key from a JWK's x and y (already checked to be 32 bytes each); NULL if not on the curve. */
static EVP_PKEY *p256_from_coords(const unsigned char *x, const unsigned char *y)
{
    unsigned char point[1 + 2 * COORD_LEN];
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL, *check = NULL;
    EVP_PKEY *pkey = NULL;

    point[0] = 0x04; /* uncompressed */
    memcpy(point + 1, x, COORD_LEN);
    memcpy(point + 1 + COORD_LEN, y, COORD_LEN);
    if (bld == NULL || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, SN_X9_62_prime256v1, 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)) ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
        goto Exit;
    if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        goto Exit;
    if ((check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) == NULL || EVP_PKEY_public_check(check) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
Exit:
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return pkey;
}

/* One JWK of a JWKS: 0 stored in *key, 1 not an ES256 signing key (skipped), -1 malformed. */
static int jwk_to_key(token_key_t *key, json_t *jwk, const char *issuer, char **err)
{
    json_t *use = json_object_get(jwk, "use"), *alg = json_object_get(jwk, "alg"), *kid = json_object_get(jwk, "kid");
    json_t *x = json_object_get(jwk, "x"), *y = json_object_get(jwk, "y");
    unsigned char xb[COORD_LEN + 2], yb[COORD_LEN + 2];
    EVP_PKEY *pkey = NULL;
    int ret = -1;

    if (!json_str_eq(json_object_get(jwk, "kty"), "EC") || !json_str_eq(json_object_get(jwk, "crv"), "P-256") ||
        (use != NULL && !json_str_eq(use, "sig")) || (alg != NULL && !json_str_eq(alg, "ES256")))
        return 1;
    if (!json_is_string(x) || !json_is_string(y) ||
        b64url_decode(xb, sizeof(xb), json_string_value(x), json_string_length(x)) != COORD_LEN ||
        b64url_decode(yb, sizeof(yb), json_string_value(y), json_string_length(y)) != COORD_LEN)
        return fail(err, "EC key with malformed x or y");
    if (kid != NULL &&
        (!json_is_string(kid) || json_string_length(kid) == 0 || json_string_length(kid) >= sizeof(key->kid) ||
         strlen(json_string_value(kid)) != json_string_length(kid)))
        return fail(err, "EC key with an unusable kid (empty, or 64 characters or more)");
    if ((pkey = p256_from_coords(xb, yb)) == NULL) {
        fail(err, "EC key whose point is not on P-256");
        goto Exit;
    }
    if (key_from_pkey(key, pkey, 0, issuer, err) != 0)
        goto Exit;
    if (kid != NULL)
        memcpy(key->kid, json_string_value(kid), json_string_length(kid) + 1); /* the issuer's kid, not ours */
    ret = 0;
Exit:
    EVP_PKEY_free(pkey);
    return ret;
}

static const token_key_t *key_by_kid(const token_keys_t *keys, const char *kid, size_t len)
{
    if (strlen(keys->own.kid) == len && memcmp(keys->own.kid, kid, len) == 0)
        return &keys->own;
    for (size_t i = 0; i < keys->nexternal; ++i)
        if (strlen(keys->external[i].kid) == len && memcmp(keys->external[i].kid, kid, len) == 0)
            return &keys->external[i];
    return NULL;
}

int token_keys_add_external(token_keys_t *keys, const char *file, const char *issuer, char **err)
{
    size_t len = 0;
    char *data;
    if (err != NULL)
        *err = NULL;
    if (issuer == NULL || *issuer == '\0')
        return fail(err, "%s: an external issuer needs its `iss`", file);
    if ((data = read_small_file(file, KEY_FILE_MAX, &len)) == NULL)
        return fail(err, "cannot read %s: %s", file, strerror(errno));
    int ret = token_keys_add_external_data(keys, data, len, file, issuer, err);
    free(data);
    return ret;
}

int token_keys_replace_external(token_keys_t *keys, const char *data, size_t len, const char *source,
                                const char *issuer, char **err)
{
    token_keys_t fresh;
    memset(&fresh, 0, sizeof(fresh));
    memcpy(fresh.own.kid, keys->own.kid, sizeof(fresh.own.kid)); /* a kid must not be berth's own either */
    if (token_keys_add_external_data(&fresh, data, len, source, issuer, err) != 0)
        return -1;
    for (size_t i = 0; i < keys->nexternal; ++i)
        key_dispose(&keys->external[i]);
    free(keys->external);
    keys->external = fresh.external;
    keys->nexternal = fresh.nexternal;
    return 0;
}

int token_keys_add_external_data(token_keys_t *keys, const char *text, size_t len, const char *file, const char *issuer,
                                 char **err)
{
    token_key_t *added = NULL;
    size_t nadded = 0, i, j;
    char *data = NULL, *inner = NULL;
    json_t *doc = NULL;
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;
    int ret = -1;

    if (err != NULL)
        *err = NULL;
    if (issuer == NULL || *issuer == '\0') {
        fail(err, "%s: an external issuer needs its `iss`", file);
        goto Exit;
    }
    if (len > KEY_FILE_MAX) {
        fail(err, "%s: larger than %d bytes", file, KEY_FILE_MAX);
        goto Exit;
    }
    data = malloc(len + 1); /* NUL-terminated for strstr */
    memcpy(data, text, len);
    data[len] = '\0';

    if (strstr(data, "-----BEGIN") != NULL) {
        added = calloc(1, sizeof(*added));
        if ((bio = BIO_new_mem_buf(data, (int)len)) == NULL ||
            (pkey = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL)) == NULL) {
            fail(err, "%s: not a PEM public key", file);
            goto Exit;
        }
        if (key_from_pkey(&added[0], pkey, 0, issuer, &inner) != 0) {
            key_dispose(&added[0]);
            fail(err, "%s: %s", file, inner != NULL ? inner : "unusable key");
            goto Exit;
        }
        nadded = 1;
    } else {
        json_t *list, *jwk;
        json_error_t jerr;

        if ((doc = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL || !json_is_object(doc)) {
            fail(err, "%s: neither a PEM public key nor a JWKS document", file);
            goto Exit;
        }
        if ((list = json_object_get(doc, "keys")) == NULL && json_object_get(doc, "kty") != NULL) {
            list = json_array(); /* a lone JWK */
            json_array_append(list, doc);
            json_decref(doc);
            doc = list;
        } else if (!json_is_array(list)) {
            fail(err, "%s: JWKS without a \"keys\" array", file);
            goto Exit;
        }
        added = calloc(json_array_size(list) + 1, sizeof(*added));
        json_array_foreach(list, i, jwk) {
            int r = json_is_object(jwk) ? jwk_to_key(&added[nadded], jwk, issuer, &inner) : 1;
            if (r < 0) {
                key_dispose(&added[nadded]);
                fail(err, "%s: key %zu: %s", file, i, inner != NULL ? inner : "unusable");
                goto Exit;
            }
            if (r == 0)
                ++nadded;
        }
        if (nadded == 0) {
            fail(err, "%s: no EC P-256 signing key in the JWKS", file);
            goto Exit;
        }
    }

    /* A kid must name one key, or a token could be checked against another issuer's key and `iss`. */
    for (i = 0; i < nadded; ++i) {
        int dup = key_by_kid(keys, added[i].kid, strlen(added[i].kid)) != NULL;
        for (j = 0; j < i && !dup; ++j)
            dup = strcmp(added[i].kid, added[j].kid) == 0;
        if (dup) {
            fail(err, "%s: kid \"%s\" is already in use", file, added[i].kid);
            goto Exit;
        }
    }
    keys->external = realloc(keys->external, (keys->nexternal + nadded) * sizeof(*keys->external));
    memcpy(keys->external + keys->nexternal, added, nadded * sizeof(*added));
    keys->nexternal += nadded;
    nadded = 0; /* moved */
    ret = 0;
Exit:
    for (i = 0; i < nadded; ++i)
        key_dispose(&added[i]);
    free(added);
    free(inner);
    json_decref(doc);
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    free(data);
    if (ret != 0)
        ERR_clear_error();
    return ret;
}

char *token_jwks(const token_keys_t *keys)
{
    char x[COORD_B64_LEN + 1], y[COORD_B64_LEN + 1], *out = NULL;
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;
    json_t *doc = NULL;

    if (keys->own.public_pem == NULL)
        return NULL;
    if ((bio = BIO_new_mem_buf(keys->own.public_pem, -1)) == NULL ||
        (pkey = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL)) == NULL || p256_coords_b64(pkey, x, y) != 0)
        goto Exit;
    doc = json_pack("{s:[{s:s, s:s, s:s, s:s, s:s, s:s, s:s}]}", "keys", "kty", "EC", "crv", "P-256", "x", x, "y", y,
                    "kid", keys->own.kid, "use", "sig", "alg", "ES256");
    if (doc != NULL)
        out = json_dumps(doc, JSON_COMPACT);
Exit:
    json_decref(doc);
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    return out;
}

char *token_issue(const token_keys_t *keys, token_claims_t *c, int64_t now, int64_t ttl)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char rnd[16];
    json_t *access = NULL, *wrapper = NULL;
    char *access_json = NULL, *out = NULL;
    jwt_t *jwt = NULL;

    if (keys->own.private_pem == NULL || keys->service == NULL || c->naccess > TOKEN_MAX_ACCESS || ttl <= 0 ||
        now > INT64_MAX - ttl || RAND_bytes(rnd, sizeof(rnd)) != 1)
        return NULL;
    for (size_t i = 0; i < sizeof(rnd); ++i) {
        c->jti[2 * i] = hex[rnd[i] >> 4];
        c->jti[2 * i + 1] = hex[rnd[i] & 15];
    }
    c->jti[2 * sizeof(rnd)] = '\0';
    c->iat = c->nbf = now;
    c->exp = now + ttl;
    c->external = 0;

    if (memchr(c->sub, '\0', sizeof(c->sub)) == NULL)
        goto Exit;
    access = json_array();
    for (size_t i = 0; i < c->naccess; ++i) {
        const scope_t *a = &c->access[i];
        size_t namelen = strnlen(a->name, sizeof(a->name));
        json_t *actions;
        if (a->type == SCOPE_REPOSITORY ? !name_valid(a->name, namelen) : strcmp(a->name, "catalog") != 0)
            goto Exit; /* the caller's bug: never sign a grant that verification would drop */
        actions = json_array();
        if (a->type == SCOPE_REGISTRY && (a->actions & ACTION_ALL) == ACTION_ALL) {
            json_array_append_new(actions, json_string("*")); /* what distribution requires for the catalog */
        } else {
            if (a->actions & ACTION_PULL)
                json_array_append_new(actions, json_string("pull"));
            if (a->actions & ACTION_PUSH)
                json_array_append_new(actions, json_string("push"));
            if (a->actions & ACTION_DELETE)
                json_array_append_new(actions, json_string("delete"));
        }
        json_array_append_new(access, json_pack("{s:s, s:s, s:o}", "type",
                                                a->type == SCOPE_REPOSITORY ? "repository" : "registry", "name",
                                                a->name, "actions", actions));
    }
    wrapper = json_pack("{s:O}", "access", access);
    if (wrapper == NULL || (access_json = json_dumps(wrapper, JSON_COMPACT)) == NULL)
        goto Exit;

    if (jwt_new(&jwt) != 0 || jwt_add_grant(jwt, "iss", keys->own.issuer) != 0 ||
        jwt_add_grant(jwt, "sub", c->sub) != 0 || jwt_add_grant(jwt, "aud", keys->service) != 0 ||
        jwt_add_grant_int(jwt, "exp", (long)c->exp) != 0 || jwt_add_grant_int(jwt, "nbf", (long)c->nbf) != 0 ||
        jwt_add_grant_int(jwt, "iat", (long)c->iat) != 0 || jwt_add_grant(jwt, "jti", c->jti) != 0 ||
        jwt_add_grant_int(jwt, "gen", (long)c->generation) != 0 ||
        (c->token_id != 0 && jwt_add_grant_int(jwt, "tid", (long)c->token_id) != 0) ||
        (c->refresh_id != 0 && jwt_add_grant_int(jwt, "rid", (long)c->refresh_id) != 0) ||
        jwt_add_grants_json(jwt, access_json) != 0 || jwt_add_header(jwt, "kid", keys->own.kid) != 0 ||
        jwt_set_alg(jwt, JWT_ALG_ES256, (const unsigned char *)keys->own.private_pem,
                    (int)strlen(keys->own.private_pem)) != 0)
        goto Exit;
    out = jwt_encode_str(jwt);
Exit:
    if (out == NULL)
        ERR_clear_error();
    jwt_free(jwt);
    free(access_json);
    json_decref(wrapper);
    json_decref(access);
    return out;
}

/* A NumericDate: 1 and *out if present, 0 if absent, -1 if not a number. RFC 7519 allows fractions: round the
 * strict way. */
static int claim_time(json_t *claims, const char *name, int round_up, int64_t *out)
{
    json_t *v = json_object_get(claims, name);

    if (v == NULL)
        return 0;
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 1;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!(d > -1e15 && d < 1e15))
            return -1;
        *out = (int64_t)d; /* truncates toward zero */
        if (round_up && (double)*out < d)
            ++*out;
        else if (!round_up && (double)*out > d)
            --*out;
        return 1;
    }
    return -1;
}

static int claim_int(json_t *claims, const char *name, int64_t *out)
{
    json_t *v = json_object_get(claims, name);

    if (v == NULL)
        return 0;
    if (!json_is_integer(v))
        return -1;
    *out = (int64_t)json_integer_value(v);
    return 1;
}

/* An optional string claim copied into buf; -1 if not a string, too long, or with a NUL inside. */
static int claim_str(json_t *claims, const char *name, char *buf, size_t size)
{
    json_t *v = json_object_get(claims, name);
    size_t n;

    if (v == NULL)
        return 0;
    if (!json_is_string(v) || (n = json_string_length(v)) >= size || strlen(json_string_value(v)) != n)
        return -1;
    memcpy(buf, json_string_value(v), n + 1);
    return 1;
}

static int aud_ok(json_t *aud, const char *service)
{
    size_t i;
    json_t *v;

    if (json_is_string(aud))
        return json_str_eq(aud, service);
    json_array_foreach(aud, i, v) {
        if (json_str_eq(v, service))
            return 1;
    }
    return 0;
}

/* Entries of another type, with a bad name, or beyond TOKEN_MAX_ACCESS are dropped: they grant nothing here. */
static void parse_access(token_claims_t *out, json_t *access)
{
    size_t i, k;
    json_t *e, *a;

    json_array_foreach(access, i, e) {
        json_t *type = json_object_get(e, "type"), *name = json_object_get(e, "name"),
               *actions = json_object_get(e, "actions");
        scope_t *s;

        if (out->naccess == TOKEN_MAX_ACCESS)
            break;
        s = &out->access[out->naccess];
        if (!json_is_string(name))
            continue;
        if (json_str_eq(type, "repository") && name_valid(json_string_value(name), json_string_length(name)))
            s->type = SCOPE_REPOSITORY;
        else if (json_str_eq(type, "registry") && json_str_eq(name, "catalog"))
            s->type = SCOPE_REGISTRY;
        else
            continue;
        memcpy(s->name, json_string_value(name), json_string_length(name) + 1);
        s->actions = 0;
        json_array_foreach(actions, k, a) {
            if (json_is_string(a))
                s->actions |= scope_action_parse(json_string_value(a), json_string_length(a));
        }
        ++out->naccess;
    }
}

int token_verify(const token_keys_t *keys, const char *jwt, size_t len, int64_t now, token_claims_t *out, char *err,
                 size_t errlen)
{
    const char *reason = "invalid token", *dot1, *dot2;
    unsigned char *hdr = NULL, *payload = NULL, sig[SIG_LEN + 3];
    char *copy = NULL, *claims_json = NULL;
    json_t *header = NULL, *claims = NULL, *kid, *v;
    const token_key_t *key;
    jwt_t *decoded = NULL;
    long hdrlen, paylen;
    int ret = -1;

    memset(out, 0, sizeof(*out));
    if (jwt == NULL || len == 0) {
        reason = "empty token";
        goto Exit;
    }
    if (len > TOKEN_MAX_LEN) {
        reason = "token too long";
        goto Exit;
    }
    /* Shape: header.payload.signature, base64url, the first two non-empty; the signature is checked after alg. */
    if ((dot1 = memchr(jwt, '.', len)) == NULL ||
        (dot2 = memchr(dot1 + 1, '.', (size_t)(jwt + len - dot1 - 1))) == NULL ||
        memchr(dot2 + 1, '.', (size_t)(jwt + len - dot2 - 1)) != NULL || dot1 == jwt || dot2 == dot1 + 1) {
        reason = "malformed token";
        goto Exit;
    }
    for (const char *p = dot1 + 1; p < dot2; ++p) {
        if (b64url_value(*p) < 0) {
            reason = "malformed token";
            goto Exit;
        }
    }
    hdr = malloc(len);
    if ((hdrlen = b64url_decode(hdr, len, jwt, (size_t)(dot1 - jwt))) < 0 ||
        (header = json_loadb((const char *)hdr, (size_t)hdrlen, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
        !json_is_object(header)) {
        reason = "malformed header";
        goto Exit;
    }
    if (!json_str_eq(json_object_get(header, "alg"), "ES256")) {
        reason = "alg is not ES256";
        goto Exit;
    }
    /* Exactly R || S in canonical base64url: libjwt would also take trailing junk. */
    if (b64url_decode(sig, sizeof(sig), dot2 + 1, (size_t)(jwt + len - dot2 - 1)) != SIG_LEN) {
        reason = "malformed signature";
        goto Exit;
    }
    if (json_object_get(header, "crit") != NULL) {
        reason = "unsupported crit header"; /* RFC 7515 4.1.11: extensions we do not know must fail */
        goto Exit;
    }
    if ((kid = json_object_get(header, "kid")) == NULL) {
        key = &keys->own;
    } else if (!json_is_string(kid) ||
               (key = key_by_kid(keys, json_string_value(kid), json_string_length(kid))) == NULL) {
        reason = "unknown kid";
        goto Exit;
    }
    if (key->public_pem == NULL || key->public_pem[0] == '\0') {
        reason = "no key"; /* libjwt skips the signature check for a NULL or empty key */
        goto Exit;
    }

    /* Parsed here first as well: jansson under libjwt lets a repeated claim override the first ("aud" twice). */
    payload = malloc(len);
    if ((paylen = b64url_decode(payload, len, dot1 + 1, (size_t)(dot2 - dot1 - 1))) < 0 ||
        (claims = json_loadb((const char *)payload, (size_t)paylen, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
        !json_is_object(claims)) {
        reason = "malformed payload";
        goto Exit;
    }
    json_decref(claims);
    claims = NULL;

    copy = strndup(jwt, len);
    if (jwt_decode(&decoded, copy, (const unsigned char *)key->public_pem, (int)strlen(key->public_pem)) != 0) {
        decoded = NULL;
        reason = "bad signature";
        goto Exit;
    }
    if (jwt_get_alg(decoded) != JWT_ALG_ES256) {
        reason = "alg is not ES256";
        goto Exit;
    }
    if ((claims_json = jwt_get_grants_json(decoded, NULL)) == NULL ||
        (claims = json_loads(claims_json, 0, NULL)) == NULL || !json_is_object(claims)) {
        reason = "malformed claims";
        goto Exit;
    }

    if (!json_str_eq(json_object_get(claims, "iss"), key->issuer)) {
        reason = "wrong issuer";
        goto Exit;
    }
    if (keys->service == NULL || !aud_ok(json_object_get(claims, "aud"), keys->service)) {
        reason = "wrong audience";
        goto Exit;
    }
    if (claim_time(claims, "exp", 0, &out->exp) != 1) {
        reason = "missing or malformed exp";
        goto Exit;
    }
    if (out->exp <= now - TOKEN_LEEWAY) {
        reason = "expired";
        goto Exit;
    }
    switch (claim_time(claims, "nbf", 1, &out->nbf)) {
    case -1:
        reason = "malformed nbf";
        goto Exit;
    case 1:
        if (out->nbf > now + TOKEN_LEEWAY) {
            reason = "not yet valid (nbf)";
            goto Exit;
        }
    }
    switch (claim_time(claims, "iat", 1, &out->iat)) {
    case -1:
        reason = "malformed iat";
        goto Exit;
    case 1:
        if (out->iat > now + TOKEN_LEEWAY) {
            reason = "issued in the future (iat)";
            goto Exit;
        }
    }
    if (claim_str(claims, "sub", out->sub, sizeof(out->sub)) < 0 ||
        claim_str(claims, "jti", out->jti, sizeof(out->jti)) < 0 || claim_int(claims, "tid", &out->token_id) < 0 ||
        claim_int(claims, "gen", &out->generation) < 0 || claim_int(claims, "rid", &out->refresh_id) < 0) {
        reason = "malformed sub, jti, tid, gen or rid";
        goto Exit;
    }
    if ((v = json_object_get(claims, "access")) != NULL) {
        if (!json_is_array(v)) {
            reason = "malformed access";
            goto Exit;
        }
        parse_access(out, v);
    }
    out->external = key != &keys->own;
    ret = 0;
Exit:
    if (ret != 0) {
        memset(out, 0, sizeof(*out));
        if (err != NULL && errlen != 0)
            snprintf(err, errlen, "%s", reason);
        ERR_clear_error(); /* the queue is per thread: stale entries would confuse the next TLS call on it */
    }
    jwt_free(decoded);
    free(claims_json);
    json_decref(claims);
    json_decref(header);
    free(copy);
    free(payload);
    free(hdr);
    return ret;
}

unsigned token_claims_actions(const token_claims_t *c, scope_type_t type, const char *name)
{
    unsigned actions = 0;

    for (size_t i = 0; i < c->naccess && i < TOKEN_MAX_ACCESS; ++i)
        if (c->access[i].type == type && strcmp(c->access[i].name, name) == 0)
            actions |= c->access[i].actions;
    return actions;
}
