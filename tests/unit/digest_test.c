/* Unit tests for src/oci/digest.c: the digest grammar, known hash vectors, streaming against one-shot hashing. */
#include <stdlib.h>
#include <string.h>
#include "oci/digest.h"
#include "tap.h"

#define ABC256 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define EMPTY256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define EMPTY512                                                                                                       \
    "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"                                                 \
    "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
#define ABC512                                                                                                         \
    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"                                                 \
    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"

/* `s` with control characters escaped, so that a description stays on one TAP line. */
static const char *show(const char *s, char *buf, size_t size)
{
    size_t o = 0;

    for (; *s != '\0' && o + 5 < size; ++s)
        o += *s >= 0x20 && *s < 0x7f ? (size_t)snprintf(buf + o, size - o, "%c", *s)
                                     : (size_t)snprintf(buf + o, size - o, "\\x%02x", (unsigned char)*s);
    buf[o] = '\0';
    return buf;
}

static digest_err_t parse(const char *s, digest_t *d)
{
    digest_t tmp;
    return digest_parse(d != NULL ? d : &tmp, s, strlen(s));
}

/* Parse from an exact-size heap copy, so that ASan catches a read past `len`. */
static digest_err_t parse_exact(const char *s, size_t len)
{
    digest_t d;
    char *copy = malloc(len != 0 ? len : 1);
    digest_err_t r;

    memcpy(copy, s, len);
    r = digest_parse(&d, copy, len);
    free(copy);
    return r;
}

static void test_parse_valid(void)
{
    digest_t d;

    ok(parse("sha256:" ABC256, &d) == DIGEST_OK, "sha256 digest parses");
    ok(d.algo == DIGEST_SHA256, "algo is sha256");
    ok(d.len == 71 && strlen(d.str) == 71, "len is 71 (%zu)", d.len);
    ok(strcmp(d.str, "sha256:" ABC256) == 0, "str is the input");
    ok(digest_hex(&d) == d.str + 7 && strcmp(digest_hex(&d), ABC256) == 0, "hex points after the colon");

    ok(parse("sha512:" ABC512, &d) == DIGEST_OK, "sha512 digest parses");
    ok(d.algo == DIGEST_SHA512 && d.len == 135 && d.len == DIGEST_MAX_STR, "sha512 algo and maximal length");
    ok(strcmp(digest_hex(&d), ABC512) == 0 && digest_hex(&d) == d.str + 7, "sha512 hex");

    /* not NUL-terminated: the parser must stop at len */
    char buf[80];
    memcpy(buf, "sha256:" ABC256 "ffff", 75);
    ok(digest_parse(&d, buf, 71) == DIGEST_OK && strcmp(digest_hex(&d), ABC256) == 0, "parse honours len, not NUL");
    ok(parse_exact("sha256:" ABC256, 71) == DIGEST_OK, "exact-size buffer parses");
}

static void test_parse_invalid(void)
{
    static const char *malformed[] = {
        "",
        "sha256",         /* no colon */
        "sha256:",        /* empty encoded */
        ":" ABC256,       /* empty algorithm */
        "SHA256:" ABC256, /* uppercase algorithm is not grammatical */
        "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", /* uppercase hex */
        "sha256:Ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", /* one uppercase char */
        "sha256:a7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",  /* 63 chars */
        "sha256:" ABC256 "0",                                                      /* 65 chars */
        "sha256:" ABC512,                                                          /* sha512 length under sha256 */
        "sha512:" ABC256,                                                          /* sha256 length under sha512 */
        "sha256:ga7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", /* non-hex but grammatical */
        "sha256:" ABC256 ":",                                                      /* second colon */
        "sha256::" ABC256,
        "sha256 :" ABC256,
        " sha256:" ABC256,
        "sha256:" ABC256 " ",
        "sha256:" ABC256 "\n",
        "sha256:abc/def", /* '/' not in the encoded alphabet */
        "sha256:abc+def", /* '+' only separates algorithm components */
        "-sha256:abc",    /* algorithm starts with a separator */
        "sha256-:abc",    /* algorithm ends with a separator */
        "sha--256:abc",   /* two separators in a row */
        "sha.+256:abc",
        "md5:", /* unknown algorithm, but empty encoded: malformed */
        "Md5:abc",
        "md5:abc!",
        "md5:ab c",
    };
    char buf[256];
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); ++i)
        ok(parse(malformed[i], NULL) == DIGEST_EMALFORMED, "malformed: \"%s\"", show(malformed[i], buf, sizeof(buf)));

    ok(parse_exact("sha256:" ABC256, 70) == DIGEST_EMALFORMED, "truncated by len is malformed");
    ok(parse_exact("sha256", 6) == DIGEST_EMALFORMED, "exact-size buffer without colon");
    char nul[71];
    memcpy(nul, "sha256:" ABC256, 71);
    nul[30] = '\0';
    digest_t d;
    ok(digest_parse(&d, nul, 71) == DIGEST_EMALFORMED, "embedded NUL is malformed");
    ok(d.len == 0 && d.str[0] == '\0', "failed parse leaves an empty digest");
}

