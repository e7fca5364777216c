/* Clocks. */
#ifndef BERTH_UTIL_TIME_H
#define BERTH_UTIL_TIME_H

#include <stdint.h>
#include <time.h>

/** Milliseconds on the monotonic clock (for deadlines and durations). */
static inline uint64_t time_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/** The monotonic instant `ms` (as time_mono_ms counts) as a timespec: the deadline of a pthread_cond_timedwait on a
 * condition variable made with CLOCK_MONOTONIC. */
static inline struct timespec time_mono_ts(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    return ts;
}

/** Seconds on the monotonic clock, with fractions (for phase timings in the debug log). */
static inline double time_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/** Seconds since the epoch (for expiry times stored or signed). */
static inline int64_t time_now_s(void)
{
    return (int64_t)time(NULL);
}

#endif
