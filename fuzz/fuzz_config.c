/*
 * Fuzz target for the configuration loader: the input is a YAML file. config_load reads a path, so the input is
 * written to a memfd and handed over as /proc/self/fd/N: private to this process, nothing left on disk.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64], *err = NULL;
    config_t cfg;
    int fd;

    if ((fd = memfd_create("fuzz_config", MFD_CLOEXEC)) == -1)
        abort();
    for (size_t off = 0; off < size;) {
        ssize_t n = write(fd, data + off, size - off);
        if (n <= 0)
            abort();
        off += (size_t)n;
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

    if (config_load(&cfg, path, &err) == 0) {
        if (err != NULL) /* success never reports */
            abort();
    } else if (err == NULL) {
        abort(); /* every failure says why */
    }
    config_dispose(&cfg);
    free(err);
    close(fd);
    return 0;
}
