#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "util/log.h"

static log_level_t max_level = LOG_INFO;
static const char *names[] = {"error", "warn", "info", "debug"};

void log_set_level(log_level_t level)
{
    max_level = level;
}

int log_level_from_name(const char *name)
{
    for (int i = 0; i < 4; ++i)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

void log_msg(log_level_t level, const char *fmt, ...)
{
    if (level > max_level)
        return;
    char line[2048], ts[32];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    int n = snprintf(line, sizeof(line), "%s.%03ldZ %s ", ts, now.tv_nsec / 1000000, names[level]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    /* one write per line so that lines from several threads do not interleave */
    size_t len = strlen(line);
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}
