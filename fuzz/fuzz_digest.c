/* libFuzzer target for src/oci/digest.c: the parser's invariants, and streaming hashing against one-shot hashing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "oci/digest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    digest_t d, again, one, streamed;
    digest_err_t r = digest_parse(&d, (const char *)data, size);

    if (r == DIGEST_OK) {
        /* a parsed digest is its own input, NUL-terminated, with hex after the colon, and parses again identically */
        if (d.len != size || d.len > DIGEST_MAX_STR || strlen(d.str) != d.len || memcmp(d.str, data, size) != 0)
            abort();
        if (digest_hex(&d) != d.str + strlen(digest_algo_name(d.algo)) + 1 ||
            strlen(digest_hex(&d)) != digest_algo_hexlen(d.algo))
            abort();
        if (digest_parse(&again, d.str, d.len) != DIGEST_OK || !digest_equal(&d, &again))
            abort();
    } else if (r != DIGEST_EMALFORMED && r != DIGEST_EUNSUPPORTED) {
        abort();
    }

    /* hash the input in two pieces split at a data-dependent point; the result must equal the one-shot hash */
    for (int algo = DIGEST_SHA256; algo <= DIGEST_SHA512; ++algo) {
        size_t split = size != 0 ? data[0] % (size + 1) : 0;
        digest_hasher_t *h = digest_hasher_new((digest_algo_t)algo);
        if (h == NULL)
            abort();
        digest_hasher_update(h, data, split);
        digest_hasher_update(h, data + split, size - split);
        digest_hasher_final(h, &streamed);
        digest_hasher_free(h);
        digest_compute(&one, (digest_algo_t)algo, data, size);
        if (!digest_equal(&one, &streamed) || digest_parse(&again, one.str, one.len) != DIGEST_OK)
            abort();
    }
    return 0;
}
