/* Unit tests for src/oci/name.c: the distribution spec's repository-name, tag and reference grammar. */
#include <stdlib.h>
#include <string.h>
#include "oci/name.h"
#include "tap.h"

/* Check from an exact-size heap copy so that ASan catches any read past `len`. */
static int name_exact(const char *s, size_t len)
{
    char *copy = malloc(len != 0 ? len : 1);
    int r;

    memcpy(copy, s, len);
    r = name_valid(copy, len);
    free(copy);
    return r;
}

static int tag_exact(const char *s, size_t len)
{
    char *copy = malloc(len != 0 ? len : 1);
    int r;

    memcpy(copy, s, len);
    r = tag_valid(copy, len);
    free(copy);
    return r;
}

static int name(const char *s)
{
    return name_exact(s, strlen(s));
}

static int tag(const char *s)
{
    return tag_exact(s, strlen(s));
}

static void test_names(void)
{
    static const char *valid[] = {
        "a",
        "0",
        "ubuntu",
        "library/ubuntu",
        "a/b/c/d/e",
        "a.b",
        "a_b",
        "a__b",
        "a-b",
        "a--b",
        "a---------------b",
        "foo.bar_baz__qux-quux/x",
        "a1/2b",
        "192.168.0.1/foo",
        "a.b.c",
        "a_b_c",
        "a__b__c",
        "a-b--c---d",
        "my-org/my_repo.name/sub--dir",
        "0/0/0",
        "abc123/def456",
    };
    static const char *invalid[] = {
        "",
        "A",
        "Abc",
        "a/B",
        "library/Ubuntu",
        "a/../b",
        "../a",
        "a/..",
        "a/./b",
        "./a",
        "..",
        ".",
        "a//b",
        "/a",
        "a/",
        "/",
        "//",
        "a/b/",
        "a.",
        ".a",
        "_a",
        "a_",
        "-a",
        "a-",
        "__a",
        "a__",
        "a..b",
        "a___b",
        "a____b",
        "a__-b",
        "a_-b",
        "a-_b",
        "a._b",
        "a_.b",
        "a-.b",
        "a.-b",
        "a.__b",
        "a--_b",
        "a b",
        " a",
        "a ",
        "a:b",
        "a@b",
        "a\\b",
        "a/-b",
        "a/_b",
        "a/.b",
        "a./b",
        "a_/b",
        "a-/b",
        "a__/b",
        "*",
        "a*",
        "a\tb",
        "a\nb",
        "caf\xc3\xa9",
        "a+b",
        "a%2fb",
        "a/b:latest",
        "a/b@sha256",
    };

    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); ++i)
        ok(name(valid[i]), "valid name \"%s\"", valid[i]);
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); ++i) {
        int printable = strcspn(invalid[i], "\t\n") == strlen(invalid[i]);
        ok(!name(invalid[i]), "invalid name \"%s\"", printable ? invalid[i] : "(control character)");
    }

    ok(!name_exact("a\0b", 3), "embedded NUL is invalid");
    ok(name_exact("ab/cd", 2), "only len bytes are looked at (\"ab\" of \"ab/cd\")");
    ok(!name_exact("ab/cd", 3), "\"ab/\" prefix is invalid");
    ok(!name_exact("", 0), "zero length is invalid");
}

static void test_name_lengths(void)
{
    char buf[600];

    memset(buf, 'a', sizeof(buf));
    ok(name_exact(buf, 255), "255 characters is valid");
    ok(!name_exact(buf, 256), "256 characters is invalid");
    ok(!name_exact(buf, 600), "600 characters is invalid");

    /* 255 characters made of many components and separators */
    for (size_t i = 0; i < 255; ++i)
        buf[i] = i % 2 == 0 ? (char)('a' + i % 26) : "/._-"[i / 2 % 4];
    ok(name_exact(buf, 255), "255 characters alternating components and separators is valid");
    buf[255] = 'z';
    buf[254] = '-';
    ok(!name_exact(buf, 256), "the same grown to 256 is invalid");

    /* a long run of dashes is one separator */
    buf[0] = 'a';
    memset(buf + 1, '-', 253);
    buf[254] = 'b';
    ok(name_exact(buf, 255), "a, 253 dashes, b is valid");
    ok(!name_exact(buf, 254), "a and 253 dashes is invalid");
}

