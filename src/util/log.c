#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "util/log.h"

static log_level_t max_level = LOG_INFO;
static int as_json;
static const char *names[] = {"error", "warn", "info", "debug"};
static __thread const char *request_id;

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

void log_set_json(int json)
{
    as_json = json;
}

int log_json(void)
{
    return as_json;
}

const char *log_set_request(const char *id)
{
    const char *prev = request_id;
    request_id = id;
    return prev;
}

/* The length of the valid UTF-8 sequence at `s` (`len` bytes left), or 0. */
static size_t utf8_len(const unsigned char *s, size_t len)
{
    size_t n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : 0;
    if (n == 0 || n > len)
        return 0;
    for (size_t i = 1; i < n; ++i)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) || (s[0] == 0xf0 && s[1] < 0x90) ||
        (s[0] == 0xf4 && s[1] > 0x8f))
        return 0; /* overlong, a surrogate, or past U+10FFFF */
    return n;
}

void log_json_escape(char *out, size_t cap, size_t *n, const char *s, size_t len)
{
    size_t o = *n;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        const char *piece = esc;
        size_t plen, step = 1;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            plen = 2;
        } else if (c < 0x20 || c == 0x7f) {
            plen = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", c);
        } else if (c < 0x80) {
            piece = s + i;
            plen = 1;
        } else if ((step = utf8_len((const unsigned char *)s + i, len - i)) > 0) {
            piece = s + i;
            plen = step;
        } else {
            piece = "\\ufffd";
            plen = 6;
            step = 1;
        }
        if (o + plen >= cap)
            break;
        memcpy(out + o, piece, plen);
        o += plen;
        i += step;
    }
    *n = o;
}

void log_msg(log_level_t level, const char *fmt, ...)
{
    if (level > max_level)
        return;
    char msg[2048], line[4096], ts[32];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const char *id = request_id;
    size_t n;
    if (as_json) {
        n = (size_t)snprintf(line, sizeof(line), "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":\"", ts,
                             now.tv_nsec / 1000000, names[level]);
        log_json_escape(line, sizeof(line) - 64, &n, msg, strlen(msg));
        line[n++] = '"';
        if (id != NULL) {
            memcpy(line + n, ",\"request_id\":\"", 15);
            n += 15;
            log_json_escape(line, sizeof(line) - 4, &n, id, strlen(id));
            line[n++] = '"';
        }
        line[n++] = '}';
    } else {
        n = (size_t)snprintf(line, sizeof(line) - 1, "%s.%03ldZ %s %s%s%s", ts, now.tv_nsec / 1000000, names[level],
                             msg, id != NULL ? " request_id=" : "", id != NULL ? id : "");
        if (n >= sizeof(line) - 1)
            n = sizeof(line) - 2;
    }
    /* one write per line so that lines from several threads do not interleave */
    line[n++] = '\n';
    fwrite(line, 1, n, stderr);
}
