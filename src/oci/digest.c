/*
 * Content digests: parsing "algorithm:encoded" strings and hashing with OpenSSL's EVP interface.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include "oci/digest.h"

struct digest_hasher {
    EVP_MD_CTX *ctx;
    digest_algo_t algo;
};

static const struct {
    const char *name;
    size_t namelen;
    size_t hexlen;
} algos[] = {
    [DIGEST_SHA256] = {"sha256", 6, 64},
    [DIGEST_SHA512] = {"sha512", 6, 128},
};

static int is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int is_lower_hex(char c)
{
    return (c >= 'a' && c <= 'f') || (c >= '0' && c <= '9');
}

static int is_encoded_char(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z') || c == '=' || c == '_' || c == '-';
}

/* algorithm = component (separator component)*, component = [a-z0-9]+, separator = [+._-] */
static int algorithm_grammatical(const char *s, size_t len)
{
    size_t i = 0;

    for (;;) {
        if (i == len || !is_lower_alnum(s[i]))
            return 0;
        while (i < len && is_lower_alnum(s[i]))
            ++i;
        if (i == len)
            return 1;
        if (s[i] != '+' && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return 0;
        ++i;
    }
}

const char *digest_algo_name(digest_algo_t algo)
{
    return algo == DIGEST_SHA512 ? algos[DIGEST_SHA512].name : algos[DIGEST_SHA256].name;
}

int digest_algo_from_name(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(algos) / sizeof(algos[0]); ++i)
        if (len == algos[i].namelen && memcmp(name, algos[i].name, len) == 0)
            return (int)i;
    return -1;
}

size_t digest_algo_hexlen(digest_algo_t algo)
{
    return algo == DIGEST_SHA512 ? algos[DIGEST_SHA512].hexlen : algos[DIGEST_SHA256].hexlen;
}

static void digest_clear(digest_t *out)
{
    out->algo = DIGEST_SHA256;
    out->len = 0;
    out->str[0] = '\0';
}

digest_err_t digest_parse(digest_t *out, const char *s, size_t len)
{
    const char *colon;
    size_t alen, elen;
    int algo;

    digest_clear(out);
    if (len == 0 || (colon = memchr(s, ':', len)) == NULL)
        return DIGEST_EMALFORMED;
    alen = colon - s;
    elen = len - alen - 1;
    if (!algorithm_grammatical(s, alen) || elen == 0)
        return DIGEST_EMALFORMED;
    for (size_t i = 0; i < elen; ++i)
        if (!is_encoded_char(colon[1 + i]))
            return DIGEST_EMALFORMED; /* also rejects a second ':' */
    if ((algo = digest_algo_from_name(s, alen)) < 0)
        return DIGEST_EUNSUPPORTED;
    /* A registered algorithm with the wrong encoding is not a digest at all, so malformed rather than unsupported. */
    if (elen != algos[algo].hexlen)
        return DIGEST_EMALFORMED;
    for (size_t i = 0; i < elen; ++i)
        if (!is_lower_hex(colon[1 + i]))
            return DIGEST_EMALFORMED;

    out->algo = (digest_algo_t)algo;
    memcpy(out->str, s, len);
    out->str[len] = '\0';
    out->len = len;
    return DIGEST_OK;
}

static const EVP_MD *algo_md(digest_algo_t algo)
{
    return algo == DIGEST_SHA512 ? EVP_sha512() : EVP_sha256();
}

/* Format a raw hash as "algo:hex" into `out`. */
static void digest_format(digest_t *out, digest_algo_t algo, const unsigned char *md, size_t mdlen)
{
    static const char xdigits[] = "0123456789abcdef";
    const char *name = digest_algo_name(algo);
    size_t nlen = strlen(name);
    char *p;

    out->algo = algo;
    memcpy(out->str, name, nlen);
    out->str[nlen] = ':';
    p = out->str + nlen + 1;
    for (size_t i = 0; i < mdlen; ++i) {
        *p++ = xdigits[md[i] >> 4];
        *p++ = xdigits[md[i] & 0xf];
    }
    *p = '\0';
    out->len = p - out->str;
}

digest_hasher_t *digest_hasher_new(digest_algo_t algo)
{
    digest_hasher_t *h;

    if ((h = malloc(sizeof(*h))) == NULL)
        return NULL;
    h->algo = algo == DIGEST_SHA512 ? DIGEST_SHA512 : DIGEST_SHA256;
    if ((h->ctx = EVP_MD_CTX_new()) == NULL || !EVP_DigestInit_ex(h->ctx, algo_md(h->algo), NULL)) {
        EVP_MD_CTX_free(h->ctx);
        free(h);
        return NULL;
    }
    return h;
}

void digest_hasher_update(digest_hasher_t *h, const void *data, size_t len)
{
    if (len == 0)
        return;
    /* Cannot fail for an initialised SHA-2 context; a silently wrong digest would be worse than stopping. */
    if (!EVP_DigestUpdate(h->ctx, data, len))
        abort();
}

void digest_hasher_final(digest_hasher_t *h, digest_t *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (!EVP_DigestFinal_ex(h->ctx, md, &mdlen) || mdlen * 2 != digest_algo_hexlen(h->algo))
        abort();
    digest_format(out, h->algo, md, mdlen);
}

digest_algo_t digest_hasher_algo(const digest_hasher_t *h)
{
    return h->algo;
}

void digest_hasher_free(digest_hasher_t *h)
{
    if (h == NULL)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

void digest_compute(digest_t *out, digest_algo_t algo, const void *data, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    algo = algo == DIGEST_SHA512 ? DIGEST_SHA512 : DIGEST_SHA256;
    if (!EVP_Digest(len != 0 ? data : "", len, md, &mdlen, algo_md(algo), NULL) ||
        mdlen * 2 != digest_algo_hexlen(algo))
        abort();
    digest_format(out, algo, md, mdlen);
}

int digest_equal(const digest_t *a, const digest_t *b)
{
    return a->algo == b->algo && a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
}
