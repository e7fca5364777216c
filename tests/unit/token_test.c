/*
 * Unit tests for src/auth/token.c: key creation (atomic, mode 0600, PKCS#8, one winner among racing processes), the
 * RFC 7638 kid, the JWKS, issuing, and every rejection token_verify() owes: libjwt 1.10 checks none of them itself.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include "auth/token.h"
#include "tap.h"

#define ISSUER "berth"
#define SERVICE "registry.test"

static char dir[64];
static int64_t now;

/* asprintf that cannot fail quietly */
static void xasprintf(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void xasprintf(char **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(out, fmt, ap) < 0)
        abort();
    va_end(ap);
}

/* --- helpers independent of token.c ------------------------------------------------------------------------------ */

static void b64url(char *dst, const unsigned char *src, size_t len)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;

    for (size_t i = 0; i < len; ++i) {
        acc = acc << 8 | src[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            dst[o++] = abc[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        dst[o++] = abc[(acc << (6 - bits)) & 63];
    dst[o] = '\0';
}

static void b64url_str(char *dst, const char *s)
{
    b64url(dst, (const unsigned char *)s, strlen(s));
}

/* Lenient decoder for test inspection; returns the length. */
static size_t unb64url(unsigned char *dst, const char *src, size_t len)
{
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;

    for (size_t i = 0; i < len; ++i) {
        const char *abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        const char *p = strchr(abc, src[i]);
        if (p == NULL || src[i] == '\0')
            break;
        acc = acc << 6 | (unsigned)(p - abc);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            dst[o++] = (unsigned char)(acc >> bits);
        }
    }
    return o;
}

/* The JSON of segment `n` (0 header, 1 payload) of a compact JWT, parsed. */
static json_t *segment_json(const char *tok, int n)
{
    const char *start = tok, *end;
    unsigned char buf[8192];
    size_t len;

    for (int i = 0; i < n; ++i)
        start = strchr(start, '.') + 1;
    end = strchr(start, '.');
    len = unb64url(buf, start, (size_t)(end - start));
    return json_loadb((const char *)buf, len, 0, NULL);
}

static char *pem_of(EVP_PKEY *pkey, int private)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *out;
    long len;

    if (private)
        PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL);
    else
        PEM_write_bio_PUBKEY(bio, pkey);
    len = BIO_get_mem_data(bio, &data);
    out = strndup(data, (size_t)len);
    BIO_free(bio);
    return out;
}

static int write_file(const char *path, const char *data)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fputs(data, f);
    return fclose(f);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 65536);
    if (f == NULL)
        return buf;
    buf[fread(buf, 1, 65535, f)] = '\0';
    fclose(f);
    return buf;
}

static void path_in(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", dir, name);
}

/* Sign arbitrary claims (a JSON object) with a private PEM; header kid if non-NULL, extra headers if non-NULL. */
static char *sign_raw(const char *claims, jwt_alg_t alg, const char *key, size_t keylen, const char *kid,
                      const char *headers)
{
    jwt_t *jwt;
    char *out;

    jwt_new(&jwt);
    if (claims != NULL && jwt_add_grants_json(jwt, claims) != 0)
        fprintf(stderr, "# bad claims in test: %s\n", claims);
    if (kid != NULL)
        jwt_add_header(jwt, "kid", kid);
    if (headers != NULL)
        jwt_add_headers_json(jwt, headers);
    jwt_set_alg(jwt, alg, (const unsigned char *)key, (int)keylen);
    out = jwt_encode_str(jwt);
    jwt_free(jwt);
    return out;
}

/* Claims with sub "alice" and jti "j1", the rest as given; `extra` (JSON members, or NULL) is appended. */
static char *claims_json(const char *iss, const char *aud_json, int64_t exp, int64_t nbf, int64_t iat,
                         const char *extra)
{
    char *s;
    xasprintf(&s,
              "{\"iss\":\"%s\",\"sub\":\"alice\",\"aud\":%s,\"exp\":%lld,\"nbf\":%lld,\"iat\":%lld,\"jti\":\"j1\"%s%s}",
              iss, aud_json, (long long)exp, (long long)nbf, (long long)iat, extra != NULL ? "," : "",
              extra != NULL ? extra : "");
    return s;
}

/* ES256 over any header and payload text, signed with OpenSSL directly: for payloads libjwt refuses to make. */
static char *sign_es256_text(const char *private_pem, const char *header, const char *payload)
{
    char h[2048], p[8192], *input, *out, sigb[128];
    unsigned char der[128], rs[64];
    size_t derlen = sizeof(der);
    const unsigned char *dp = der;
    BIO *bio = BIO_new_mem_buf(private_pem, -1);
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ECDSA_SIG *sig;

    b64url_str(h, header);
    b64url_str(p, payload);
    if (asprintf(&input, "%s.%s", h, p) < 0)
        abort();
    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pkey);
    EVP_DigestSign(md, der, &derlen, (const unsigned char *)input, strlen(input));
    sig = d2i_ECDSA_SIG(NULL, &dp, (long)derlen);
    BN_bn2binpad(ECDSA_SIG_get0_r(sig), rs, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig), rs + 32, 32);
    b64url(sigb, rs, 64);
    if (asprintf(&out, "%s.%s", input, sigb) < 0)
        abort();
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    free(input);
    return out;
}

static char *sign_own(const token_keys_t *k, const char *claims, const char *kid)
{
    return sign_raw(claims, JWT_ALG_ES256, k->own.private_pem, strlen(k->own.private_pem), kid, NULL);
}

static int verify(const token_keys_t *k, const char *tok, token_claims_t *c, char *err, size_t errlen)
{
    size_t len = strlen(tok);
    char *copy = malloc(len != 0 ? len : 1); /* exact size, not NUL-terminated: ASan catches overreads */
    int r;

    memcpy(copy, tok, len);
    err[0] = '\0';
    r = token_verify(k, copy, len, now, c, err, errlen);
    free(copy);
    return r;
}

/* -1 and exactly this reason. */
static int rejects(const token_keys_t *k, const char *tok, const char *reason)
{
    token_claims_t c;
    char err[128];
    int r = verify(k, tok, &c, err, sizeof(err));

    if (r != -1 || strcmp(err, reason) != 0)
        printf("#   got %d \"%s\", wanted \"%s\"\n", r, err, reason);
    return r == -1 && strcmp(err, reason) == 0 && c.naccess == 0 && c.sub[0] == '\0';
}

static int accepts(const token_keys_t *k, const char *tok)
{
    token_claims_t c;
    char err[128];
    int r = verify(k, tok, &c, err, sizeof(err));

    if (r != 0)
        printf("#   rejected: %s\n", err);
    return r == 0;
}

static int init_keys(token_keys_t *k, const char *name, const char *issuer)
{
    char path[256], *err = NULL;
    int r;

    path_in(path, sizeof(path), name);
    r = token_keys_init(k, path, issuer, SERVICE, &err);
    if (r != 0)
        printf("#   token_keys_init(%s): %s\n", name, err != NULL ? err : "(no message)");
    free(err);
    return r;
}

static char *issue(const token_keys_t *k, const char *sub, int64_t at, int64_t ttl)
{
    token_claims_t c;

    memset(&c, 0, sizeof(c));
    snprintf(c.sub, sizeof(c.sub), "%s", sub);
    c.naccess = 1;
    c.access[0].type = SCOPE_REPOSITORY;
    strcpy(c.access[0].name, "a/b");
    c.access[0].actions = ACTION_PULL;
    return token_issue(k, &c, at, ttl);
}

/* --- tests -------------------------------------------------------------------------------------------------------- */

