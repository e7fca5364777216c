/*
 * libFuzzer target for the parameters of an upstream's WWW-Authenticate challenge (src/mirror/challenge.c). The
 * first byte picks the reading: the rest is either a challenge as an upstream sends it (after "Bearer "), whose
 * values must fit their buffer and agree between a large buffer and a small one, or lines of values that an
 * independent formatter quotes into a challenge, and which must come back unchanged under their keys.
 */
#include "fuzz.h"
#include "mirror/challenge.h"

static void check_lookup(const char *ch, const char *key)
{
    char big[2048], small[8];
    memset(small, 'X', sizeof(small));
    int r = challenge_param(ch, key, big, sizeof(big));
    for (size_t size = 1; size <= sizeof(small); ++size) {
        CHECK(challenge_param(ch, key, small, size) == r);
        if (r == 0) /* the same value, cut to the buffer */
            CHECK(strlen(small) < size && strncmp(small, big, size - 1) == 0);
    }
    CHECK(r != 0 || strlen(big) <= strlen(ch));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[] = {"realm", "service", "scope", "error"};
    int raw = 1, quoted = 1;
    if (size != 0) {
        raw = data[0] & 1;
        quoted = data[0] & 2;
        ++data;
        --size;
    }
    char *s = fuzz_strndup(data, size);
    if (raw) {
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); ++i)
            check_lookup(s, keys[i]);
        check_lookup(s, "REALM");
        check_lookup(s, "");
        free(s);
        return 0;
    }

    /* up to four lines: the values of realm, service, scope and error, written quoted (or as tokens when they can
     * be) with ", " or "," between them */
    const char *vals[4];
    size_t nvals = 0;
    char *ch = malloc(2 * size + 64), *o = ch, *save = NULL;
    for (char *line = strtok_r(s, "\n", &save); line != NULL && nvals < 4; line = strtok_r(NULL, "\n", &save)) {
        vals[nvals] = line;
        o += sprintf(o, "%s%s=", nvals == 0 ? "" : nvals % 2 ? ", " : ",", keys[nvals]);
        int token = !quoted && *line != '\0' && *line != '"' && strpbrk(line, ", \t\"\\") == NULL;
        if (!token)
            *o++ = '"';
        for (const char *p = line; *p != '\0'; ++p) {
            if (!token && (*p == '"' || *p == '\\'))
                *o++ = '\\';
            *o++ = *p;
        }
        if (!token)
            *o++ = '"';
        ++nvals;
    }
    *o = '\0';
    char buf[4096];
    for (size_t i = 0; i < nvals; ++i) {
        CHECK(challenge_param(ch, keys[i], buf, sizeof(buf)) == 0);
        CHECK(strlen(vals[i]) >= sizeof(buf) - 1 || strcmp(buf, vals[i]) == 0);
    }
    for (size_t i = nvals; i < sizeof(keys) / sizeof(keys[0]); ++i)
        CHECK(challenge_param(ch, keys[i], buf, sizeof(buf)) != 0);
    free(ch);
    free(s);
    return 0;
}
