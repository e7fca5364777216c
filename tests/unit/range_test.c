/* Unit tests for src/oci/range.c: Range request headers and upload Content-Range headers. */
#include <stdlib.h>
#include <string.h>
#include "oci/range.h"
#include "tap.h"

/* Parse from an exact-size heap copy so that ASan catches any read past `len`. */
static range_result_t rp(const char *s, uint64_t size, uint64_t *start, uint64_t *end)
{
    size_t len = strlen(s);
    char *copy = malloc(len != 0 ? len : 1);
    range_result_t r;

    memcpy(copy, s, len);
    *start = *end = 0xdeadbeef;
    r = range_parse(copy, len, size, start, end);
    free(copy);
    return r;
}

static int crp(const char *s, uint64_t *start, uint64_t *end)
{
    size_t len = strlen(s);
    char *copy = malloc(len != 0 ? len : 1);
    int r;

    memcpy(copy, s, len);
    *start = *end = 0xdeadbeef;
    r = content_range_parse(copy, len, start, end);
    free(copy);
    return r;
}

static void expect_ok(const char *s, uint64_t size, uint64_t want_start, uint64_t want_end)
{
    uint64_t start, end;
    range_result_t r = rp(s, size, &start, &end);

    ok(r == RANGE_OK && start == want_start && end == want_end, "\"%s\" on %llu bytes -> %llu-%llu (got %d, %llu-%llu)",
       s, (unsigned long long)size, (unsigned long long)want_start, (unsigned long long)want_end, (int)r,
       (unsigned long long)start, (unsigned long long)end);
}

static void expect(const char *s, uint64_t size, range_result_t want)
{
    uint64_t start, end;
    range_result_t r = rp(s, size, &start, &end);

    ok(r == want, "\"%s\" on %llu bytes -> %s (got %d)", s, (unsigned long long)size,
       want == RANGE_IGNORE          ? "ignore"
       : want == RANGE_UNSATISFIABLE ? "unsatisfiable"
                                     : "ok",
       (int)r);
}

static void test_range_ok(void)
{
    expect_ok("bytes=0-0", 100, 0, 0);
    expect_ok("bytes=0-99", 100, 0, 99);
    expect_ok("bytes=10-19", 100, 10, 19);
    expect_ok("bytes=99-99", 100, 99, 99);
    expect_ok("bytes=0-100", 100, 0, 99);
    expect_ok("bytes=50-1000", 100, 50, 99);
    expect_ok("bytes=5-", 100, 5, 99);
    expect_ok("bytes=0-", 100, 0, 99);
    expect_ok("bytes=99-", 100, 99, 99);
    expect_ok("bytes=-3", 100, 97, 99);
    expect_ok("bytes=-1", 100, 99, 99);
    expect_ok("bytes=-100", 100, 0, 99);
    expect_ok("bytes=-1000", 100, 0, 99);
    expect_ok("bytes=0-0", 1, 0, 0);
    expect_ok("bytes=-1", 1, 0, 0);
    expect_ok("bytes=007-010", 100, 7, 10);
    /* whitespace and case */
    expect_ok(" bytes=0-1 ", 100, 0, 1);
    expect_ok("\tbytes=0-1\t", 100, 0, 1);
    expect_ok("bytes = 2-3", 100, 2, 3);
    expect_ok("bytes= 2-3", 100, 2, 3);
    expect_ok("Bytes=0-1", 100, 0, 1);
    expect_ok("BYTES=-2", 100, 98, 99);
    /* huge numbers saturate instead of wrapping */
    expect_ok("bytes=0-99999999999999999999999", 100, 0, 99);
    expect_ok("bytes=0-18446744073709551615", 100, 0, 99);
    expect_ok("bytes=-99999999999999999999999", 100, 0, 99);
    expect_ok("bytes=-18446744073709551616", 100, 0, 99);
    expect_ok("bytes=0-", UINT64_MAX, 0, UINT64_MAX - 1);
    expect_ok("bytes=18446744073709551613-18446744073709551615", UINT64_MAX, UINT64_MAX - 2, UINT64_MAX - 1);
    expect_ok("bytes=-5", UINT64_MAX, UINT64_MAX - 5, UINT64_MAX - 1);
    expect_ok("bytes=4294967296-4294967297", 8589934592ull, 4294967296ull, 4294967297ull);
}

static void test_range_unsatisfiable(void)
{
    expect("bytes=100-", 100, RANGE_UNSATISFIABLE);
    expect("bytes=100-100", 100, RANGE_UNSATISFIABLE);
    expect("bytes=100-200", 100, RANGE_UNSATISFIABLE);
    expect("bytes=1000-", 100, RANGE_UNSATISFIABLE);
    expect("bytes=-0", 100, RANGE_UNSATISFIABLE);
    expect("bytes=18446744073709551615-", 100, RANGE_UNSATISFIABLE);
    expect("bytes=99999999999999999999999-", 100, RANGE_UNSATISFIABLE);
    expect("bytes=99999999999999999999999-99999999999999999999999", UINT64_MAX, RANGE_UNSATISFIABLE);
    /* an empty entity has no satisfiable range */
    expect("bytes=0-0", 0, RANGE_UNSATISFIABLE);
    expect("bytes=0-", 0, RANGE_UNSATISFIABLE);
    expect("bytes=-5", 0, RANGE_UNSATISFIABLE);
    expect("bytes=-0", 0, RANGE_UNSATISFIABLE);
    expect("bytes=1-", 1, RANGE_UNSATISFIABLE);
}

