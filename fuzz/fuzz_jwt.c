/*
 * libFuzzer target for token verification (token_verify in src/auth/token.c), with berth's own key and an external
 * issuer's (fuzz/keys.h). The first byte picks the reading of the rest:
 *   0  a token as a client presents it;
 *   1  a header and a payload (JSON, split at the first NUL byte) that this target signs with berth's key,
 *   2  the same signed with the external issuer's key: so that the fuzzer reaches every claim check behind the
 *      signature, where what verification accepts is checked against the JSON itself;
 *   3  claims (a subject line, then one line per access entry) that token_issue signs and token_verify must read
 *      back exactly.
 */
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include "fuzz.h"
#include "keys.h"
#include "oci/name.h"

static token_keys_t keys;
static EVP_PKEY *own_key, *ext_key;

static EVP_PKEY *private_key(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    CHECK(k != NULL);
    return k;
}

static void init(void)
{
    if (own_key != NULL)
        return;
    fuzz_keys(&keys, 1);
    own_key = private_key(fuzz_own_pem);
    ext_key = private_key(fuzz_ext_pem);
}

static size_t b64url(char *out, const unsigned char *in, size_t len)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; ++i) {
        acc = acc << 8 | in[i];
        for (bits += 8; bits >= 6; bits -= 6)
            out[o++] = abc[acc >> (bits - 6) & 63];
    }
    if (bits > 0)
        out[o++] = abc[acc << (6 - bits) & 63];
    out[o] = '\0';
    return o;
}

/* "b64(header).b64(payload).b64(R||S)" signed ES256 with `key`; malloc'd, its length in *len. */
static char *sign(EVP_PKEY *key, const uint8_t *hdr, size_t hlen, const uint8_t *pl, size_t plen, size_t *len)
{
    char *out = malloc((hlen + plen) / 3 * 4 + 8 + 100);
    size_t o = b64url(out, hdr, hlen);
    out[o++] = '.';
    o += b64url(out + o, pl, plen);

    unsigned char der[80], rs[64];
    size_t derlen = sizeof(der);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    CHECK(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1);
    CHECK(EVP_DigestSign(ctx, der, &derlen, (const unsigned char *)out, o) == 1);
    EVP_MD_CTX_free(ctx);
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
    CHECK(sig != NULL);
    CHECK(BN_bn2binpad(ECDSA_SIG_get0_r(sig), rs, 32) == 32 && BN_bn2binpad(ECDSA_SIG_get0_s(sig), rs + 32, 32) == 32);
    ECDSA_SIG_free(sig);
    out[o++] = '.';
    o += b64url(out + o, rs, sizeof(rs));
    *len = o;
    return out;
}

static int json_str_is(const json_t *v, const char *s)
{
    return json_is_string(v) && json_string_length(v) == strlen(s) && strcmp(json_string_value(v), s) == 0;
}

/* What any token verification accepted promises, whatever its claims. */
static void check_claims(const token_claims_t *c)
{
    CHECK(c->exp > FUZZ_NOW - TOKEN_LEEWAY && c->nbf <= FUZZ_NOW + TOKEN_LEEWAY && c->iat <= FUZZ_NOW + TOKEN_LEEWAY);
    CHECK(memchr(c->sub, '\0', sizeof(c->sub)) != NULL && memchr(c->jti, '\0', sizeof(c->jti)) != NULL);
    CHECK(c->naccess <= TOKEN_MAX_ACCESS);
    for (size_t i = 0; i < c->naccess; ++i) {
        const scope_t *s = &c->access[i];
        CHECK((s->actions & ~(unsigned)ACTION_ALL) == 0);
        if (s->type == SCOPE_REPOSITORY)
            CHECK(name_valid(s->name, strlen(s->name)));
        else
            CHECK(s->type == SCOPE_REGISTRY && strcmp(s->name, "catalog") == 0);
    }
}

/* A token we signed was accepted: its header and payload say what acceptance requires. */
static void check_signed(int external, const uint8_t *hdr, size_t hlen, const uint8_t *pl, size_t plen,
                         const token_claims_t *c)
{
    json_t *h = json_loadb((const char *)hdr, hlen, JSON_REJECT_DUPLICATES, NULL);
    json_t *p = json_loadb((const char *)pl, plen, JSON_REJECT_DUPLICATES, NULL), *kid, *aud, *sub;
    CHECK(json_is_object(h) && json_is_object(p));
    CHECK(json_str_is(json_object_get(h, "alg"), "ES256") && json_object_get(h, "crit") == NULL);
    kid = json_object_get(h, "kid");
    CHECK(external ? json_str_is(kid, FUZZ_EXT_KID) : kid == NULL || json_str_is(kid, keys.own.kid));
    CHECK(c->external == external);
    CHECK(json_str_is(json_object_get(p, "iss"), external ? FUZZ_EXT_ISSUER : FUZZ_ISSUER));
    aud = json_object_get(p, "aud");
    int aud_ok = json_str_is(aud, FUZZ_SERVICE);
    for (size_t i = 0; i < json_array_size(aud); ++i)
        aud_ok |= json_str_is(json_array_get(aud, i), FUZZ_SERVICE);
    CHECK(aud_ok);
    CHECK(json_is_number(json_object_get(p, "exp")));
    sub = json_object_get(p, "sub");
    CHECK(sub == NULL ? c->sub[0] == '\0' : json_str_is(sub, c->sub));
    json_decref(h);
    json_decref(p);
}

