/* util/log: JSON escaping, and lines as text or JSON with the request id (log.format, docs/operations.md). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "tap.h"
#include "util/log.h"

static int escapes(const char *in, size_t len, const char *want)
{
    char out[128];
    size_t n = 0;
    log_json_escape(out, sizeof(out), &n, in, len);
    out[n] = '\0';
    if (strcmp(out, want) != 0)
        printf("# got: %s\n# want: %s\n", out, want);
    return strcmp(out, want) == 0;
}

/* Log `msg` with stderr sent to a file; its contents into buf. */
static void logged(const char *msg, char *buf, size_t len)
{
    char path[] = "/tmp/berth-log-test.XXXXXX";
    int fd = mkstemp(path), saved = dup(2);
    fflush(stderr);
    dup2(fd, 2);
    log_error("%s", msg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, buf, len - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
}

int main(void)
{
    ok(escapes("plain", 5, "plain"), "escape: plain text unchanged");
    ok(escapes("a\"b\\c", 5, "a\\\"b\\\\c"), "escape: quote and backslash");
    ok(escapes("a\nb\tc\x01", 6, "a\\u000ab\\u0009c\\u0001"), "escape: control characters");
    ok(escapes("\xc3\xa9t\xc3\xa9", 5, "\xc3\xa9t\xc3\xa9"), "escape: valid UTF-8 kept");
    ok(escapes("a\xff"
               "b\xc3",
               4, "a\\ufffdb\\ufffd"),
       "escape: invalid and truncated UTF-8 replaced");
    ok(escapes("\xed\xa0\x80", 3, "\\ufffd\\ufffd\\ufffd"), "escape: a surrogate replaced");
    ok(escapes("a\0b", 3, "a\\u0000b"), "escape: NUL");
    char small[8];
    size_t n = 0;
    log_json_escape(small, sizeof(small), &n, "\"\"\"\"\"\"", 6);
    ok(n == 6, "escape: stops before overflowing, never inside an escape (%zu)", n);

    char buf[4096];
    logged("text line", buf, sizeof(buf));
    ok(strstr(buf, " error text line\n") != NULL && strstr(buf, "request_id") == NULL, "text: level and message");
    const char *prev = log_set_request("req-42");
    ok(prev == NULL, "no request id at first");
    logged("with id", buf, sizeof(buf));
    ok(strstr(buf, " error with id request_id=req-42\n") != NULL, "text: the request id at the end");
    log_set_json(1);
    ok(log_json(), "json on");
    logged("say \"hi\"\n", buf, sizeof(buf));
    ok(buf[0] == '{' &&
           strstr(buf, "\"level\":\"error\",\"msg\":\"say \\\"hi\\\"\\u000a\",\"request_id\":\"req-42\"}\n") != NULL,
       "json: one object a line, escaped, with the request id");
    ok(strchr(buf, '\n') == buf + strlen(buf) - 1, "json: one line");
    ok(strcmp(log_set_request(NULL), "req-42") == 0, "log_set_request returns the previous id");
    logged("no id", buf, sizeof(buf));
    ok(strstr(buf, "\"msg\":\"no id\"}\n") != NULL, "json: no request id without a request");
    char big[3000];
    memset(big, '"', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    logged(big, buf, sizeof(buf));
    ok(strlen(buf) < 4096 && strcmp(buf + strlen(buf) - 3, "\"}\n") == 0,
       "json: a long message is cut, still an object");
    log_set_json(0);
    return tap_done();
}