static void test_key_file(token_keys_t *keys)
{
    char path[256], *pem, *err = NULL;
    struct stat st;
    token_keys_t again;
    DIR *d;
    struct dirent *e;
    int entries = 0;

    path_in(path, sizeof(path), "keys");
    ok(stat(path, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700,
       "key folder created with mode 0700");
    path_in(path, sizeof(path), "keys/token.pem");
    ok(stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0600, "key file has mode 0600");
    pem = read_file(path);
    ok(strncmp(pem, "-----BEGIN PRIVATE KEY-----\n", 28) == 0, "key file is PKCS#8 PEM");
    ok(keys->own.private_pem != NULL && strcmp(keys->own.private_pem, pem) == 0, "private_pem is the file's key");
    free(pem);
    ok(keys->own.public_pem != NULL && strncmp(keys->own.public_pem, "-----BEGIN PUBLIC KEY-----\n", 27) == 0,
       "public_pem is a SubjectPublicKeyInfo PEM");
    ok(strlen(keys->own.kid) == 43, "kid is 43 base64url characters (SHA-256)");
    ok(strcmp(keys->own.issuer, ISSUER) == 0 && strcmp(keys->service, SERVICE) == 0 && keys->nexternal == 0,
       "issuer and service copied");

    path_in(path, sizeof(path), "keys");
    d = opendir(path);
    while (d != NULL && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            ++entries;
    if (d != NULL)
        closedir(d);
    ok(entries == 1, "no temp file left behind (%d entries)", entries);

    path_in(path, sizeof(path), "keys/token.pem");
    ok(token_keys_init(&again, path, ISSUER, SERVICE, &err) == 0 && strcmp(again.own.kid, keys->own.kid) == 0 &&
           strcmp(again.own.public_pem, keys->own.public_pem) == 0,
       "second init loads the same key (same kid)");
    token_keys_dispose(&again);
    free(err);
}

static void test_init_errors(void)
{
    char path[256], *err = NULL;
    token_keys_t k;
    EVP_PKEY *p384 = EVP_EC_gen("P-384"), *rsa = EVP_RSA_gen(1024), *p256 = EVP_EC_gen("P-256");
    char *pem;
    BIO *bio;
    long len;
    int r;

    path_in(path, sizeof(path), "p384.pem");
    pem = pem_of(p384, 1);
    write_file(path, pem);
    free(pem);
    r = token_keys_init(&k, path, ISSUER, SERVICE, &err);
    ok(r == -1 && err != NULL && strstr(err, "not an EC P-256 key") != NULL, "P-384 key refused (%s)",
       err != NULL ? err : "");
    free(err);
    err = NULL;

    path_in(path, sizeof(path), "rsa.pem");
    pem = pem_of(rsa, 1);
    write_file(path, pem);
    free(pem);
    ok(token_keys_init(&k, path, ISSUER, SERVICE, &err) == -1 && err != NULL &&
           strstr(err, "not an EC P-256 key") != NULL,
       "RSA key refused");
    free(err);
    err = NULL;

    path_in(path, sizeof(path), "garbage.pem");
    write_file(path, "hello\n");
    ERR_clear_error();
    ok(token_keys_init(&k, path, ISSUER, SERVICE, &err) == -1 && err != NULL &&
           strstr(err, "not an unencrypted PEM") != NULL,
       "garbage key file refused");
    ok(ERR_peek_error() == 0, "no OpenSSL error left behind by a failed init");
    free(err);
    err = NULL;

    /* An encrypted key must fail, not prompt on the terminal (stdin is closed here to catch a prompt). */
    path_in(path, sizeof(path), "encrypted.pem");
    bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, p256, EVP_aes_128_cbc(), (unsigned char *)"pw", 2, NULL, NULL);
    len = BIO_get_mem_data(bio, &pem);
    pem = strndup(pem, (size_t)len);
    BIO_free(bio);
    write_file(path, pem);
    free(pem);
    ok(token_keys_init(&k, path, ISSUER, SERVICE, &err) == -1 && err != NULL, "encrypted key refused without a prompt");
    free(err);
    err = NULL;

    path_in(path, sizeof(path), "empty-issuer.pem");
    ok(token_keys_init(&k, path, "", SERVICE, &err) == -1 && err != NULL, "empty issuer refused");
    free(err);
    err = NULL;
    ok(token_keys_init(&k, path, ISSUER, NULL, &err) == -1 && err != NULL, "NULL service refused");
    free(err);
    err = NULL;
    ok(access(path, F_OK) != 0, "nothing created when the arguments are wrong");

    path_in(path, sizeof(path), "no/such/dir/token.pem");
    r = token_keys_init(&k, path, ISSUER, SERVICE, &err);
    ok(r == -1 && err != NULL && strstr(err, "cannot create") != NULL, "missing grandparent folder reported (%s)",
       err != NULL ? err : "");
    free(err);

    EVP_PKEY_free(p384);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(p256);
}

/* One in ~64 keys has a coordinate with a leading zero byte: BN_bn2bin would shorten it and the kid would be wrong. */
static void test_leading_zero_coordinate(void)
{
    char path[256], *pem, *err = NULL, *jwks;
    token_keys_t k;
    EVP_PKEY *pkey = NULL;
    int found = 0;

    for (int i = 0; i < 5000 && !found; ++i) {
        BIGNUM *x = NULL, *y = NULL;
        EVP_PKEY_free(pkey);
        pkey = EVP_EC_gen("P-256");
        EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x);
        EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y);
        found = BN_num_bytes(x) < 32 || BN_num_bytes(y) < 32;
        BN_free(x);
        BN_free(y);
    }
    ok(found, "found a key with a short coordinate");
    path_in(path, sizeof(path), "zero.pem");
    pem = pem_of(pkey, 1);
    write_file(path, pem);
    free(pem);
    ok(token_keys_init(&k, path, ISSUER, SERVICE, &err) == 0, "short-coordinate key loads");
    jwks = token_jwks(&k);
    {
        json_t *doc = json_loads(jwks, 0, NULL), *jwk = json_array_get(json_object_get(doc, "keys"), 0);
        const char *x = json_string_value(json_object_get(jwk, "x")), *y = json_string_value(json_object_get(jwk, "y"));
        char canon[256], kid[64];
        unsigned char md[32];
        unsigned mdlen;
        snprintf(canon, sizeof(canon), "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x, y);
        EVP_Digest(canon, strlen(canon), md, &mdlen, EVP_sha256(), NULL);
        b64url(kid, md, mdlen);
        ok(strlen(x) == 43 && strlen(y) == 43 && strcmp(kid, k.own.kid) == 0,
           "coordinates padded to 32 bytes, kid right");
        json_decref(doc);
    }
    free(jwks);
    token_keys_dispose(&k);
    EVP_PKEY_free(pkey);
    free(err);
}

static void test_jwks_and_kid(const token_keys_t *keys)
{
    char *jwks = token_jwks(keys), canon[256], kid[64];
    json_t *doc = json_loads(jwks, 0, NULL), *arr = json_object_get(doc, "keys"), *jwk = json_array_get(arr, 0);
    const char *x = json_string_value(json_object_get(jwk, "x")), *y = json_string_value(json_object_get(jwk, "y"));
    unsigned char xb[64], yb[64], md[32], want[32];
    unsigned mdlen;
    BIO *bio = BIO_new_mem_buf(keys->own.public_pem, -1);
    EVP_PKEY *pub = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIGNUM *bx = NULL, *by = NULL;

    ok(doc != NULL && json_is_array(arr) && json_array_size(arr) == 1, "JWKS parses, one key");
    ok(json_object_size(jwk) == 7, "JWK has exactly 7 members");
    ok(strcmp(json_string_value(json_object_get(jwk, "kty")), "EC") == 0 &&
           strcmp(json_string_value(json_object_get(jwk, "crv")), "P-256") == 0 &&
           strcmp(json_string_value(json_object_get(jwk, "use")), "sig") == 0 &&
           strcmp(json_string_value(json_object_get(jwk, "alg")), "ES256") == 0,
       "kty EC, crv P-256, use sig, alg ES256");
    ok(strcmp(json_string_value(json_object_get(jwk, "kid")), keys->own.kid) == 0, "JWKS kid is the key's kid");
    ok(x != NULL && y != NULL && strlen(x) == 43 && strlen(y) == 43 && unb64url(xb, x, 43) == 32 &&
           unb64url(yb, y, 43) == 32,
       "x and y are 32 bytes each");
    ok(strncmp(jwks, "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"", 40) == 0 && strchr(jwks, ' ') == NULL,
       "JWKS is compact, members in order");

    /* x and y are the public key's point */
    EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_EC_PUB_X, &bx);
    EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_EC_PUB_Y, &by);
    BN_bn2binpad(bx, want, 32);
    ok(memcmp(want, xb, 32) == 0, "x matches the public key");
    BN_bn2binpad(by, want, 32);
    ok(memcmp(want, yb, 32) == 0, "y matches the public key");

    /* RFC 7638, computed here on its own */
    snprintf(canon, sizeof(canon), "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x, y);
    EVP_Digest(canon, strlen(canon), md, &mdlen, EVP_sha256(), NULL);
    b64url(kid, md, mdlen);
    ok(strcmp(kid, keys->own.kid) == 0, "kid is the RFC 7638 thumbprint (%s)", kid);

    BN_free(bx);
    BN_free(by);
    EVP_PKEY_free(pub);
    BIO_free(bio);
    json_decref(doc);
    free(jwks);
}

