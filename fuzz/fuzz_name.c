/* libFuzzer target for src/oci/name.c: name and tag validation on arbitrary bytes, checked against the grammar's
 * simplest consequences. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "oci/name.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int lower_alnum(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;

    if (name_valid(s, size)) {
        /* starts and ends with [a-z0-9], no "//", no uppercase, within the length limit */
        if (size == 0 || size > NAME_MAX_LEN || !lower_alnum(data[0]) || !lower_alnum(data[size - 1]))
            abort();
        for (size_t i = 0; i < size; ++i) {
            if (!lower_alnum(data[i]) && data[i] != '/' && data[i] != '.' && data[i] != '_' && data[i] != '-')
                abort();
            if (i > 0 && !lower_alnum(data[i]) && data[i] != '-' && data[i] != '_' && !lower_alnum(data[i - 1]))
                abort(); /* '/' and '.' only ever follow [a-z0-9] */
        }
        if (memmem(data, size, "___", 3) != NULL || memmem(data, size, "..", 2) != NULL)
            abort();
        /* every prefix that ends in [a-z0-9] is valid too */
        for (size_t n = 1; n < size; ++n)
            if (lower_alnum(data[n - 1]) && !name_valid(s, n))
                abort();
    }
    if (tag_valid(s, size)) {
        if (size == 0 || size > TAG_MAX_LEN || data[0] == '.' || data[0] == '-' || memchr(data, '/', size) != NULL ||
            memchr(data, ':', size) != NULL)
            abort();
        if (size > 1 && !tag_valid(s, size - 1))
            abort();
    }
    return 0;
}
