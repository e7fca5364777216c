/*
 * libFuzzer target for src/oci/name.c: name_valid and tag_valid on arbitrary bytes, each checked both ways against
 * the distribution spec's own regular expressions (run by POSIX regexec, an implementation independent of berth's
 * hand-written loops): whatever one accepts the other must accept, within berth's length limits.
 */
#include "fuzz.h"
#include "oci/name.h"

/* distribution spec, "Pulling manifests": <name> and <reference> as a tag */
#define NAME_RE "^[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*$"
#define TAG_RE "^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static regex_t name_re, tag_re;
    static int name_ready, tag_ready;
    const char *s = (const char *)data;

    int name = name_valid(s, size);
    CHECK(name == (size <= NAME_MAX_LEN && fuzz_match(fuzz_regex(&name_re, &name_ready, NAME_RE), s, size)));
    int tag = tag_valid(s, size);
    CHECK(tag == fuzz_match(fuzz_regex(&tag_re, &tag_ready, TAG_RE), s, size));
    /* a tag is one path component and never looks like a digest */
    CHECK(!tag || (memchr(s, '/', size) == NULL && memchr(s, ':', size) == NULL));
    return 0;
}