/* Mode 3: claims from lines; what token_issue signs, token_verify reads back. */
static void round_trip(const uint8_t *data, size_t size)
{
    token_claims_t c, got;
    char err[128], *s = fuzz_strndup(data, size), *save = NULL;
    int valid = 1, too_many = 0;
    memset(&c, 0, sizeof(c));
    c.generation = size != 0 ? data[0] : 0;
    c.token_id = size > 1 ? data[1] % 3 : 0;
    for (char *line = strtok_r(s, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        if (c.sub[0] == '\0' && strlen(line) < sizeof(c.sub) && line[0] != '-') {
            snprintf(c.sub, sizeof(c.sub), "%s", line);
            json_t *utf8 = json_string(c.sub); /* libjwt's claims are JSON: a subject must be UTF-8 */
            valid &= utf8 != NULL;
            json_decref(utf8);
            continue;
        }
        /* "<type><actions><name>": type 'r' (repository) or anything else (registry), actions a digit 0-7 */
        if (strlen(line) < 2 || strlen(line) - 2 > SCOPE_NAME_MAX)
            continue;
        if (c.naccess == TOKEN_MAX_ACCESS) {
            too_many = 1;
            break;
        }
        scope_t *a = &c.access[c.naccess++];
        a->type = line[0] == 'r' ? SCOPE_REPOSITORY : SCOPE_REGISTRY;
        a->actions = (unsigned)(line[1] - '0') & ACTION_ALL;
        snprintf(a->name, sizeof(a->name), "%s", line + 2);
        valid &= a->type == SCOPE_REPOSITORY ? name_valid(a->name, strlen(a->name)) : strcmp(a->name, "catalog") == 0;
    }
    free(s);
    if (too_many) {
        c.naccess = TOKEN_MAX_ACCESS + 1;
        CHECK(token_issue(&keys, &c, FUZZ_NOW, 300) == NULL);
        return;
    }
    int64_t ttl = size > 2 ? 1 + data[2] : 300;
    char *jwt = token_issue(&keys, &c, FUZZ_NOW, ttl);
    CHECK((jwt != NULL) == valid);
    if (jwt == NULL)
        return;
    int r = token_verify(&keys, jwt, strlen(jwt), FUZZ_NOW, &got, err, sizeof(err));
    if (r != 0)
        fprintf(stderr, "issued, then refused: %s\n", err);
    CHECK(r == 0);
    check_claims(&got);
    CHECK(strcmp(got.sub, c.sub) == 0 && strcmp(got.jti, c.jti) == 0 && got.generation == c.generation &&
          got.token_id == c.token_id && got.iat == FUZZ_NOW && got.nbf == FUZZ_NOW && got.exp == FUZZ_NOW + ttl &&
          !got.external && got.naccess == c.naccess);
    for (size_t i = 0; i < c.naccess; ++i)
        CHECK(got.access[i].type == c.access[i].type && strcmp(got.access[i].name, c.access[i].name) == 0 &&
              got.access[i].actions == c.access[i].actions);
    free(jwt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    token_claims_t c;
    char err[128];
    int mode = 0;

    init();
    if (size != 0) {
        mode = data[0] % 4;
        ++data;
        --size;
    }
    if (mode == 0) {
        /* exactly the token's bytes, so that ASan sees a read beyond them */
        if (token_verify(&keys, (const char *)data, size, FUZZ_NOW, &c, err, sizeof(err)) == 0)
            check_claims(&c);
        else
            CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
    } else if (mode == 1 || mode == 2) {
        const uint8_t *nul = memchr(data, '\0', size);
        size_t hlen = nul != NULL ? (size_t)(nul - data) : size;
        const uint8_t *pl = nul != NULL ? nul + 1 : data + size;
        size_t plen = (size_t)(data + size - pl), len;
        char *jwt = sign(mode == 2 ? ext_key : own_key, data, hlen, pl, plen, &len);
        if (token_verify(&keys, jwt, len, FUZZ_NOW, &c, err, sizeof(err)) == 0) {
            check_claims(&c);
            check_signed(mode == 2, data, hlen, pl, plen, &c);
        }
        free(jwt);
    } else {
        round_trip(data, size);
    }
    return 0;
}