static void test_round_trip(const token_keys_t *keys)
{
    token_claims_t c, v;
    char err[128], *tok;
    json_t *hdr, *pl;

    memset(&c, 0, sizeof(c));
    strcpy(c.sub, "alice");
    c.token_id = 42;
    c.generation = 7;
    c.refresh_id = 9;
    c.naccess = 2;
    c.access[0] = (scope_t){SCOPE_REPOSITORY, "a/b", ACTION_PULL | ACTION_PUSH};
    c.access[1] = (scope_t){SCOPE_REGISTRY, "catalog", ACTION_ALL};
    tok = token_issue(keys, &c, now, 300);
    ok(tok != NULL, "token issued");
    ok(c.iat == now && c.nbf == now && c.exp == now + 300 && strlen(c.jti) == 32, "issue fills iat, nbf, exp, jti");

    ok(verify(keys, tok, &v, err, sizeof(err)) == 0, "round trip verifies (%s)", err);
    ok(strcmp(v.sub, "alice") == 0 && strcmp(v.jti, c.jti) == 0 && v.iat == c.iat && v.nbf == c.nbf && v.exp == c.exp,
       "sub, jti, iat, nbf, exp equal");
    ok(v.token_id == 42 && v.generation == 7 && v.refresh_id == 9 && v.external == 0, "tid, gen, rid, external equal");
    ok(v.naccess == 2 && v.access[0].type == SCOPE_REPOSITORY && strcmp(v.access[0].name, "a/b") == 0 &&
           v.access[0].actions == (ACTION_PULL | ACTION_PUSH) && v.access[1].type == SCOPE_REGISTRY &&
           strcmp(v.access[1].name, "catalog") == 0 && v.access[1].actions == ACTION_ALL,
       "access equal");

    hdr = segment_json(tok, 0);
    pl = segment_json(tok, 1);
    ok(json_object_size(hdr) == 3 && strcmp(json_string_value(json_object_get(hdr, "alg")), "ES256") == 0 &&
           strcmp(json_string_value(json_object_get(hdr, "kid")), keys->own.kid) == 0 &&
           strcmp(json_string_value(json_object_get(hdr, "typ")), "JWT") == 0,
       "header: alg ES256, kid, typ JWT");
    ok(strcmp(json_string_value(json_object_get(pl, "iss")), ISSUER) == 0 &&
           strcmp(json_string_value(json_object_get(pl, "aud")), SERVICE) == 0 &&
           json_integer_value(json_object_get(pl, "tid")) == 42 && json_integer_value(json_object_get(pl, "gen")) == 7,
       "payload: iss, aud (a string), tid, gen");
    {
        json_t *want = json_loads("[{\"type\":\"repository\",\"name\":\"a/b\",\"actions\":[\"pull\",\"push\"]},"
                                  "{\"type\":\"registry\",\"name\":\"catalog\",\"actions\":[\"*\"]}]",
                                  0, NULL);
        ok(json_equal(want, json_object_get(pl, "access")), "payload access in the distribution form");
        json_decref(want);
    }
    json_decref(hdr);
    json_decref(pl);
    free(tok);

    /* anonymous, no access, no token id */
    memset(&c, 0, sizeof(c));
    tok = token_issue(keys, &c, now, 60);
    pl = segment_json(tok, 1);
    ok(tok != NULL && json_object_get(pl, "tid") == NULL && json_integer_value(json_object_get(pl, "gen")) == 0 &&
           json_array_size(json_object_get(pl, "access")) == 0,
       "anonymous token: no tid, gen 0, empty access");
    ok(verify(keys, tok, &v, err, sizeof(err)) == 0 && v.sub[0] == '\0' && v.naccess == 0 && v.token_id == 0,
       "anonymous token verifies");
    json_decref(pl);
    free(tok);

    /* Two tokens never share a jti. */
    {
        token_claims_t c2;
        memset(&c, 0, sizeof(c));
        memset(&c2, 0, sizeof(c2));
        char *t1 = token_issue(keys, &c, now, 60), *t2 = token_issue(keys, &c2, now, 60);
        ok(strcmp(c.jti, c2.jti) != 0 && strcmp(t1, t2) != 0, "jti is random");
        free(t1);
        free(t2);
    }

    /* the caller's mistakes */
    memset(&c, 0, sizeof(c));
    c.naccess = 1;
    c.access[0] = (scope_t){SCOPE_REPOSITORY, "A/b", ACTION_PULL};
    ok(token_issue(keys, &c, now, 60) == NULL, "issue refuses an invalid repository name");
    c.access[0] = (scope_t){SCOPE_REGISTRY, "other", ACTION_PULL};
    ok(token_issue(keys, &c, now, 60) == NULL, "issue refuses registry:<not catalog>");
    c.naccess = TOKEN_MAX_ACCESS + 1;
    ok(token_issue(keys, &c, now, 60) == NULL, "issue refuses too many access entries");
    c.naccess = 0;
    ok(token_issue(keys, &c, now, 0) == NULL, "issue refuses ttl 0");
}