static void test_parse_unsupported(void)
{
    static const char *unsupported[] = {
        "md5:abc",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "sha384:abc",
        "blake3:AAAA",
        "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
        "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
        "a.b_c-d+e:x=y_z-W",
        "sha256x:" ABC256,
        "sha2560:" ABC256,
        "sha25:" ABC256,
    };
    for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); ++i)
        ok(parse(unsupported[i], NULL) == DIGEST_EUNSUPPORTED, "unsupported: \"%s\"", unsupported[i]);

    /* grammatical but too long for digest_t: still just unsupported, no overflow */
    size_t n = 4096;
    char *big = malloc(n);
    memcpy(big, "foo:", 4);
    memset(big + 4, 'A', n - 4);
    ok(parse_exact(big, n) == DIGEST_EUNSUPPORTED, "4 KiB unknown-algorithm digest is unsupported");
    memcpy(big, "sha256:", 7);
    memset(big + 7, 'a', n - 7);
    ok(parse_exact(big, n) == DIGEST_EMALFORMED, "4 KiB sha256 digest is malformed");
    free(big);
}

static void test_algos(void)
{
    ok(strcmp(digest_algo_name(DIGEST_SHA256), "sha256") == 0, "name of sha256");
    ok(strcmp(digest_algo_name(DIGEST_SHA512), "sha512") == 0, "name of sha512");
    ok(digest_algo_from_name("sha256", 6) == DIGEST_SHA256, "sha256 by name");
    ok(digest_algo_from_name("sha512", 6) == DIGEST_SHA512, "sha512 by name");
    ok(digest_algo_from_name("sha256:", 6) == DIGEST_SHA256, "by name honours len");
    ok(digest_algo_from_name("sha25", 5) == -1, "prefix is unknown");
    ok(digest_algo_from_name("sha2566", 7) == -1, "longer is unknown");
    ok(digest_algo_from_name("SHA256", 6) == -1, "uppercase is unknown");
    ok(digest_algo_from_name("md5", 3) == -1, "md5 is unknown");
    ok(digest_algo_from_name("", 0) == -1, "empty is unknown");
    ok(digest_algo_hexlen(DIGEST_SHA256) == 64, "sha256 hexlen");
    ok(digest_algo_hexlen(DIGEST_SHA512) == 128, "sha512 hexlen");
}

