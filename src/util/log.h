/* Diagnostic logging to stderr (the access log is h2o's, configured apart). Thread-safe; never log secrets. */
#ifndef BERTH_UTIL_LOG_H
#define BERTH_UTIL_LOG_H

typedef enum { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 } log_level_t;

/** Set the most verbose level printed; log_level_from_name returns -1 for an unknown name. */
void log_set_level(log_level_t level);
int log_level_from_name(const char *name);

void log_msg(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
