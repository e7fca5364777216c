/* A minimal TAP producer for unit tests: `ok(cond, fmt, ...)`, then `return tap_done();` from main. */
#ifndef BERTH_TAP_H
#define BERTH_TAP_H
#include <stdarg.h>
#include <stdio.h>

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
#endif