static void test_times(const token_keys_t *keys)
{
    char *tok, *cl, aud[64];

    snprintf(aud, sizeof(aud), "\"%s\"", SERVICE);
    tok = issue(keys, "alice", now - 361, 300); /* exp = now - 61 */
    ok(rejects(keys, tok, "expired"), "expired (exp = now - 61) rejected");
    free(tok);
    tok = issue(keys, "alice", now - 360, 300); /* exp = now - 60: the edge */
    ok(rejects(keys, tok, "expired"), "exp = now - 60 rejected (exp must be > now - leeway)");
    free(tok);
    tok = issue(keys, "alice", now - 330, 300); /* exp = now - 30 */
    ok(accepts(keys, tok), "exp within leeway (now - 30) accepted");
    free(tok);
    tok = issue(keys, "alice", now + 61, 300); /* nbf = iat = now + 61 */
    ok(rejects(keys, tok, "not yet valid (nbf)"), "nbf in the future (now + 61) rejected");
    free(tok);
    tok = issue(keys, "alice", now + 30, 300);
    ok(accepts(keys, tok), "nbf and iat within leeway (now + 30) accepted");
    free(tok);
    tok = issue(keys, "alice", now + 60, 300);
    ok(accepts(keys, tok), "nbf = now + 60 accepted (the edge)");
    free(tok);

    cl = claims_json(ISSUER, aud, now + 300, now, now + 61, NULL);
    tok = sign_own(keys, cl, keys->own.kid);
    ok(rejects(keys, tok, "issued in the future (iat)"), "iat in the future (nbf fine) rejected");
    free(tok);
    free(cl);

    cl = claims_json(ISSUER, aud, now + 300, now, now, NULL);
    tok = sign_own(keys, cl, keys->own.kid);
    ok(accepts(keys, tok), "hand-signed valid claims accepted (the baseline of the cases below)");
    free(tok);
    free(cl);

    tok = sign_own(keys, "{\"iss\":\"" ISSUER "\",\"aud\":\"" SERVICE "\"}", keys->own.kid);
    ok(rejects(keys, tok, "missing or malformed exp"), "no exp rejected");
    free(tok);
    xasprintf(&cl, "{\"iss\":\"" ISSUER "\",\"aud\":\"" SERVICE "\",\"exp\":\"%lld\"}", (long long)now + 300);
    tok = sign_own(keys, cl, keys->own.kid);
    ok(rejects(keys, tok, "missing or malformed exp"), "exp as a string rejected (libjwt would read it as 0)");
    free(tok);
    free(cl);
    xasprintf(&cl, "{\"iss\":\"" ISSUER "\",\"aud\":\"" SERVICE "\",\"exp\":%lld.5}", (long long)now + 300);
    tok = sign_own(keys, cl, keys->own.kid);
    ok(accepts(keys, tok), "fractional exp accepted (RFC 7519 NumericDate)");
    free(tok);
    free(cl);
    xasprintf(&cl, "{\"iss\":\"" ISSUER "\",\"aud\":\"" SERVICE "\",\"exp\":%lld.5}", (long long)now - 60);
    tok = sign_own(keys, cl, keys->own.kid);
    ok(rejects(keys, tok, "expired"), "fractional exp rounds down (now - 59.5 is expired)");
    free(tok);
    free(cl);
    xasprintf(&cl, "{\"iss\":\"" ISSUER "\",\"aud\":\"" SERVICE "\",\"exp\":%lld,\"nbf\":%lld.5}", (long long)now + 300,
              (long long)now + 60);
    tok = sign_own(keys, cl, keys->own.kid);
    ok(rejects(keys, tok, "not yet valid (nbf)"), "fractional nbf rounds up (now + 60.5 is too early)");
    free(tok);
    free(cl);
    xasprintf(&cl, "{\"iss\":\"" ISSUER "\",\"aud\":\"" SERVICE "\",\"exp\":%lld,\"nbf\":null}", (long long)now + 300);
    tok = sign_own(keys, cl, keys->own.kid);
    ok(rejects(keys, tok, "malformed nbf"), "nbf null rejected");
    free(tok);
    free(cl);
    xasprintf(&cl, "{\"iss\":\"" ISSUER "\",\"aud\":\"" SERVICE "\",\"exp\":%lld}", (long long)now + 300);
    tok = sign_own(keys, cl, keys->own.kid);
    ok(accepts(keys, tok), "nbf, iat, sub, jti absent: accepted");
    free(tok);
    free(cl);
}

static void test_claims_checks(const token_keys_t *keys)
{
    char *tok, *cl;
    token_claims_t v;
    char err[128];

    cl = claims_json(ISSUER, "\"other.service\"", now + 300, now, now, NULL);
    tok = sign_own(keys, cl, keys->own.kid);
    ok(rejects(keys, tok, "wrong audience"), "wrong audience rejected");
    free(tok);
    free(cl);
    cl = claims_json(ISSUER, "[\"x\",\"" SERVICE "\"]", now + 300, now, now, NULL);
    tok = sign_own(keys, cl, keys->own.kid);
    ok(accepts(keys, tok), "aud array containing the service accepted");
    free(tok);
    free(cl);
    cl = claims_json(ISSUER, "[\"x\",\"y\"]", now + 300, now, now, NULL);
    tok = sign_own(keys, cl, keys->own.kid);
    ok(rejects(keys, tok, "wrong audience"), "aud array without the service rejected");
    free(tok);
    free(cl);
    cl = claims_json(ISSUER, "null", now + 300, now, now, NULL);
    tok = sign_own(keys, cl, keys->own.kid);
    ok(rejects(keys, tok, "wrong audience"), "aud null rejected");
    free(tok);
    free(cl);
    tok = sign_own(keys, "{\"iss\":\"" ISSUER "\",\"exp\":9999999999}", keys->own.kid);
    ok(rejects(keys, tok, "wrong audience"), "missing aud rejected");
    free(tok);

    cl = claims_json("someone-else", "\"" SERVICE "\"", now + 300, now, now, NULL);
    tok = sign_own(keys, cl, keys->own.kid);
    ok(rejects(keys, tok, "wrong issuer"), "wrong issuer rejected");
    free(tok);
    free(cl);
    tok = sign_own(keys, "{\"aud\":\"" SERVICE "\",\"exp\":9999999999}", keys->own.kid);
    ok(rejects(keys, tok, "wrong issuer"), "missing issuer rejected");
    free(tok);

    cl = claims_json(ISSUER, "\"" SERVICE "\"", now + 300, now, now, "\"tid\":\"5\"");
    tok = sign_own(keys, cl, keys->own.kid);
    ok(rejects(keys, tok, "malformed sub, jti, tid, gen or rid"), "tid as a string rejected");
    free(tok);
    free(cl);
    cl = claims_json(ISSUER, "\"" SERVICE "\"", now + 300, now, now, "\"rid\":\"5\"");
    tok = sign_own(keys, cl, keys->own.kid);
    ok(rejects(keys, tok, "malformed sub, jti, tid, gen or rid"), "rid as a string rejected");
    free(tok);
    free(cl);
    cl = claims_json(ISSUER, "\"" SERVICE "\"", now + 300, now, now, "\"access\":{}");
    tok = sign_own(keys, cl, keys->own.kid);
    ok(rejects(keys, tok, "malformed access"), "access as an object rejected");
    free(tok);
    free(cl);

    /* access entries: unknown type, bad names and overflow are dropped; "*" is all */
    cl = claims_json(ISSUER, "\"" SERVICE "\"", now + 300, now, now,
                     "\"access\":[{\"type\":\"blob\",\"name\":\"a/b\",\"actions\":[\"pull\"]},"
                     "{\"type\":\"repository\",\"name\":\"A/b\",\"actions\":[\"pull\"]},"
                     "{\"type\":\"repository\",\"name\":\"a/../b\",\"actions\":[\"pull\"]},"
                     "{\"type\":\"registry\",\"name\":\"other\",\"actions\":[\"*\"]},"
                     "{\"type\":\"repository\",\"actions\":[\"pull\"]},"
                     "42,"
                     "{\"type\":\"repository\",\"name\":\"x/y\",\"actions\":[\"*\"]},"
                     "{\"type\":\"repository\",\"name\":\"p/q\",\"actions\":[\"pull\",\"frobnicate\",7,\"delete\"]},"
                     "{\"type\":\"repository\",\"name\":\"n/a\",\"actions\":\"pull\"},"
                     "{\"type\":\"registry\",\"name\":\"catalog\",\"actions\":[\"*\"]}]");
    tok = sign_own(keys, cl, keys->own.kid);
    ok(verify(keys, tok, &v, err, sizeof(err)) == 0 && v.naccess == 4, "bad access entries skipped (%zu kept)",
       v.naccess);
    ok(v.access[0].type == SCOPE_REPOSITORY && strcmp(v.access[0].name, "x/y") == 0 &&
           v.access[0].actions == ACTION_ALL,
       "actions [\"*\"] is ACTION_ALL");
    ok(strcmp(v.access[1].name, "p/q") == 0 && v.access[1].actions == (ACTION_PULL | ACTION_DELETE),
       "unknown actions ignored");
    ok(strcmp(v.access[2].name, "n/a") == 0 && v.access[2].actions == 0, "actions not an array: no actions");
    ok(v.access[3].type == SCOPE_REGISTRY && strcmp(v.access[3].name, "catalog") == 0 &&
           v.access[3].actions == ACTION_ALL,
       "registry:catalog:*");
    free(tok);
    free(cl);
    {
        char many[4096];
        size_t off = (size_t)snprintf(many, sizeof(many), "\"access\":[");
        for (int i = 0; i < 20; ++i)
            off += (size_t)snprintf(many + off, sizeof(many) - off,
                                    "%s{\"type\":\"repository\",\"name\":\"r%d\",\"actions\":[\"pull\"]}",
                                    i != 0 ? "," : "", i);
        snprintf(many + off, sizeof(many) - off, "]");
        cl = claims_json(ISSUER, "\"" SERVICE "\"", now + 300, now, now, many);
        tok = sign_own(keys, cl, keys->own.kid);
        ok(verify(keys, tok, &v, err, sizeof(err)) == 0 && v.naccess == TOKEN_MAX_ACCESS &&
               strcmp(v.access[15].name, "r15") == 0,
           "access beyond TOKEN_MAX_ACCESS dropped");
        free(tok);
        free(cl);
    }
    {
        char longsub[400];
        memset(longsub, 'a', 300);
        longsub[300] = '\0';
        xasprintf(&cl, "{\"iss\":\"" ISSUER "\",\"aud\":\"" SERVICE "\",\"exp\":%lld,\"sub\":\"%s\"}",
                  (long long)now + 300, longsub);
        tok = sign_own(keys, cl, keys->own.kid);
        ok(rejects(keys, tok, "malformed sub, jti, tid, gen or rid"), "sub longer than the claims buffer rejected");
        free(tok);
        free(cl);
    }
}

