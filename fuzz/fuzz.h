/*
 * What several fuzz targets need: the entry point's declaration, aborting with a message when a property fails, a
 * copy of the input as a C string, POSIX regular expressions as independent oracles of a grammar, and a file holding
 * the input for the parsers that read a path. Header-only, so that each target stays one file plus the code it tests.
 */
#ifndef BERTH_FUZZ_H
#define BERTH_FUZZ_H

#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property failed: say which (libFuzzer then prints the stack and saves the input). */
#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);                                \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

/* `len` bytes at `s` as a malloc'd NUL-terminated string. */
static inline char *fuzz_strndup(const void *s, size_t len)
{
    char *out = malloc(len + 1);
    CHECK(out != NULL);
    memcpy(out, s, len);
    out[len] = '\0';
    return out;
}

/* Compile `pattern` (POSIX extended, whole-string anchors included by the caller) once. */
static inline regex_t *fuzz_regex(regex_t *re, int *ready, const char *pattern)
{
    if (!*ready) {
        CHECK(regcomp(re, pattern, REG_EXTENDED | REG_NOSUB) == 0);
        *ready = 1;
    }
    return re;
}

/* 1 if the `len` bytes at `s` match `re` as a whole; a NUL byte never matches (no grammar here allows one). */
static inline int fuzz_match(const regex_t *re, const void *s, size_t len)
{
    if (memchr(s, '\0', len) != NULL)
        return 0;
    char *z = fuzz_strndup(s, len);
    int m = regexec(re, z, 0, NULL, 0) == 0;
    free(z);
    return m;
}

/* A memfd holding the `size` bytes at `data`, named as a path in `path` (/proc/self/fd/N): private to this process,
 * nothing left on disk. Returns the descriptor, to close when done. */
static inline int fuzz_memfd(const void *data, size_t size, char path[64])
{
    int fd = memfd_create("fuzz", MFD_CLOEXEC);
    CHECK(fd != -1);
    for (size_t off = 0; off < size;) {
        ssize_t n = write(fd, (const char *)data + off, size - off);
        CHECK(n > 0);
        off += (size_t)n;
    }
    snprintf(path, 64, "/proc/self/fd/%d", fd);
    return fd;
}

#endif
