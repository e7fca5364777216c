/*
 * libFuzzer target for src/oci/digest.c: digest_parse checked both ways against the OCI image spec's digest grammar
 * as a POSIX regular expression (OK exactly for sha256/sha512 with the right number of lowercase hex digits,
 * EUNSUPPORTED exactly for a grammatical digest of another algorithm), and streaming hashing against one-shot hashing.
 */
#include "fuzz.h"
#include "oci/digest.h"

#define GRAMMAR_RE "^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$"
#define SUPPORTED_RE "^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static regex_t grammar_re, supported_re;
    static int grammar_ready, supported_ready;
    digest_t d, again, one, streamed;
    digest_err_t r = digest_parse(&d, (const char *)data, size);

    int grammatical = fuzz_match(fuzz_regex(&grammar_re, &grammar_ready, GRAMMAR_RE), data, size);
    int supported = fuzz_match(fuzz_regex(&supported_re, &supported_ready, SUPPORTED_RE), data, size);
    int known_algo = size >= 7 && (memcmp(data, "sha256:", 7) == 0 || memcmp(data, "sha512:", 7) == 0);
    CHECK((r == DIGEST_OK) == supported);
    CHECK((r == DIGEST_EUNSUPPORTED) == (grammatical && !known_algo));
    CHECK(r == DIGEST_OK || r == DIGEST_EMALFORMED || r == DIGEST_EUNSUPPORTED);

    if (r == DIGEST_OK) {
        /* a parsed digest is its own input, NUL-terminated, with hex after the colon, and parses again identically */
        CHECK(d.len == size && d.len <= DIGEST_MAX_STR && strlen(d.str) == d.len && memcmp(d.str, data, size) == 0);
        CHECK(digest_hex(&d) == d.str + strlen(digest_algo_name(d.algo)) + 1);
        CHECK(strlen(digest_hex(&d)) == digest_algo_hexlen(d.algo));
        CHECK(digest_parse(&again, d.str, d.len) == DIGEST_OK && digest_equal(&d, &again));
    }

    /* hash the input in two pieces split at a data-dependent point; the result must equal the one-shot hash */
    for (int algo = DIGEST_SHA256; algo <= DIGEST_SHA512; ++algo) {
        size_t split = size != 0 ? data[0] % (size + 1) : 0;
        digest_hasher_t *h = digest_hasher_new((digest_algo_t)algo);
        CHECK(h != NULL);
        digest_hasher_update(h, data, split);
        digest_hasher_update(h, data + split, size - split);
        digest_hasher_final(h, &streamed);
        digest_hasher_free(h);
        digest_compute(&one, (digest_algo_t)algo, data, size);
        CHECK(digest_equal(&one, &streamed) && digest_parse(&again, one.str, one.len) == DIGEST_OK);
    }
    return 0;
}