/* Payloads libjwt will not produce, signed correctly by our key. */
static void test_raw_payloads(const token_keys_t *keys)
{
    char hdr[256], *cl, *tok;

    snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"kid\":\"%s\"}", keys->own.kid);
    cl = claims_json(ISSUER, "\"" SERVICE "\"", now + 300, now, now, NULL);
    tok = sign_es256_text(keys->own.private_pem, hdr, cl);
    ok(accepts(keys, tok), "OpenSSL-made ES256 token accepted (the baseline of the cases below)");
    free(tok);
    free(cl);
    cl = claims_json(ISSUER, "\"" SERVICE "\\u0000x\"", now + 300, now, now, NULL);
    tok = sign_es256_text(keys->own.private_pem, hdr, cl);
    ok(rejects(keys, tok, "malformed payload"), "aud with an embedded NUL rejected");
    free(tok);
    free(cl);
    cl = claims_json(ISSUER, "\"other\"", now + 300, now, now, "\"aud\":\"" SERVICE "\"");
    tok = sign_es256_text(keys->own.private_pem, hdr, cl);
    ok(rejects(keys, tok, "malformed payload"), "aud given twice rejected (jansson would keep the last)");
    free(tok);
    free(cl);
    tok = sign_es256_text(keys->own.private_pem, hdr, "[1,2]");
    ok(rejects(keys, tok, "malformed payload"), "payload not an object rejected");
    free(tok);
    tok = sign_es256_text(keys->own.private_pem, hdr, "{\"iss\":");
    ok(rejects(keys, tok, "malformed payload"), "payload not JSON rejected");
    free(tok);
    cl = claims_json(ISSUER, "\"" SERVICE "\"", now + 300, now, now, NULL);
    tok = sign_es256_text(keys->own.private_pem, "{\"alg\":\"ES256\"}", cl);
    ok(accepts(keys, tok), "header with alg only (no typ, no kid) accepted");
    free(tok);
    free(cl);
}

