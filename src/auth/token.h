/*
 * Registry tokens: ES256 JWTs as the Docker registry token protocol uses them, signed with a P-256 key that
 * berth generates at first start (<storage root>/keys/token.pem, PKCS#8 PEM, mode 0600, created atomically so
 * that the server and the CLI never make two), published as a JWKS. Verification accepts only ES256 signed by
 * a known key (berth's own, or a configured external issuer's), and checks exp, nbf, iat (60 s leeway), aud
 * and iss itself: libjwt 1.10 checks none of them, would accept HS256 made with a public key or ES384 made with a
 * P-256 key, and skips the signature check altogether when given a NULL or zero-length key.
 * Everything here is thread-safe: token_keys_t is read-only once set up.
 */
#ifndef BERTH_AUTH_TOKEN_H
#define BERTH_AUTH_TOKEN_H

#include <stddef.h>
#include <stdint.h>
#include "oci/scope.h"

#define TOKEN_LEEWAY 60 /* seconds of clock skew tolerated on exp, nbf, iat */
#define TOKEN_MAX_ACCESS 16

/** One signing/verification key. */
typedef struct {
    char kid[64]; /* RFC 7638 JWK thumbprint, base64url (coordinates padded to 32 bytes) */
    char *public_pem;
    char *private_pem; /* NULL for a verification-only (external) key */
    char *issuer;      /* the `iss` tokens signed by this key must carry */
} token_key_t;

typedef struct {
    token_key_t own;       /* berth's key: signs and verifies */
    token_key_t *external; /* trusted issuers' keys: verify only */
    size_t nexternal;
    char *service; /* `aud` of every token (the registry's service name) */
} token_keys_t;

/**
 * Load the key at `path`, creating it first if absent (mkdir of its folder, new P-256 key written to a temp file
 * with mode 0600 and link()ed into place, so that of two processes racing exactly one key wins and both use
 * it). Only the folder itself is made (mode 0700), not its parents. `issuer` and `service` must be non-empty and
 * are copied. A key that is not EC P-256, or is encrypted, is refused. 0, or -1 with a malloc'd message in *err
 * (and *keys zeroed, so token_keys_dispose() is harmless).
 */
int token_keys_init(token_keys_t *keys, const char *path, const char *issuer, const char *service, char **err);

/**
 * Trust tokens from an external issuer: `file` holds a PEM public key (EC P-256), a JWKS document, or a single JWK.
 * Of a JWKS, every EC P-256 key not marked for another use ("use" other than "sig", "alg" other than "ES256") is
 * added; other key types are skipped, a malformed EC P-256 key fails the whole file. A JWK keeps its own "kid"
 * (under 64 characters), a PEM key or a JWK without one gets the RFC 7638 thumbprint. A kid already known is refused.
 * 0, or -1 with a malloc'd message in *err and nothing added.
 */
int token_keys_add_external(token_keys_t *keys, const char *file, const char *issuer, char **err);
/** As token_keys_add_external, from `len` bytes at `data` that came from `source` (named in messages). */
int token_keys_add_external_data(token_keys_t *keys, const char *data, size_t len, const char *source,
                                 const char *issuer, char **err);
/**
 * Replace every external key by those of `data` (as token_keys_add_external_data): the issuer's key rotation. On
 * failure (-1, *err) the keys are left as they were. Not thread-safe: the caller keeps verifiers out meanwhile.
 */
int token_keys_replace_external(token_keys_t *keys, const char *data, size_t len, const char *source,
                                const char *issuer, char **err);
void token_keys_dispose(token_keys_t *keys);

/** The JWKS document ({"keys":[…]}) of berth's own public key; malloc'd. */
char *token_jwks(const token_keys_t *keys);

/** What a token grants, and who it was for. */
typedef struct {
    char sub[256]; /* the account ("" for anonymous) */
    char jti[64];
    int64_t iat, nbf, exp;
    int64_t token_id;   /* the access token (robot/personal) it was issued from, 0 if from a password */
    int64_t generation; /* the account's generation number when issued (a disabled account bumps it) */
    int64_t refresh_id; /* the refresh token it was minted from (refresh_token grant), 0 if none */
    int external;       /* verified with an external issuer's key */
    size_t naccess;
    scope_t access[TOKEN_MAX_ACCESS];
} token_claims_t;

/**
 * Sign a token for `c` (sub, access, token_id, generation; iat/nbf/exp/jti are set here from `now` and `ttl`
 * seconds, nbf = iat; jti is 16 random bytes in hex) with berth's own key: iss = own.issuer, aud = service (a
 * string), header kid; `tid` only when token_id is non-zero, `rid` only when refresh_id is. Returns the malloc'd compact JWT, or NULL (also for an
 * invalid access entry, more than TOKEN_MAX_ACCESS of them, or ttl <= 0).
 */
char *token_issue(const token_keys_t *keys, token_claims_t *c, int64_t now, int64_t ttl);

/**
 * Verify `jwt` at time `now`: header alg must be ES256 and kid name a known key (if kid is absent, berth's own
 * key), signature valid, iss equal to that key's issuer, aud equal to the service (string or array containing
 * it), exp > now - leeway, nbf <= now + leeway, iat <= now + leeway (exp is required, nbf and iat optional).
 * Tokens over 8 KiB are refused unread. Access entries of unknown type, with an invalid name, or beyond
 * TOKEN_MAX_ACCESS are dropped; unknown actions are ignored. Fills *out (zeroed on failure). 0, or -1 with a short
 * reason in `err` (for logs; never includes the token or any text taken from it).
 */
int token_verify(const token_keys_t *keys, const char *jwt, size_t len, int64_t now, token_claims_t *out, char *err,
                 size_t errlen);

/** The actions `c` grants on repository `name` (type SCOPE_REPOSITORY) or on "catalog" (SCOPE_REGISTRY). */
unsigned token_claims_actions(const token_claims_t *c, scope_type_t type, const char *name);

#endif
