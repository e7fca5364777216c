/*
 * libFuzzer target for src/oci/range.c: a blob GET's `Range` and an upload's `Content-Range`. The first 8 bytes (if
 * any) choose the entity size, the rest is the header. Beyond staying inside the entity, what is accepted must read
 * the same once written back in canonical form.
 */
#include <inttypes.h>
#include "fuzz.h"
#include "oci/range.h"

static range_result_t range(const char *s, uint64_t entity, uint64_t *start, uint64_t *end)
{
    return range_parse(s, strlen(s), entity, start, end);
}

static int content_range(const char *s, uint64_t *start, uint64_t *end)
{
    return content_range_parse(s, strlen(s), start, end);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t sizes[] = {0, 1, 2, 100, 4096, UINT64_MAX - 1, UINT64_MAX};
    uint64_t entity = 100, start, end, s2, e2;
    char buf[128];

    if (size >= 8) {
        memcpy(&entity, data, 8);
        /* bias towards small and boundary sizes, which is where the arithmetic can go wrong */
        if (data[0] < 0xc0)
            entity = data[0] & 0x80 ? sizes[data[1] % (sizeof(sizes) / sizeof(sizes[0]))] : entity % 1024;
        data += 8;
        size -= 8;
    }
    const char *s = (const char *)data;

    range_result_t r = range_parse(s, size, entity, &start, &end);
    CHECK(r == RANGE_OK || r == RANGE_IGNORE || r == RANGE_UNSATISFIABLE);
    CHECK(entity != 0 || r != RANGE_OK); /* nothing of an empty entity is served */
    if (r == RANGE_OK) {
        CHECK(entity != 0 && start <= end && end < entity);
        /* the range served, asked for as such, is served again; so are its suffix and open-ended forms */
        snprintf(buf, sizeof(buf), "bytes=%" PRIu64 "-%" PRIu64, start, end);
        CHECK(range(buf, entity, &s2, &e2) == RANGE_OK && s2 == start && e2 == end);
        snprintf(buf, sizeof(buf), "bytes=%" PRIu64 "-", start);
        CHECK(range(buf, entity, &s2, &e2) == RANGE_OK && s2 == start && e2 == entity - 1);
        if (end == entity - 1) {
            snprintf(buf, sizeof(buf), "bytes=-%" PRIu64, entity - start);
            CHECK(range(buf, entity, &s2, &e2) == RANGE_OK && s2 == start && e2 == end);
        }
    }

    int cr = content_range_parse(s, size, &start, &end);
    CHECK(cr == 0 || cr == -1);
    if (cr == 0) {
        CHECK(start <= end);
        /* docker's form and both RFC forms of the same range read the same */
        snprintf(buf, sizeof(buf), "%" PRIu64 "-%" PRIu64, start, end);
        CHECK(content_range(buf, &s2, &e2) == 0 && s2 == start && e2 == end);
        snprintf(buf, sizeof(buf), "bytes %" PRIu64 "-%" PRIu64 "/*", start, end);
        CHECK(content_range(buf, &s2, &e2) == 0 && s2 == start && e2 == end);
        if (end != UINT64_MAX) {
            snprintf(buf, sizeof(buf), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, start, end, end + 1);
            CHECK(content_range(buf, &s2, &e2) == 0 && s2 == start && e2 == end);
        }
    }
    return 0;
}