static void test_forgeries(const token_keys_t *keys, const token_keys_t *other)
{
    char *tok, *cl, *bad, hdr[256], pl[1024], sig[128], aud[64], *p;
    unsigned char zeros[64] = {0};
    jwt_t *jwt;

    snprintf(aud, sizeof(aud), "\"%s\"", SERVICE);
    cl = claims_json(ISSUER, aud, now + 300, now, now, NULL);

    /* signed by another key */
    tok = issue(other, "alice", now, 300);
    ok(rejects(keys, tok, "unknown kid"), "another key's token (its own kid) rejected");
    free(tok);
    tok = sign_raw(cl, JWT_ALG_ES256, other->own.private_pem, strlen(other->own.private_pem), keys->own.kid, NULL);
    ERR_clear_error();
    ok(rejects(keys, tok, "bad signature"), "another key's signature under our kid rejected");
    ok(ERR_peek_error() == 0, "no OpenSSL error left in the thread's queue after a rejection");
    free(tok);
    tok = sign_raw(cl, JWT_ALG_ES256, other->own.private_pem, strlen(other->own.private_pem), NULL, NULL);
    ok(rejects(keys, tok, "bad signature"), "another key's signature without kid (checked with our key) rejected");
    free(tok);
    tok = sign_own(keys, cl, NULL);
    ok(accepts(keys, tok), "no kid: our own key is used");
    free(tok);

    /* tampering */
    tok = sign_own(keys, cl, keys->own.kid);
    bad = strdup(tok);
    p = strchr(bad, '.') + 10;
    *p = *p == 'A' ? 'B' : 'A';
    {
        token_claims_t c;
        char err[128];
        ok(verify(keys, bad, &c, err, sizeof(err)) == -1 &&
               (strcmp(err, "malformed payload") == 0 || strcmp(err, "bad signature") == 0),
           "flipped base64 character in the payload rejected (%s)", err);
    }
    {
        /* one letter of the JSON changed ("alice" -> "alicf"), still valid JSON: only the signature can tell */
        unsigned char raw[4096];
        char enc[4096], *dot1 = strchr(tok, '.'), *dot2 = strrchr(tok, '.'), *at, *forged;
        size_t n = unb64url(raw, dot1 + 1, (size_t)(dot2 - dot1 - 1));
        raw[n] = '\0';
        at = strstr((char *)raw, "alice");
        at[4] = 'f';
        b64url(enc, raw, n);
        if (asprintf(&forged, "%.*s.%s%s", (int)(dot1 - tok), tok, enc, dot2) < 0)
            abort();
        ok(rejects(keys, forged, "bad signature"), "payload with one letter changed rejected");
        free(forged);
    }
    {
        token_claims_t c;
        char err[128];
        verify(keys, bad, &c, err, sizeof(err));
        ok(strstr(err, strchr(bad, '.') + 1) == NULL && strlen(err) < 40, "the reason does not quote the token");
    }
    strcpy(bad, tok);
    p = strrchr(bad, '.') + 5;
    *p = *p == 'A' ? 'B' : 'A';
    ok(rejects(keys, bad, "bad signature"), "flipped character in the signature rejected");
    free(bad);
    xasprintf(&bad, "%s=", tok);
    ok(rejects(keys, bad, "malformed signature"), "padding after the signature rejected (libjwt takes it)");
    free(bad);
    xasprintf(&bad, "%s\n", tok);
    ok(rejects(keys, bad, "malformed signature"), "newline after the signature rejected (libjwt takes it)");
    free(bad);
    {
        token_claims_t c;
        char err[128];
        ok(token_verify(keys, tok, strlen(tok) - 1, now, &c, err, sizeof(err)) == -1, "truncated (len - 1) rejected");
    }
    free(tok);

    /* alg none, made by hand */
    b64url_str(hdr, "{\"alg\":\"none\",\"typ\":\"JWT\"}");
    b64url_str(pl, cl);
    xasprintf(&tok, "%s.%s.", hdr, pl);
    ok(rejects(keys, tok, "alg is not ES256"), "alg none, empty signature rejected");
    free(tok);
    b64url(sig, zeros, 64);
    xasprintf(&tok, "%s.%s.%s", hdr, pl, sig);
    ok(rejects(keys, tok, "alg is not ES256"), "alg none with a 64-byte signature rejected");
    free(tok);
    b64url_str(hdr, "{\"alg\":\"ES256\"}");
    xasprintf(&tok, "%s.%s.", hdr, pl);
    ok(rejects(keys, tok, "malformed signature"),
       "ES256 with an empty signature rejected (libjwt skips a 0-length key)");
    free(tok);
    b64url_str(hdr, "{\"alg\":\"ES256\",\"alg\":\"none\"}");
    xasprintf(&tok, "%s.%s.%s", hdr, pl, sig);
    ok(rejects(keys, tok, "malformed header"), "duplicate alg in the header rejected");
    free(tok);
    b64url_str(hdr, "{\"alg\":\"es256\"}");
    xasprintf(&tok, "%s.%s.%s", hdr, pl, sig);
    ok(rejects(keys, tok, "alg is not ES256"), "lower-case es256 rejected");
    free(tok);
    b64url_str(hdr, "{\"alg\":\"ES256\",\"kid\":42}");
    xasprintf(&tok, "%s.%s.%s", hdr, pl, sig);
    ok(rejects(keys, tok, "unknown kid"), "non-string kid rejected");
    free(tok);
    b64url_str(hdr, "[\"alg\",\"ES256\"]");
    xasprintf(&tok, "%s.%s.%s", hdr, pl, sig);
    ok(rejects(keys, tok, "malformed header"), "header not an object rejected");
    free(tok);

    /* HS256/HS512 HMAC'd with the public PEM: libjwt alone accepts these */
    tok = sign_raw(cl, JWT_ALG_HS256, keys->own.public_pem, strlen(keys->own.public_pem), keys->own.kid, NULL);
    ok(jwt_decode(&jwt, tok, (const unsigned char *)keys->own.public_pem, (int)strlen(keys->own.public_pem)) == 0,
       "(libjwt's own jwt_decode accepts HS256 keyed with the public PEM)");
    jwt_free(jwt);
    ok(rejects(keys, tok, "alg is not ES256"), "HS256 keyed with the public PEM rejected");
    free(tok);
    tok = sign_raw(cl, JWT_ALG_HS512, keys->own.public_pem, strlen(keys->own.public_pem), keys->own.kid, NULL);
    ok(rejects(keys, tok, "alg is not ES256"), "HS512 (64-byte MAC, like an ES256 signature) rejected");
    free(tok);

    /* ES384 with our P-256 key: libjwt verifies it */
    tok = sign_raw(cl, JWT_ALG_ES384, keys->own.private_pem, strlen(keys->own.private_pem), keys->own.kid, NULL);
    ok(jwt_decode(&jwt, tok, (const unsigned char *)keys->own.public_pem, (int)strlen(keys->own.public_pem)) == 0,
       "(libjwt's own jwt_decode accepts ES384 signed by a P-256 key)");
    jwt_free(jwt);
    ok(rejects(keys, tok, "alg is not ES256"), "ES384 rejected");
    free(tok);

    /* RS256 */
    {
        EVP_PKEY *rsa = EVP_RSA_gen(2048);
        char *pem = pem_of(rsa, 1);
        tok = sign_raw(cl, JWT_ALG_RS256, pem, strlen(pem), keys->own.kid, NULL);
        ok(tok != NULL && rejects(keys, tok, "alg is not ES256"), "RS256 rejected");
        free(tok);
        free(pem);
        EVP_PKEY_free(rsa);
    }

    /* crit */
    tok = sign_raw(cl, JWT_ALG_ES256, keys->own.private_pem, strlen(keys->own.private_pem), keys->own.kid,
                   "{\"crit\":[\"exp\"]}");
    ok(rejects(keys, tok, "unsupported crit header"), "crit header rejected");
    free(tok);

    /* garbage */
    ok(rejects(keys, "", "empty token"), "empty string rejected");
    {
        token_claims_t c;
        char err[128];
        ok(token_verify(keys, NULL, 0, now, &c, err, sizeof(err)) == -1 && strcmp(err, "empty token") == 0,
           "NULL rejected");
        ok(token_verify(keys, "x", 1, now, &c, NULL, 0) == -1, "NULL err buffer is fine");
    }
    ok(rejects(keys, "garbage", "malformed token"), "\"garbage\" rejected");
    ok(rejects(keys, "Bearer abc", "malformed token"), "\"Bearer abc\" rejected");
    ok(rejects(keys, ".", "malformed token"), "\".\" rejected");
    ok(rejects(keys, "..", "malformed token"), "\"..\" rejected");
    ok(rejects(keys, "a..b", "malformed token"), "empty payload rejected");
    ok(rejects(keys, ".a.b", "malformed token"), "empty header rejected");
    ok(rejects(keys, "a.b.c.d", "malformed token"), "four segments rejected");
    ok(rejects(keys, "aGVsbG8.d29ybGQ.Zm9v", "malformed header"), "three segments of junk base64 rejected");
    ok(rejects(keys, "@@@@.####.$$$$", "malformed token"), "three segments of non-base64 rejected");
    ok(rejects(keys, "@@@@.e30.AAAA", "malformed header"), "non-base64 header rejected");
    ok(rejects(keys, "eyJhbGciOiJFUzI1NiJ9.e30.!!!!", "malformed signature"), "non-base64 signature rejected");
    ok(rejects(keys, "eyJhbGciOiJFUzI1NiJ9.e3+/.AAAA", "malformed token"),
       "standard-base64 characters in the payload rejected");
    ok(rejects(keys, "eyJhbGciOiJFUzI1NiJ9=.e30.AAAA", "malformed header"), "padded header rejected");
    {
        /* exact-length, not NUL-terminated, with a NUL inside */
        token_claims_t c;
        char err[128], buf[] = {'e', 'y', 'J', '\0', '.', 'a', '.', 'b'};
        ok(token_verify(keys, buf, sizeof(buf), now, &c, err, sizeof(err)) == -1 &&
               strcmp(err, "malformed header") == 0,
           "NUL inside the header rejected");
    }
    {
        size_t n = 8193;
        char *huge = malloc(n + 1);
        memset(huge, 'a', n);
        huge[n] = '\0';
        huge[100] = huge[200] = '.';
        ok(rejects(keys, huge, "token too long"), "over-long token (8193 bytes) rejected");
        free(huge);
    }
    {
        char big[9000];
        memset(big, 'a', 7000);
        big[7000] = '\0';
        free(cl);
        xasprintf(&cl, "{\"iss\":\"" ISSUER "\",\"aud\":\"" SERVICE "\",\"exp\":%lld,\"pad\":\"%s\"}",
                  (long long)now + 300, big);
        tok = sign_own(keys, cl, keys->own.kid);
        ok(strlen(tok) > 8192 && rejects(keys, tok, "token too long"), "validly signed but over-long token rejected");
        free(tok);
    }
    free(cl);
}

