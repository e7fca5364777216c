/*
 * A minimal TAP producer for unit tests: `ok(cond, fmt, ...)`, then `return tap_done();` from main. Also what many
 * tests need around it: a temporary folder under $TMPDIR and its removal, and comparing a file with bytes.
 */
#ifndef BERTH_TAP_H
#define BERTH_TAP_H
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;

static inline void tap_ok(int cond, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    ++tap_n;
    printf("%s %d - ", cond ? "ok" : "not ok", tap_n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!cond) {
        ++tap_failed;
        printf("#   failed at %s:%d\n", file, line);
    }
}
#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

static inline int tap_done(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}
/** Make a new folder $TMPDIR/<name>.XXXXXX (/tmp without TMPDIR) and write its path to `buf`; 0, or -1. */
static inline int tap_tmpdir(char *buf, size_t len, const char *name)
{
    const char *tmp = getenv("TMPDIR");
    if (snprintf(buf, len, "%s/%s.XXXXXX", tmp ? tmp : "/tmp", name) >= (int)len)
        return -1;
    return mkdtemp(buf) != NULL ? 0 : -1;
}

/** Remove the folder `dir` and everything in it; 0, or -1 (said as a TAP comment). */
static inline int tap_rmtree(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) == 0)
        return 0;
    printf("# could not remove %s\n", dir);
    return -1;
}

/** 1 if the file at `path` holds exactly the `len` bytes at `data`, else 0. */
static inline int tap_file_equals(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "rb");
    char *buf = malloc(len + 1);
    size_t n = f != NULL && buf != NULL ? fread(buf, 1, len + 1, f) : 0;
    int same = f != NULL && buf != NULL && n == len && memcmp(buf, data, len) == 0;
    if (f != NULL)
        fclose(f);
    free(buf);
    return same;
}
#endif
