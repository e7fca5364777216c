/*
 * Fixed P-256 keys for the token fuzzers (fuzz_jwt.c, fuzz_jwks.c), made for them and used nowhere else: fixed so
 * that a token in the corpus stays valid and a crash replays the same way.
 */
#ifndef BERTH_FUZZ_KEYS_H
#define BERTH_FUZZ_KEYS_H

#include "auth/token.h"
#include "fuzz.h"

#define FUZZ_NOW 1700000000 /* the clock of every verification: the corpus's tokens expire in 2033 */
#define FUZZ_ISSUER "berth"
#define FUZZ_SERVICE "registry.test"
#define FUZZ_EXT_ISSUER "https://idp.example"
#define FUZZ_EXT_KID "ext-1"

/* berth's own signing key */
static const char fuzz_own_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                                   "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgXk+EAmrGX/Wdq8eM\n"
                                   "8CXuCTZ8gV4j8B2nc7GIWFVZrP+hRANCAAQLeb8pl51Mw8FWqyHgIsBAij6y/xKi\n"
                                   "yg6dE8XvkiOAPFd3AlDC3EsP87HeUMQQjoPKStAzt2aaucIiwIuy2+ti\n"
                                   "-----END PRIVATE KEY-----\n";

/* an external issuer's key; berth knows its public half as the JWK below */
static const char fuzz_ext_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                                   "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg8YXDQvVA1ECbUcxU\n"
                                   "uiBkDmW9OYYkqjEMRio4Y+69K8ihRANCAAS0WbMmvzuQvjP+ogKV5HC1SR1Cf6zV\n"
                                   "avdyoNdyiofATUPgFyAiOS0JPgKGCsJpFW72tij3cPcjbV2Deu3B+Kvx\n"
                                   "-----END PRIVATE KEY-----\n";
static const char fuzz_ext_jwks[] = "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"" FUZZ_EXT_KID "\","
                                    "\"x\":\"tFmzJr87kL4z_qICleRwtUkdQn-s1Wr3cqDXcoqHwE0\","
                                    "\"y\":\"Q-AXICI5LQk-AoYKwmkVbva2KPdw9yNtXYN67cH4q_E\"}]}";

/* The keys berth verifies with: its own (from fuzz_own_pem), and with `external` the external issuer's. */
static inline void fuzz_keys(token_keys_t *keys, int external)
{
    char path[64], *err = NULL;
    int fd = fuzz_memfd(fuzz_own_pem, strlen(fuzz_own_pem), path);
    if (token_keys_init(keys, path, FUZZ_ISSUER, FUZZ_SERVICE, &err) != 0) {
        fprintf(stderr, "fuzz_keys: %s\n", err);
        abort();
    }
    close(fd);
    if (external) {
        fd = fuzz_memfd(fuzz_ext_jwks, strlen(fuzz_ext_jwks), path);
        if (token_keys_add_external(keys, path, FUZZ_EXT_ISSUER, &err) != 0) {
            fprintf(stderr, "fuzz_keys: %s\n", err);
            abort();
        }
        close(fd);
    }
}

#endif