static void test_range_ignore(void)
{
    static const char *ignored[] = {
        "",
        " ",
        "bytes",
        "bytes=",
        "bytes=-",
        "bytes= ",
        "bytes=a-b",
        "bytes=0-1x",
        "bytes=1",
        "bytes=+1-2",
        "bytes=0x10-",
        "bytes=--1",
        "bytes=1--2",
        "bytes=1-2-3",
        "bytes 0-1",
        "bytes:0-1",
        "bytesx=0-1",
        "byte=0-1",
        "=0-1",
        "0-1",
        "items=0-1",
        "bytes=0-1,3-4",
        "bytes=0-1, 3-4",
        "bytes=0-1,",
        "bytes=,0-1",
        "bytes=5-3",
        "bytes=1-0",
        "bytes=0 -1",
        "bytes=0- 1",
        "bytes=- 1",
        "bytes=0-1;q=1",
        "bytes=\xff-1",
        "garbage",
        "bytes==0-1",
        "bytes=1.5-2",
        "bytes=99999999999999999999999-1",
    };
    uint64_t start, end;

    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); ++i)
        expect(ignored[i], 100, RANGE_IGNORE);
    /* syntax is judged before satisfiability */
    expect("bytes=0-1,3-4", 0, RANGE_IGNORE);
    expect("items=0-1", 0, RANGE_IGNORE);
    ok(range_parse(NULL, 0, 100, &start, &end) == RANGE_IGNORE, "NULL header is ignored");
    ok(range_parse("bytes=0-99", 9, 100, &start, &end) == RANGE_OK && start == 0 && end == 9,
       "only len bytes are looked at (\"bytes=0-9\")");
    ok(range_parse("bytes=0-1\0junk", 14, 100, &start, &end) == RANGE_IGNORE, "embedded NUL is garbage");
}

static void expect_cr(const char *s, int want, uint64_t want_start, uint64_t want_end)
{
    uint64_t start, end;
    int r = crp(s, &start, &end);

    if (want == 0)
        ok(r == 0 && start == want_start && end == want_end, "Content-Range \"%s\" -> %llu-%llu (got %d, %llu-%llu)", s,
           (unsigned long long)want_start, (unsigned long long)want_end, r, (unsigned long long)start,
           (unsigned long long)end);
    else
        ok(r == -1, "Content-Range \"%s\" is malformed (got %d)", s, r);
}

static void test_content_range(void)
{
    static const char *bad[] = {
        "",
        " ",
        "abc",
        "99-0",
        "1-0",
        "-5",
        "5-",
        "-",
        "0-99x",
        "x0-99",
        "+0-99",
        "0 -99",
        "0- 99",
        "0--99",
        "0-99/100",
        "bytes=0-99",
        "bytes0-99",
        "bytes",
        "bytes ",
        "bytes 0-99",
        "bytes 0-99/",
        "bytes 0-99/x",
        "bytes 0-99/100x",
        "bytes 0-99/*x",
        "bytes */100",
        "bytes 0-99/50",
        "bytes 0-99/99",
        "bytes 99-0/100",
        "bytes 0-99 /100",
        "bytes 0-99/ 100",
        "0-18446744073709551616",
        "18446744073709551616-18446744073709551617",
        "bytes 0-0/18446744073709551616",
        "0x0-0x1",
        "0-1,2-3",
    };

    expect_cr("0-99", 0, 0, 99);
    expect_cr("0-0", 0, 0, 0);
    expect_cr("100-199", 0, 100, 199);
    expect_cr("5-5", 0, 5, 5);
    expect_cr(" 0-99 ", 0, 0, 99);
    expect_cr("bytes 0-99/100", 0, 0, 99);
    expect_cr("bytes 0-99/*", 0, 0, 99);
    expect_cr("bytes 100-199/*", 0, 100, 199);
    expect_cr("bytes 0-0/1", 0, 0, 0);
    expect_cr("Bytes 0-1/2", 0, 0, 1);
    expect_cr("bytes  0-1/2", 0, 0, 1);
    expect_cr("0-18446744073709551615", 0, 0, UINT64_MAX);
    expect_cr("18446744073709551615-18446744073709551615", 0, UINT64_MAX, UINT64_MAX);
    expect_cr("bytes 4294967296-8589934591/8589934592", 0, 4294967296ull, 8589934591ull);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i)
        expect_cr(bad[i], -1, 0, 0);

    uint64_t start, end;
    ok(content_range_parse(NULL, 0, &start, &end) == -1, "NULL Content-Range is malformed");
    ok(content_range_parse("0-99", 3, &start, &end) == 0 && start == 0 && end == 9, "only len bytes are looked at");
}

int main(void)
{
    test_range_ok();
    test_range_unsatisfiable();
    test_range_ignore();
    test_content_range();
    return tap_done();
}