static void test_tags(void)
{
    static const char *valid[] = {
        "latest",  "v1.0.0",
        "_",       "_private",
        "A",       "1",
        "a-b_c.D", "1.2.3-rc.1_build.5",
        "UPPER",   "__",
        "a..b",    "a--",
        "x.",      "sha256-ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "0-",      "9.",
    };
    static const char *invalid[] = {
        "",    ".hidden", "-x",          ".",    "-",  "a/b",     "a:b",     "a b",
        "a+b", "a@b",     "caf\xc3\xa9", "a\\b", "a*", " latest", "latest ", "sha256:abc",
    };
    char buf[300];

    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); ++i)
        ok(tag(valid[i]), "valid tag \"%s\"", valid[i]);
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); ++i)
        ok(!tag(invalid[i]), "invalid tag \"%s\"", invalid[i]);
    ok(!tag("v1.0\n"), "trailing newline is invalid");
    ok(!tag_exact("a\0b", 3), "embedded NUL is invalid");
    ok(tag_exact("v1:x", 2), "only len bytes are looked at");

    memset(buf, 'a', sizeof(buf));
    ok(tag_exact(buf, 128), "128 characters is valid");
    ok(!tag_exact(buf, 129), "129 characters is invalid");
    ok(!tag_exact(buf, 300), "300 characters is invalid");
    buf[0] = '_';
    memset(buf + 1, '.', 127);
    ok(tag_exact(buf, 128), "'_' then 127 dots is valid");
    buf[0] = '.';
    ok(!tag_exact(buf, 128), "128 dots is invalid");
}

static reference_t ref(const char *s, digest_t *d)
{
    size_t len = strlen(s);
    char *copy = malloc(len != 0 ? len : 1);
    memcpy(copy, s, len);
    reference_t r = reference_parse(copy, len, d);
    free(copy);
    return r;
}

static void test_references(void)
{
#define HEX "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    digest_t d;
    ok(ref("latest", &d) == REFERENCE_TAG, "a tag");
    ok(ref("v1.0_RC-2", &d) == REFERENCE_TAG, "a tag with punctuation");
    ok(ref("sha256:" HEX, &d) == REFERENCE_DIGEST && strcmp(d.str, "sha256:" HEX) == 0 && d.algo == DIGEST_SHA256,
       "a digest, parsed");
    ok(ref("sha256-" HEX, &d) == REFERENCE_TAG, "a tag that looks like a digest without its colon");
    ok(ref("md5:d41d8cd98f00b204e9800998ecf8427e", &d) == REFERENCE_EUNSUPPORTED, "a digest of another algorithm");
    ok(ref("sha256:abc", &d) == REFERENCE_EDIGEST, "a short sha256 digest");
    ok(ref("SHA256:" HEX, &d) == REFERENCE_EDIGEST, "an algorithm in capitals is no digest");
    ok(ref(":", &d) == REFERENCE_EDIGEST, "a colon alone is no digest");
    ok(ref("latest:", &d) == REFERENCE_EDIGEST, "a colon makes it a digest, never a tag");
    ok(ref(".hidden", &d) == REFERENCE_ETAG, "an invalid tag");
    ok(ref("a/b", &d) == REFERENCE_ETAG, "a slash is in no tag");
    ok(ref("", &d) == REFERENCE_ETAG, "nothing");
    ok(reference_parse("latest:x", 6, &d) == REFERENCE_TAG, "only len bytes are looked at");
#undef HEX
}

int main(void)
{
    test_names();
    test_name_lengths();
    test_tags();
    test_references();
    return tap_done();
}
