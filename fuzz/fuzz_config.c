/*
 * libFuzzer target for the configuration loader: the input is a YAML file (config_load reads a path, so the input is
 * handed over as a memfd). A configuration accepted keeps the limits the loader promises, and the same bytes read as
 * a size or a duration read back the same when written as plain numbers.
 */
#include <inttypes.h>
#include "config/config.h"
#include "fuzz.h"
#include "oci/name.h"

static void check_number(const uint8_t *data, size_t size, int (*parse)(const char *, uint64_t *), uint64_t unit)
{
    char *s = fuzz_strndup(data, size), buf[32];
    uint64_t v, again;
    if (parse(s, &v) == 0 && v % unit == 0) {
        snprintf(buf, sizeof(buf), "%" PRIu64, v / unit);
        CHECK(parse(buf, &again) == 0 && again == v);
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64], *err = NULL;
    config_t cfg;
    int fd = fuzz_memfd(data, size, path);

    if (config_load(&cfg, path, &err) == 0) {
        CHECK(err == NULL); /* success never reports */
        CHECK(cfg.storage_manifest_max_size >= 4 << 20);
        for (size_t i = 0; i < cfg.nmirrors; ++i) {
            const config_mirror_t *mr = &cfg.mirrors[i];
            CHECK(mr->upstream != NULL &&
                  (strncmp(mr->upstream, "http://", 7) == 0 || strncmp(mr->upstream, "https://", 8) == 0));
            CHECK(mr->prefix == NULL || *mr->prefix == '\0' || name_valid(mr->prefix, strlen(mr->prefix)));
            CHECK(mr->timeout_ms >= 1000);
        }
    } else {
        CHECK(err != NULL); /* every failure says why */
    }
    config_dispose(&cfg);
    free(err);
    close(fd);

    /* a plain number means bytes and seconds */
    check_number(data, size, config_parse_size, 1);
    check_number(data, size, config_parse_duration_ms, 1000);
    return 0;
}
