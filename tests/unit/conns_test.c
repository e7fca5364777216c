/*
 * The connection watchdog's judgement (http/conns.h), without a server: idle connections, request heads that do
 * not complete, bodies below the minimum rate, and steady slow uploads that must never be cut.
 */
#include <string.h>
#include "http/conns.h"
#include "tap.h"

static const conns_limits_t lim = {.idle_ms = 60000, .header_ms = 20000, .min_rate = 16384};

static void test_head(void)
{
    static const char full[] = "GET /v2/ HTTP/1.1\r\nHost: a\r\n\r\n", partial[] = "GET /v2/ HTTP/1.1\r\nHost: a\r\n";
    ok(conns_head_done(full, strlen(full)), "a head ending in a blank line is complete");
    ok(!conns_head_done(partial, strlen(partial)), "without the blank line it is not");
    ok(conns_head_done("GET / HTTP/1.0\n\n", 16), "bare line feeds count");
    ok(!conns_head_done("G", 1) && !conns_head_done("", 0), "one byte, none: not complete");
    ok(conns_looks_http1("G", 1) && conns_looks_http1("PATCH /v2/", 10) && conns_looks_http1("get ", 4),
       "a method name, with or without what follows, looks like HTTP/1");
    ok(!conns_looks_http1("", 0) && !conns_looks_http1("\0\0\x04\x08", 4) && !conns_looks_http1("GET/", 4),
       "nothing, an HTTP/2 frame, a name without its space: not");
}

static void test_idle(void)
{
    conns_clock_t c = {.mark = 500, .idle_since = 1000};
    ok(conns_judge(&c, 1000 + 60000, 500, 0, &lim) == CONNS_KEEP, "nothing new for exactly idle_timeout: kept");
    ok(conns_judge(&c, 1000 + 60001, 500, 0, &lim) == CONNS_IDLE, "longer: idle");
}

/* one byte every 3 seconds (a slow-header client) */
static void test_slow_head(void)
{
    conns_clock_t c = {.mark = 0, .idle_since = 0};
    conns_verdict_t v = CONNS_KEEP;
    uint64_t t = 0;
    size_t bytes = 0;
    while (t < 60000 && v == CONNS_KEEP) {
        t += 1000;
        if (t % 3000 == 0)
            ++bytes;
        v = conns_judge(&c, t, bytes, 0, &lim);
    }
    ok(v == CONNS_SLOW_HEAD && t == 24000,
       "a head trickling one byte in 3 s (the first at 3 s) is cut 21 s after its first byte (%llu ms)",
       (unsigned long long)t);
}

/* an upload at `rate` bytes a second, watched for `secs`; the verdict at the end (or the first that cuts it) */
static conns_verdict_t upload(size_t rate, unsigned secs)
{
    conns_clock_t c = {.mark = 1000, .idle_since = 0};
    conns_verdict_t v = CONNS_KEEP;
    for (unsigned s = 1; s <= secs && v == CONNS_KEEP; ++s)
        v = conns_judge(&c, (uint64_t)s * 1000, 1000 + (size_t)s * rate, 1, &lim);
    return v;
}

static void test_rates(void)
{
    ok(upload(100 * 1024, 600) == CONNS_KEEP, "a steady 100 KiB/s upload for 10 minutes is never cut");
    ok(upload(17 * 1024, 600) == CONNS_KEEP, "nor one at 17 KiB/s (just above http.min_rate)");
    ok(upload(8 * 1024, 600) == CONNS_SLOW_BODY, "one at 8 KiB/s is cut");
    ok(upload(10, 600) == CONNS_SLOW_BODY, "one at 10 bytes/s is cut");
    ok(upload(10, 19) == CONNS_KEEP, "but not before a whole window (20 s) has passed");

    /* a fast start does not buy a stall: each window is judged on its own */
    conns_clock_t c = {.mark = 0, .idle_since = 0};
    ok(conns_judge(&c, 1000, 10 << 20, 1, &lim) == CONNS_KEEP, "10 MiB in the first second");
    ok(conns_judge(&c, 21000, 10 << 20, 1, &lim) == CONNS_KEEP, "a window later: judged on it, kept");
    ok(conns_judge(&c, 41001, 10 << 20, 1, &lim) == CONNS_SLOW_BODY, "then a whole window with nothing: cut");

    conns_limits_t none = lim;
    none.min_rate = 0;
    c = (conns_clock_t){.mark = 0, .idle_since = 0};
    ok(conns_judge(&c, 1000, 1, 1, &none) == CONNS_KEEP && conns_judge(&c, 99000, 1, 1, &none) == CONNS_KEEP,
       "http.min_rate 0: no minimum");
}

int main(void)
{
    test_head();
    test_idle();
    test_slow_head();
    test_rates();
    return tap_done();
}
