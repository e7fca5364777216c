/* libFuzzer target for src/oci/range.c. The first 8 bytes (if any) choose the entity size, the rest is the header. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "oci/range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t sizes[] = {0, 1, 2, 100, 4096, UINT64_MAX - 1, UINT64_MAX};
    uint64_t entity = 100, start, end;
    range_result_t r;

    if (size >= 8) {
        memcpy(&entity, data, 8);
        /* bias towards small and boundary sizes, which is where the arithmetic can go wrong */
        if (data[0] < 0xc0)
            entity = data[0] & 0x80 ? sizes[data[1] % (sizeof(sizes) / sizeof(sizes[0]))] : entity % 1024;
        data += 8;
        size -= 8;
    }
    r = range_parse((const char *)data, size, entity, &start, &end);
    if (r == RANGE_OK) {
        if (entity == 0 || start > end || end >= entity)
            abort();
    } else if (r != RANGE_IGNORE && r != RANGE_UNSATISFIABLE) {
        abort();
    }
    if (content_range_parse((const char *)data, size, &start, &end) == 0 && start > end)
        abort();
    return 0;
}