static void test_vectors(void)
{
    digest_t d;
    static const char nist2[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

    digest_compute(&d, DIGEST_SHA256, "abc", 3);
    ok(strcmp(d.str, "sha256:" ABC256) == 0, "sha256(abc)");
    ok(d.len == 71 && digest_hex(&d) == d.str + 7 && d.algo == DIGEST_SHA256, "computed digest fields");
    digest_compute(&d, DIGEST_SHA256, "", 0);
    ok(strcmp(d.str, "sha256:" EMPTY256) == 0, "sha256 of nothing");
    digest_compute(&d, DIGEST_SHA256, NULL, 0);
    ok(strcmp(d.str, "sha256:" EMPTY256) == 0, "sha256 of NULL, 0");
    digest_compute(&d, DIGEST_SHA512, "", 0);
    ok(strcmp(d.str, "sha512:" EMPTY512) == 0, "sha512 of nothing");
    ok(d.len == 135 && digest_hex(&d) == d.str + 7 && d.algo == DIGEST_SHA512, "sha512 fields");
    digest_compute(&d, DIGEST_SHA512, "abc", 3);
    ok(strcmp(d.str, "sha512:" ABC512) == 0, "sha512(abc)");
    digest_compute(&d, DIGEST_SHA256, nist2, strlen(nist2));
    ok(strcmp(d.str, "sha256:248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0,
       "sha256 NIST 448-bit");

    /* a computed digest round-trips through the parser */
    digest_t p;
    ok(digest_parse(&p, d.str, d.len) == DIGEST_OK && digest_equal(&p, &d), "computed digest parses back equal");
}

static void test_streaming(void)
{
    static const size_t chunks[] = {1, 3, 7, 64, 127, 4097, 65536, 13};
    size_t n = 1000000, off, k;
    unsigned char *buf = malloc(n);
    uint32_t x = 2463534242u;
    digest_t one, streamed;
    digest_hasher_t *h;

    /* a million 'a': the classic long vector, fed in odd-size chunks */
    memset(buf, 'a', n);
    ok((h = digest_hasher_new(DIGEST_SHA256)) != NULL, "hasher_new sha256");
    ok(digest_hasher_algo(h) == DIGEST_SHA256, "hasher algo");
    for (off = 0, k = 0; off < n; off += chunks[k % 8], ++k)
        digest_hasher_update(h, buf + off, off + chunks[k % 8] > n ? n - off : chunks[k % 8]);
    digest_hasher_final(h, &streamed);
    digest_hasher_free(h);
    ok(strcmp(streamed.str, "sha256:cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0,
       "sha256 of a million 'a' in odd chunks");

    /* pseudo-random bytes, both algorithms, every chunk size */
    for (size_t i = 0; i < n; ++i) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        buf[i] = (unsigned char)x;
    }
    for (int algo = DIGEST_SHA256; algo <= DIGEST_SHA512; ++algo) {
        digest_compute(&one, (digest_algo_t)algo, buf, n);
        for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); ++c) {
            h = digest_hasher_new((digest_algo_t)algo);
            for (off = 0; off < n; off += chunks[c])
                digest_hasher_update(h, buf + off, off + chunks[c] > n ? n - off : chunks[c]);
            digest_hasher_update(h, buf, 0); /* empty updates are no-ops */
            digest_hasher_final(h, &streamed);
            digest_hasher_free(h);
            ok(digest_equal(&one, &streamed), "%s streamed in %zu-byte chunks equals one-shot",
               digest_algo_name((digest_algo_t)algo), chunks[c]);
        }
    }

    h = digest_hasher_new(DIGEST_SHA512);
    ok(digest_hasher_algo(h) == DIGEST_SHA512, "sha512 hasher algo");
    digest_hasher_update(h, "a", 1);
    digest_hasher_update(h, "bc", 2);
    digest_hasher_final(h, &streamed);
    digest_hasher_free(h);
    ok(strcmp(streamed.str, "sha512:" ABC512) == 0, "sha512 streamed abc");

    h = digest_hasher_new(DIGEST_SHA256);
    digest_hasher_final(h, &streamed);
    digest_hasher_free(h);
    ok(strcmp(streamed.str, "sha256:" EMPTY256) == 0, "hasher with no updates gives the empty hash");
    digest_hasher_free(NULL);
    ok(1, "hasher_free(NULL) is a no-op");
    free(buf);
}

static void test_equal(void)
{
    digest_t a, b, c;

    parse("sha256:" ABC256, &a);
    digest_compute(&b, DIGEST_SHA256, "abc", 3);
    digest_compute(&c, DIGEST_SHA256, "abd", 3);
    ok(digest_equal(&a, &b), "parsed equals computed");
    ok(!digest_equal(&a, &c), "different content differs");
    digest_compute(&c, DIGEST_SHA512, "abc", 3);
    ok(!digest_equal(&a, &c), "different algorithms differ");
}

int main(void)
{
    test_parse_valid();
    test_parse_invalid();
    test_parse_unsupported();
    test_algos();
    test_vectors();
    test_streaming();
    test_equal();
    return tap_done();
}
