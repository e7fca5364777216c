/*
 * libFuzzer target for reading an external issuer's keys (token_keys_add_external in src/auth/token.c): a JWKS
 * document, a single JWK or a PEM public key, added to a key set that already holds berth's own key (fuzz/keys.h).
 * A file is taken whole or not at all; what is taken is usable P-256 keys under distinct, non-empty kids, none of
 * them berth's own; and berth's own JWKS (token_jwks) is a file it reads back under the same kid.
 */
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include "fuzz.h"
#include "keys.h"

static token_keys_t own;

static void init(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    fuzz_keys(&own, 0);

    /* berth's published JWKS, given to another berth as an external issuer's, names the same key */
    char path[64], *err = NULL, *jwks = token_jwks(&own);
    token_keys_t other = {0};
    int fd = fuzz_memfd(jwks, strlen(jwks), path);
    CHECK(token_keys_add_external(&other, path, FUZZ_ISSUER, &err) == 0 && other.nexternal == 1);
    CHECK(strcmp(other.external[0].kid, own.own.kid) == 0 &&
          strcmp(other.external[0].public_pem, own.own.public_pem) == 0);
    /* and given to this one, it is refused: the kid is taken */
    CHECK(token_keys_add_external(&own, path, FUZZ_ISSUER, &err) != 0 && err != NULL && own.nexternal == 0);
    free(err);
    close(fd);
    token_keys_dispose(&other);
    free(jwks);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64], *err = NULL;

    init();
    int fd = fuzz_memfd(data, size, path);
    int r = token_keys_add_external(&own, path, FUZZ_EXT_ISSUER, &err);
    close(fd);
    if (r != 0) {
        CHECK(err != NULL && own.nexternal == 0); /* nothing taken, and the reason said */
        free(err);
        return 0;
    }
    CHECK(err == NULL && own.nexternal != 0);
    for (size_t i = 0; i < own.nexternal; ++i) {
        const token_key_t *k = &own.external[i];
        size_t kl = strnlen(k->kid, sizeof(k->kid));
        CHECK(kl != 0 && kl < sizeof(k->kid) && strcmp(k->kid, own.own.kid) != 0);
        for (size_t j = 0; j < i; ++j)
            CHECK(strcmp(k->kid, own.external[j].kid) != 0);
        CHECK(k->private_pem == NULL && k->issuer != NULL && strcmp(k->issuer, FUZZ_EXT_ISSUER) == 0);
        /* the key is a P-256 public key */
        BIO *bio = BIO_new_mem_buf(k->public_pem, -1);
        EVP_PKEY *pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
        CHECK(pkey != NULL && EVP_PKEY_is_a(pkey, "EC") && EVP_PKEY_get_bits(pkey) == 256);
        EVP_PKEY_free(pkey);
        BIO_free(bio);
    }
    /* back to berth's own key alone for the next input */
    for (size_t i = 0; i < own.nexternal; ++i) {
        free(own.external[i].public_pem);
        free(own.external[i].issuer);
    }
    free(own.external);
    own.external = NULL;
    own.nexternal = 0;
    return 0;
}
