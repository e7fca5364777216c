/*
 * Diagnostic logging to stderr, one line a message, as text or as JSON objects (log.format). A line logged while a
 * request is handled carries that request's id (log_set_request), which its access-log line carries too: the HTTP
 * layer sets it on the threads that work for a request. Thread-safe; never log secrets.
 */
#ifndef BERTH_UTIL_LOG_H
#define BERTH_UTIL_LOG_H

#include <stddef.h>

typedef enum { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 } log_level_t;

/** Set the most verbose level printed; log_level_from_name returns -1 for an unknown name. */
void log_set_level(log_level_t level);
int log_level_from_name(const char *name);

/** Print lines as JSON objects (`json` 1: {"time","level","msg"[,"request_id"]}) or as text (0, the default). */
void log_set_json(int json);
/** Whether lines are JSON (the access log follows the same choice). */
int log_json(void);

/**
 * The id of the request this thread works for now (NULL: none), added to each line it logs; returns the previous
 * one, to be put back when the work is done. The string is borrowed: it must stay valid while it is set.
 */
const char *log_set_request(const char *id);

/**
 * Append `s` (`len` bytes) to `out` (`cap` bytes, of which `*n` are used) as the inside of a JSON string: quotes,
 * backslashes and control characters escaped, invalid UTF-8 replaced by U+FFFD. Stops before overflowing; `*n` is
 * updated. Pure.
 */
void log_json_escape(char *out, size_t cap, size_t *n, const char *s, size_t len);

void log_msg(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
