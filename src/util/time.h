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