static void test_external(token_keys_t *keys)
{
    token_keys_t corp, evil, jw;
    char path[256], pub[256], *err = NULL, *tok, *jwks;
    token_claims_t v;
    char errbuf[128];

    ok(init_keys(&corp, "corp/token.pem", "corp") == 0, "corp key made");
    ok(init_keys(&evil, "corp/token.pem", "evil") == 0, "same key, issuer evil");
    path_in(pub, sizeof(pub), "corp.pub");
    write_file(pub, corp.own.public_pem);

    tok = issue(&corp, "bob", now, 300);
    ok(rejects(keys, tok, "unknown kid"), "corp token rejected before corp is trusted");
    ok(token_keys_add_external(keys, pub, "corp", &err) == 0 && keys->nexternal == 1,
       "PEM public key added as external");
    free(err);
    err = NULL;
    ok(strcmp(keys->external[0].kid, corp.own.kid) == 0 && keys->external[0].private_pem == NULL &&
           strcmp(keys->external[0].issuer, "corp") == 0,
       "external key: thumbprint kid, no private key, issuer");
    ok(verify(keys, tok, &v, errbuf, sizeof(errbuf)) == 0 && v.external == 1 && strcmp(v.sub, "bob") == 0 &&
           v.naccess == 1 && strcmp(v.access[0].name, "a/b") == 0,
       "token of the external issuer verifies, external = 1");
    free(tok);
    tok = issue(&evil, "bob", now, 300);
    ok(rejects(keys, tok, "wrong issuer"), "external key with the wrong iss rejected");
    free(tok);
    {
        char *cl = claims_json("corp", "\"" SERVICE "\"", now + 300, now, now, NULL);
        tok = sign_own(keys, cl, keys->own.kid);
        ok(rejects(keys, tok, "wrong issuer"), "our key cannot speak for corp (iss is bound to the key)");
        free(tok);
        tok = sign_raw(cl, JWT_ALG_ES256, corp.own.private_pem, strlen(corp.own.private_pem), keys->own.kid, NULL);
        ok(rejects(keys, tok, "bad signature"), "corp's signature under our kid rejected");
        free(tok);
        free(cl);
    }
    ok(token_keys_add_external(keys, pub, "corp", &err) == -1 && err != NULL && strstr(err, "already in use") != NULL &&
           keys->nexternal == 1,
       "same key twice refused, nothing added");
    free(err);
    err = NULL;

    /* JWKS file, as berth itself publishes it */
    ok(init_keys(&jw, "jw/token.pem", "jw") == 0, "third key made");
    jwks = token_jwks(&jw);
    path_in(path, sizeof(path), "jw.jwks");
    write_file(path, jwks);
    free(jwks);
    ok(token_keys_add_external(keys, path, "jw", &err) == 0 && keys->nexternal == 2 &&
           strcmp(keys->external[1].kid, jw.own.kid) == 0,
       "JWKS file added as external");
    free(err);
    err = NULL;
    ok(keys->external[1].public_pem != NULL && strcmp(keys->external[1].public_pem, jw.own.public_pem) == 0,
       "public PEM rebuilt from x/y equals the original");
    tok = issue(&jw, "carol", now, 300);
    ok(verify(keys, tok, &v, errbuf, sizeof(errbuf)) == 0 && v.external == 1 && strcmp(v.sub, "carol") == 0,
       "token of the JWKS issuer verifies");
    free(tok);

    /* A JWKS with a foreign kid, an RSA key and an encryption key: only the EC signing key is taken. */
    {
        json_t *doc = json_loads(jwks = token_jwks(&evil), 0, NULL),
               *ec = json_array_get(json_object_get(doc, "keys"), 0);
        char *text, *cl;
        token_keys_t fresh;
        char kp[256];
        json_t *enc = json_deep_copy(ec);

        free(jwks);
        json_object_set_new(ec, "kid", json_string("corp-key-1"));
        json_object_set_new(enc, "use", json_string("enc"));
        json_object_set_new(enc, "kid", json_string("enc-1"));
        json_array_insert_new(
            json_object_get(doc, "keys"), 0,
            json_pack("{s:s, s:s, s:s, s:s}", "kty", "RSA", "n", "AQAB", "e", "AQAB", "kid", "rsa-1"));
        json_array_append_new(json_object_get(doc, "keys"), enc);
        text = json_dumps(doc, 0);
        path_in(path, sizeof(path), "mixed.jwks");
        write_file(path, text);
        free(text);
        json_decref(doc);

        path_in(kp, sizeof(kp), "keys/token.pem");
        token_keys_init(&fresh, kp, ISSUER, SERVICE, &err);
        free(err);
        err = NULL;
        ok(token_keys_add_external(&fresh, path, "corp", &err) == 0 && fresh.nexternal == 1 &&
               strcmp(fresh.external[0].kid, "corp-key-1") == 0,
           "mixed JWKS: only the EC signing key, with its own kid");
        free(err);
        err = NULL;
        cl = claims_json("corp", "\"" SERVICE "\"", now + 300, now, now, NULL);
        tok = sign_raw(cl, JWT_ALG_ES256, corp.own.private_pem, strlen(corp.own.private_pem), "corp-key-1", NULL);
        ok(verify(&fresh, tok, &v, errbuf, sizeof(errbuf)) == 0 && v.external == 1,
           "token with the JWKS's kid verifies");
        free(tok);
        tok = sign_raw(cl, JWT_ALG_ES256, corp.own.private_pem, strlen(corp.own.private_pem), "enc-1", NULL);
        ok(rejects(&fresh, tok, "unknown kid"), "the encryption key's kid is unknown");
        free(tok);
        free(cl);
        token_keys_dispose(&fresh);
    }

    /* A lone JWK */
    {
        char *text = token_jwks(&corp), *start, *end;
        token_keys_t fresh;
        char kp[256];
        start = strchr(text, '[') + 1;
        end = strrchr(text, ']');
        *end = '\0';
        path_in(path, sizeof(path), "lone.jwk");
        write_file(path, start);
        free(text);
        path_in(kp, sizeof(kp), "keys/token.pem");
        token_keys_init(&fresh, kp, ISSUER, SERVICE, &err);
        free(err);
        err = NULL;
        ok(token_keys_add_external(&fresh, path, "corp", &err) == 0 && fresh.nexternal == 1 &&
               strcmp(fresh.external[0].kid, corp.own.kid) == 0,
           "a lone JWK is accepted");
        free(err);
        err = NULL;
        token_keys_dispose(&fresh);
    }

    /* refusals; nothing is added */
    {
        static const struct {
            const char *content, *why, *msg;
        } bad[] = {
            {"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}", "JWKS with only RSA", "no EC P-256"},
            {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\",\"y\":\"AA\"}]}", "JWKS with only P-384",
             "no EC P-256"},
            {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"AAAA\"}]}", "short x/y",
             "malformed x or y"},
            {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
             "\"y\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE\"}]}",
             "point not on the curve", "not on P-256"},
            {"{\"keys\":{}}", "keys not an array", "\"keys\" array"},
            {"{\"keys\":[]}", "empty JWKS", "no EC P-256"},
            {"not json", "garbage", "neither a PEM"},
            {"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "broken PEM", "not a PEM public key"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
            path_in(path, sizeof(path), "bad.jwks");
            write_file(path, bad[i].content);
            int r = token_keys_add_external(keys, path, "x", &err);
            ok(r == -1 && err != NULL && strstr(err, bad[i].msg) != NULL && keys->nexternal == 2, "refused: %s (%s)",
               bad[i].why, err != NULL ? err : "");
            free(err);
            err = NULL;
        }
        {
            EVP_PKEY *p384 = EVP_EC_gen("P-384");
            char *pem = pem_of(p384, 0);
            path_in(path, sizeof(path), "p384.pub");
            write_file(path, pem);
            ok(token_keys_add_external(keys, path, "x", &err) == -1 && err != NULL &&
                   strstr(err, "not an EC P-256 key") != NULL,
               "P-384 PEM refused");
            free(err);
            err = NULL;
            free(pem);
            EVP_PKEY_free(p384);
        }
        path_in(path, sizeof(path), "no-such-file");
        ok(token_keys_add_external(keys, path, "x", &err) == -1 && err != NULL && strstr(err, "cannot read") != NULL,
           "missing file refused");
        free(err);
        err = NULL;
        ok(token_keys_add_external(keys, pub, "", &err) == -1 && err != NULL, "empty issuer refused");
        free(err);
        err = NULL;
        ok(keys->nexternal == 2, "failed additions left the keys as they were");
    }

    token_keys_dispose(&corp);
    token_keys_dispose(&evil);
    token_keys_dispose(&jw);
}

static void test_claims_actions(void)
{
    token_claims_t c;

    memset(&c, 0, sizeof(c));
    c.naccess = 4;
    c.access[0] = (scope_t){SCOPE_REPOSITORY, "a/b", ACTION_PULL};
    c.access[1] = (scope_t){SCOPE_REPOSITORY, "a/b", ACTION_PUSH};
    c.access[2] = (scope_t){SCOPE_REPOSITORY, "c/d", ACTION_DELETE};
    c.access[3] = (scope_t){SCOPE_REGISTRY, "catalog", ACTION_ALL};
    ok(token_claims_actions(&c, SCOPE_REPOSITORY, "a/b") == (ACTION_PULL | ACTION_PUSH), "A: union of its entries");
    ok(token_claims_actions(&c, SCOPE_REPOSITORY, "c/d") == ACTION_DELETE, "B: its own actions only");
    ok(token_claims_actions(&c, SCOPE_REPOSITORY, "x/y") == 0, "unlisted repository: nothing");
    ok(token_claims_actions(&c, SCOPE_REPOSITORY, "a") == 0 && token_claims_actions(&c, SCOPE_REPOSITORY, "a/b/c") == 0,
       "prefix and extension do not match");
    ok(token_claims_actions(&c, SCOPE_REGISTRY, "catalog") == ACTION_ALL, "catalog");
    ok(token_claims_actions(&c, SCOPE_REPOSITORY, "catalog") == 0, "type must match (repository \"catalog\")");
    ok(token_claims_actions(&c, SCOPE_REGISTRY, "a/b") == 0, "type must match (registry \"a/b\")");
    c.naccess = 0;
    ok(token_claims_actions(&c, SCOPE_REPOSITORY, "a/b") == 0, "no access: nothing");
}

static void *verify_worker(void *arg)
{
    const token_keys_t *keys = arg;
    long good = 1;

    for (int i = 0; i < 50; ++i) {
        token_claims_t c, v;
        char err[128], *tok;
        memset(&c, 0, sizeof(c));
        snprintf(c.sub, sizeof(c.sub), "user%d", i);
        tok = token_issue(keys, &c, now, 60);
        good &= tok != NULL && token_verify(keys, tok, strlen(tok), now, &v, err, sizeof(err)) == 0 &&
                strcmp(v.sub, c.sub) == 0 && strcmp(v.jti, c.jti) == 0;
        good &= token_verify(keys, "a.b.c", 5, now, &v, err, sizeof(err)) == -1;
        free(tok);
    }
    return (void *)good;
}

/* The keys are shared read-only by every thread: issue and verify concurrently. */
static void test_threads(const token_keys_t *keys)
{
    pthread_t t[4];
    long good = 1;

    for (int i = 0; i < 4; ++i)
        pthread_create(&t[i], NULL, verify_worker, (void *)keys);
    for (int i = 0; i < 4; ++i) {
        void *r;
        pthread_join(t[i], &r);
        good &= (long)r;
    }
    ok(good, "4 threads issuing and verifying at once");
}

/* Eight processes start at once on a fresh path: one key must win and all must report it. */
static void test_race(void)
{
    enum { N = 8 };
    char path[256], kids[N][64];
    int go[2], res[N][2], status, same = 1, allok = 1, entries = 0;
    pid_t pids[N];
    token_keys_t k;
    DIR *d;
    struct dirent *e;

    path_in(path, sizeof(path), "race/token.pem");
    if (pipe(go) != 0)
        abort();
    fflush(stdout); /* a child's _exit flushes inherited stdio buffers under ThreadSanitizer: TAP lines twice */
    for (int i = 0; i < N; ++i) {
        if (pipe(res[i]) != 0)
            abort();
        if ((pids[i] = fork()) == 0) {
            char c, *err = NULL;
            token_keys_t ck;
            close(go[1]);
            if (read(go[0], &c, 1) < 0) /* wait for the start: EOF when the parent closes */
                _exit(3);
            if (token_keys_init(&ck, path, ISSUER, SERVICE, &err) != 0)
                _exit(2);
            if (write(res[i][1], ck.own.kid, sizeof(ck.own.kid)) != (ssize_t)sizeof(ck.own.kid))
                _exit(4);
            token_keys_dispose(&ck);
            _exit(0);
        }
        close(res[i][1]);
    }
    close(go[0]);
    close(go[1]); /* go */
    for (int i = 0; i < N; ++i) {
        memset(kids[i], 0, sizeof(kids[i]));
        if (read(res[i][0], kids[i], sizeof(kids[i])) != (ssize_t)sizeof(kids[i]))
            allok = 0;
        close(res[i][0]);
        waitpid(pids[i], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            allok = 0;
    }
    for (int i = 1; i < N; ++i)
        if (strcmp(kids[i], kids[0]) != 0)
            same = 0;
    ok(allok, "all %d racing processes initialised", N);
    ok(same && strlen(kids[0]) == 43, "they all report the same kid");
    ok(init_keys(&k, "race/token.pem", ISSUER) == 0 && strcmp(k.own.kid, kids[0]) == 0, "the file holds that key");
    token_keys_dispose(&k);
    path_in(path, sizeof(path), "race");
    d = opendir(path);
    while (d != NULL && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            ++entries;
    if (d != NULL)
        closedir(d);
    ok(entries == 1, "one file in the folder, no temp files left (%d)", entries);
}

/* Independent check of one signature with the openssl command line (R || S converted to DER). */
static void test_openssl_cli(const token_keys_t *keys)
{
    char *tok = issue(keys, "alice", now, 300), cmd[1024], in[256], sigf[256], pubf[256];
    const char *dot2 = strrchr(tok, '.');
    unsigned char rs[64], *der = NULL;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    FILE *f;
    int derlen, r;

    if (system("command -v openssl >/dev/null 2>&1") != 0) {
        printf("# openssl command not found: skipping the cross-check\n");
        ECDSA_SIG_free(sig);
        free(tok);
        return;
    }
    unb64url(rs, dot2 + 1, strlen(dot2 + 1));
    ECDSA_SIG_set0(sig, BN_bin2bn(rs, 32, NULL), BN_bin2bn(rs + 32, 32, NULL));
    derlen = i2d_ECDSA_SIG(sig, &der);
    path_in(in, sizeof(in), "signing-input");
    path_in(sigf, sizeof(sigf), "sig.der");
    path_in(pubf, sizeof(pubf), "own.pub");
    f = fopen(in, "w");
    fwrite(tok, 1, (size_t)(dot2 - tok), f);
    fclose(f);
    f = fopen(sigf, "w");
    fwrite(der, 1, (size_t)derlen, f);
    fclose(f);
    write_file(pubf, keys->own.public_pem);
    snprintf(cmd, sizeof(cmd), "openssl dgst -sha256 -verify %s -signature %s %s >/dev/null 2>&1", pubf, sigf, in);
    r = system(cmd);
    ok(r == 0, "openssl dgst -verify accepts berth's ES256 signature");
    f = fopen(in, "a");
    fputc('x', f);
    fclose(f);
    r = system(cmd);
    ok(r != 0, "openssl dgst -verify refuses it for other input");
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);
    free(tok);
}

int main(void)
{
    token_keys_t keys, other;
    char cmd[128];

    /* a prompt for a passphrase would read stdin: make it fail instead of hanging */
    if (freopen("/dev/null", "r", stdin) == NULL)
        abort();
    strcpy(dir, "/tmp/berth-token-test-XXXXXX");
    if (mkdtemp(dir) == NULL)
        abort();
    now = (int64_t)time(NULL);

    ok(init_keys(&keys, "keys/token.pem", ISSUER) == 0, "key created on first init");
    ok(init_keys(&other, "other/token.pem", ISSUER) == 0 && strcmp(other.own.kid, keys.own.kid) != 0,
       "second key file, different kid");
    test_key_file(&keys);
    test_init_errors();
    test_leading_zero_coordinate();
    test_jwks_and_kid(&keys);
    test_round_trip(&keys);
    test_times(&keys);
    test_claims_checks(&keys);
    test_raw_payloads(&keys);
    test_forgeries(&keys, &other);
    test_external(&keys);
    test_claims_actions();
    test_threads(&keys);
    test_race();
    test_openssl_cli(&keys);

    token_keys_dispose(&keys);
    token_keys_dispose(&other);
    token_keys_dispose(&keys); /* twice is harmless */
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    return tap_done();
}
