/* Unit tests for src/config/config.c: defaults, YAML forms, environment overrides, value syntax and validation. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "config/config.h"
#include "tap.h"

extern char **environ;

static char tmpdir[] = "/tmp/berth-config-test.XXXXXX";
static int nfiles;

/* Write `text` to a fresh file under tmpdir; returns its path (static buffer, valid until the next call). */
static const char *write_file(const char *text)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/%d.yaml", tmpdir, nfiles++);
    FILE *fp = fopen(path, "w");
    if (fp == NULL || fputs(text, fp) < 0 || fclose(fp) != 0) {
        perror(path);
        exit(2);
    }
    return path;
}

static int streq(const char *a, const char *b)
{
    return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/* Load YAML text; on failure the message is kept in *err (freed by the next call) and the config is empty. */
static int load_text(config_t *cfg, const char *text, char **err)
{
    free(*err);
    *err = NULL;
    return config_load(cfg, text != NULL ? write_file(text) : NULL, err);
}

/* Loading must fail, with a message containing every one of the NULL-terminated strings. */
static int fails_with(const char *text, ...)
{
    config_t cfg;
    char *err = NULL;
    int good = load_text(&cfg, text, &err) == -1 && err != NULL && cfg.http_addr == NULL && cfg.log_level == NULL;
    va_list ap;
    va_start(ap, text);
    for (const char *s; good && (s = va_arg(ap, const char *)) != NULL;)
        if (strstr(err, s) == NULL)
            good = 0;
    va_end(ap);
    if (!good)
        printf("# got: %s\n", err != NULL ? err : "(success)");
    config_dispose(&cfg);
    free(err);
    return good;
}

static int loads(const char *text)
{
    config_t cfg;
    char *err = NULL;
    int r = load_text(&cfg, text, &err);
    if (r != 0)
        printf("# error: %s\n", err);
    config_dispose(&cfg);
    free(err);
    return r == 0;
}

static int is_default(const config_t *c)
{
    return streq(c->http_addr, "127.0.0.1:5000") && c->http_tls_certificate == NULL && c->http_tls_key == NULL &&
           c->http_threads == 0 && c->http_max_connections == 10000 && c->http_request_timeout_ms == 3600000 &&
           c->http_idle_timeout_ms == 60000 && c->http_max_connections_per_address == 128 &&
           c->http_header_timeout_ms == 20000 && c->http_min_rate == 16384 && c->http_shutdown_timeout_ms == 30000 &&
           c->http_shutdown_delay_ms == 0 && c->http_max_body_size == 10ull << 30 && streq(c->storage_root, "./data") &&
           c->storage_manifest_max_size == 4 << 20 && c->storage_upload_ttl_ms == 86400000 && c->workers == 16 &&
           streq(c->log_access, "-") && streq(c->log_level, "info") && streq(c->log_format, "text");
}

static int size_is(const char *s, uint64_t want)
{
    uint64_t v = 12345;
    return config_parse_size(s, &v) == 0 && v == want;
}

static int dur_is(const char *s, uint64_t want)
{
    uint64_t v = 12345;
    return config_parse_duration_ms(s, &v) == 0 && v == want;
}

static void clear_env(void)
{
    char *names[256];
    size_t n = 0;
    for (char **e = environ; *e != NULL && n < 256; ++e)
        if (strncmp(*e, "BERTH_", 6) == 0)
            names[n++] = strndup(*e, strcspn(*e, "="));
    for (size_t i = 0; i < n; ++i) {
        unsetenv(names[i]);
        free(names[i]);
    }
}

static void test_defaults(void)
{
    config_t cfg;
    char *err = NULL;

    ok(config_load(&cfg, NULL, &err) == 0 && err == NULL, "no file: loads");
    ok(streq(cfg.http_addr, "127.0.0.1:5000"), "default http.addr");
    ok(cfg.http_tls_certificate == NULL && cfg.http_tls_key == NULL, "default TLS off");
    ok(cfg.http_threads == 0, "default http.threads 0");
    ok(cfg.http_max_connections == 10000, "default http.max_connections 10000");
    ok(cfg.http_request_timeout_ms == 3600000, "default http.request_timeout 1h");
    ok(cfg.http_idle_timeout_ms == 60000, "default http.idle_timeout 60s");
    ok(cfg.http_shutdown_timeout_ms == 30000, "default http.shutdown_timeout 30s");
    ok(cfg.http_shutdown_delay_ms == 0, "default http.shutdown_delay 0");
    ok(cfg.http_max_body_size == 10737418240ull, "default http.max_body_size 10GiB");
    ok(streq(cfg.storage_root, "./data"), "default storage.root");
    ok(cfg.storage_manifest_max_size == 4194304, "default storage.manifest_max_size 4MiB");
    ok(cfg.storage_upload_ttl_ms == 86400000, "default storage.upload_ttl 24h");
    ok(cfg.workers == 16, "default workers 16");
    ok(streq(cfg.log_access, "-"), "default log.access -");
    ok(streq(cfg.log_level, "info"), "default log.level info");
    ok(streq(cfg.log_format, "text"), "default log.format text");
    config_dispose(&cfg);
    ok(load_text(&cfg, "log:\n  format: json\n", &err) == 0 && streq(cfg.log_format, "json"), "log.format json");
    config_dispose(&cfg);
    ok(fails_with("log.format: xml\n", "log.format", "text or json", NULL), "log.format: only text or json");
    ok(cfg.http_addr == NULL && cfg.log_level == NULL, "dispose clears the strings");
    config_dispose(&cfg); /* twice is harmless */

    ok(load_text(&cfg, "", &err) == 0 && is_default(&cfg), "empty file: defaults");
    config_dispose(&cfg);
    ok(load_text(&cfg, "# only\n  # comments\n", &err) == 0 && is_default(&cfg), "comments only: defaults");
    config_dispose(&cfg);
    ok(load_text(&cfg, "---\n", &err) == 0 && is_default(&cfg), "empty document: defaults");
    config_dispose(&cfg);
    ok(load_text(&cfg, "http:\n  # addr: x\nstorage:\nlog: ~\n", &err) == 0 && is_default(&cfg),
       "empty sections: defaults");
    config_dispose(&cfg);
    free(err);
}

static void test_yaml(void)
{
    config_t cfg;
    char *err = NULL;

    int r = load_text(&cfg,
                      "# comment\n"
                      "http:\n"
                      "  addr: \"[::1]:8443\"\n"
                      "  tls:\n"
                      "    certificate: /etc/berth/cert.pem\n"
                      "    key: '/etc/berth/key.pem'\n"
                      "  threads: 4\n"
                      "  max_connections: 100\n"
                      "  request_timeout: 90m\n"
                      "  idle_timeout: 45s\n"
                      "  shutdown_timeout: 1500ms\n"
                      "  shutdown_delay: 5s\n"
                      "  max_body_size: 2GiB\n"
                      "storage:\n"
                      "  root: /var/lib/berth\n"
                      "  manifest_max_size: 8MiB\n"
                      "  upload_ttl: 2d\n"
                      "workers: 32\n"
                      "log:\n"
                      "  access: /var/log/berth/access.log\n"
                      "  level: debug\n",
                      &err);
    ok(r == 0, "nested YAML loads");
    ok(streq(cfg.http_addr, "[::1]:8443"), "nested http.addr");
    ok(streq(cfg.http_tls_certificate, "/etc/berth/cert.pem") && streq(cfg.http_tls_key, "/etc/berth/key.pem"),
       "nested http.tls.*");
    ok(cfg.http_threads == 4 && cfg.http_max_connections == 100, "nested http.threads, http.max_connections");
    ok(cfg.http_request_timeout_ms == 5400000 && cfg.http_idle_timeout_ms == 45000 &&
           cfg.http_shutdown_timeout_ms == 1500 && cfg.http_shutdown_delay_ms == 5000,
       "nested durations");
    ok(cfg.http_max_body_size == 2ull << 30, "nested http.max_body_size");
    ok(streq(cfg.storage_root, "/var/lib/berth") && cfg.storage_manifest_max_size == 8 << 20 &&
           cfg.storage_upload_ttl_ms == 2 * 86400000ull,
       "nested storage.*");
    ok(cfg.workers == 32, "top-level workers");
    ok(streq(cfg.log_access, "/var/log/berth/access.log") && streq(cfg.log_level, "debug"), "nested log.*");
    config_dispose(&cfg);

    r = load_text(&cfg,
                  "http.addr: 0.0.0.0:80\nhttp.tls.certificate: c.pem\nhttp.tls.key: k.pem\nstorage.upload_ttl: 60\n"
                  "log.level: warn\n",
                  &err);
    ok(r == 0 && streq(cfg.http_addr, "0.0.0.0:80") && streq(cfg.http_tls_certificate, "c.pem") &&
           streq(cfg.http_tls_key, "k.pem") && cfg.storage_upload_ttl_ms == 60000 && streq(cfg.log_level, "warn"),
       "flat dotted keys");
    ok(cfg.http_max_connections == 10000 && streq(cfg.storage_root, "./data"), "flat: other keys keep their defaults");
    config_dispose(&cfg);

    r = load_text(&cfg, "http:\n  tls.certificate: c.pem\n  tls.key: k.pem\n", &err);
    ok(r == 0 && streq(cfg.http_tls_key, "k.pem"), "dotted key inside a section");
    config_dispose(&cfg);

    r = load_text(&cfg, "{http: {addr: 'h:1'}, workers: 2}\n", &err);
    ok(r == 0 && streq(cfg.http_addr, "h:1") && cfg.workers == 2, "flow style mapping");
    config_dispose(&cfg);

    r = load_text(&cfg, "log:\n  access: \"\"\n", &err);
    ok(r == 0 && streq(cfg.log_access, ""), "log.access \"\" (off) is kept");
    config_dispose(&cfg);

    r = load_text(&cfg, "http:\n  tls:\n    certificate: ~\n    key: null\n", &err);
    ok(r == 0 && cfg.http_tls_certificate == NULL && cfg.http_tls_key == NULL, "~ and null unset an optional string");
    config_dispose(&cfg);

    r = load_text(&cfg, "http:\n  tls:\n    certificate:\n    key: \"\"\n", &err);
    ok(r == 0 && cfg.http_tls_certificate == NULL && cfg.http_tls_key == NULL, "empty value unsets an optional string");
    config_dispose(&cfg);

    r = load_text(&cfg, "storage:\n  root: \"null\"\n", &err);
    ok(r == 0 && streq(cfg.storage_root, "null"), "quoted \"null\" is a string");
    config_dispose(&cfg);

    r = load_text(&cfg, "workers: '8'\nhttp:\n  max_body_size: \"1 GiB\"\n", &err);
    ok(r == 0 && cfg.workers == 8 && cfg.http_max_body_size == 1 << 30, "quoted numbers");
    config_dispose(&cfg);

    r = load_text(&cfg, "%YAML 1.1\n---\nworkers: 3\n...\n", &err);
    ok(r == 0 && cfg.workers == 3, "explicit document markers");
    config_dispose(&cfg);

    r = load_text(&cfg, "workers: &w 5\n", &err);
    ok(r == 0 && cfg.workers == 5, "anchors are harmless");
    config_dispose(&cfg);
    free(err);
}

static void test_env(void)
{
    config_t cfg;
    char *err = NULL;
    const char *file = "http:\n  addr: 10.0.0.1:5000\n  max_body_size: 1GiB\nworkers: 4\nlog:\n  level: warn\n";

    setenv("BERTH_HTTP_ADDR", "10.0.0.2:6000", 1);
    setenv("BERTH_WORKERS", "7", 1);
    setenv("BERTH_HTTP_REQUEST_TIMEOUT", "2h", 1);
    setenv("BERTH_STORAGE_MANIFEST_MAX_SIZE", "5MiB", 1);
    setenv("BERTH_LOG_ACCESS", "", 1);
    int r = load_text(&cfg, file, &err);
    ok(r == 0, "file + environment loads");
    ok(streq(cfg.http_addr, "10.0.0.2:6000"), "env overrides the file (string)");
    ok(cfg.workers == 7, "env overrides the file (uint)");
    ok(cfg.http_max_body_size == 1 << 30 && streq(cfg.log_level, "warn"), "file values without a variable are kept");
    ok(cfg.http_request_timeout_ms == 7200000, "env overrides a default (duration)");
    ok(cfg.storage_manifest_max_size == 5 << 20, "env overrides a default (size)");
    ok(streq(cfg.log_access, ""), "BERTH_LOG_ACCESS= turns the access log off");
    config_dispose(&cfg);

    r = config_load(&cfg, NULL, &err);
    ok(r == 0 && streq(cfg.http_addr, "10.0.0.2:6000") && cfg.workers == 7, "env without a file");
    config_dispose(&cfg);

    setenv("BERTH_WORKERS", "many", 1);
    ok(fails_with(file, "BERTH_WORKERS", "workers", "many", NULL), "bad env value names the variable");
    setenv("BERTH_WORKERS", "0", 1);
    ok(fails_with(file, "BERTH_WORKERS", NULL), "env value out of range");
    clear_env();

    setenv("BERTH_HTTP_TLS_CERTIFICATE", "", 1);
    setenv("BERTH_HTTP_TLS_KEY", "", 1);
    r = load_text(&cfg, "http.tls.certificate: c.pem\nhttp.tls.key: k.pem\n", &err);
    ok(r == 0 && cfg.http_tls_certificate == NULL && cfg.http_tls_key == NULL,
       "empty variables turn off TLS set in the file");
    config_dispose(&cfg);
    clear_env();

    setenv("BERTH_HTTP_ADDR", "", 1);
    ok(fails_with(NULL, "BERTH_HTTP_ADDR", NULL), "empty BERTH_HTTP_ADDR is rejected");
    clear_env();
    setenv("BERTH_HTTP_TLS_KEY", "k.pem", 1);
    ok(fails_with(NULL, "http.tls.certificate", "http.tls.key", NULL), "env: TLS key without certificate");
    clear_env();
    free(err);
}

static void test_sizes(void)
{
    uint64_t v = 77;
    ok(size_is("0", 0) && size_is("1", 1) && size_is("4096", 4096), "size: plain bytes");
    ok(size_is("10B", 10) && size_is("10 B", 10), "size: B");
    ok(size_is("3KiB", 3072) && size_is("3MiB", 3 << 20) && size_is("3GiB", 3ull << 30) && size_is("3TiB", 3ull << 40),
       "size: KiB MiB GiB TiB");
    ok(size_is("3KB", 3000) && size_is("3kB", 3000) && size_is("3MB", 3000000) && size_is("3GB", 3000000000ull) &&
           size_is("3TB", 3000000000000ull),
       "size: KB MB GB TB are decimal");
    ok(size_is("2k", 2048) && size_is("2K", 2048) && size_is("2M", 2 << 20) && size_is("2G", 2ull << 30) &&
           size_is("2T", 2ull << 40),
       "size: k K M G T are binary");
    ok(size_is("1 GiB", 1 << 30), "size: space before the unit");
    ok(size_is("18446744073709551615", UINT64_MAX), "size: UINT64_MAX");
    ok(size_is("16777215TiB", 16777215ull << 40), "size: largest TiB");

    const char *bad[] = {"",
                         "-1",
                         "+1",
                         " 1",
                         "1 ",
                         "1.5GiB",
                         "0x10",
                         "GiB",
                         "1GiBx",
                         "1 GiB B",
                         "1gib",
                         "1b",
                         "1Ki",
                         "1PiB",
                         "18446744073709551616",
                         "16777216TiB",
                         "99999999999999999999999",
                         "1,000",
                         "1e9"};
    int all = 1;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        if (config_parse_size(bad[i], &v) == 0) {
            printf("# accepted size \"%s\"\n", bad[i]);
            all = 0;
        }
    }
    ok(all, "size: malformed, negative and overflowing values are rejected");
    ok(v == 77, "size: a rejected value leaves the output alone");
    ok(config_parse_size(NULL, &v) == -1, "size: NULL");
}

static void test_durations(void)
{
    uint64_t v = 77;
    ok(dur_is("0", 0) && dur_is("30", 30000), "duration: plain seconds");
    ok(dur_is("250ms", 250) && dur_is("250 ms", 250), "duration: ms");
    ok(dur_is("30s", 30000) && dur_is("5m", 300000) && dur_is("2h", 7200000) && dur_is("3d", 259200000),
       "duration: s m h d");
    ok(dur_is("18446744073709551615ms", UINT64_MAX), "duration: largest ms");
    ok(dur_is("213503982334d", 213503982334ull * 86400000), "duration: largest days");

    const char *bad[] = {"",
                         "-1s",
                         "+1s",
                         "1.5h",
                         "1h30m",
                         "s",
                         "1sec",
                         "1S",
                         "1 s ",
                         "1w",
                         "1y",
                         "1us",
                         "18446744073709551616ms",
                         "18446744073709551616",
                         "213503982335d",
                         "18446744073709552s"};
    int all = 1;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        if (config_parse_duration_ms(bad[i], &v) == 0) {
            printf("# accepted duration \"%s\"\n", bad[i]);
            all = 0;
        }
    }
    ok(all, "duration: malformed, negative and overflowing values are rejected");
    ok(v == 77, "duration: a rejected value leaves the output alone");

    ok(fails_with("http:\n  max_body_size: -1\n", "http.max_body_size", "-1", ":2", NULL),
       "file: negative size rejected");
    ok(fails_with("http:\n  idle_timeout: 5 minutes\n", "http.idle_timeout", NULL), "file: bad duration rejected");
    ok(fails_with("http.request_timeout: 0\n", "http.request_timeout", NULL), "request_timeout 0 rejected");
    ok(loads("http.shutdown_timeout: 0\nstorage.upload_ttl: 0s\n"), "shutdown_timeout and upload_ttl may be 0");
}

static void test_errors(void)
{
    config_t cfg;
    char *err = NULL;

    ok(fails_with("http:\n  addr: 1.2.3.4:5\n  address: x\n", "http.address", ":3", "http.addr", NULL),
       "unknown key: names it, its line and the nearest key");
    ok(fails_with("workers: 1\nhtp:\n  addr: x\n", "htp", ":2", "\"http\"", NULL),
       "unknown section suggests the section");
    ok(fails_with("addr: x\n", "\"addr\"", ":1", "http.addr", NULL), "key outside its section suggests the full key");
    ok(fails_with("tls:\n  key: x\n", "http.tls", NULL), "section outside its section suggests the full one");
    ok(fails_with("\n\nfrobnicate: yes\n", "frobnicate", ":3", NULL), "unknown key without a suggestion");
    ok(fails_with("http.bogus.deep: 1\n", "http.bogus.deep", NULL), "unknown dotted key");
    ok(fails_with("http:\n  addr:\n    host: x\n", "http.addr", "mapping", ":2", NULL),
       "mapping where a value is expected");
    ok(fails_with("http: 1.2.3.4:5000\n", "http", "section", NULL), "value where a mapping is expected");
    ok(fails_with("workers: [1, 2]\n", "workers", "list", NULL), "list where a value is expected");
    ok(fails_with("storage:\n  - root: x\n", "storage", "list", NULL), "list where a mapping is expected");
    ok(fails_with("- workers: 1\n", "top level", NULL), "top level list");
    ok(fails_with("just a string\n", "top level", NULL), "top level scalar");
    ok(fails_with("x: &a 1\nworkers: *a\n", "x", NULL), "unknown key before an alias");
    ok(fails_with("log:\n  level: &l info\nworkers: *l\n", "workers", "alias", NULL), "aliases rejected");
    ok(fails_with("? [a, b]\n: 1\n", "keys", NULL), "complex keys rejected");
    ok(fails_with("workers: 1\nworkers: 2\n", "workers", "twice", ":2", "line 1", NULL), "duplicate key");
    ok(fails_with("http:\n  addr: a:1\nhttp.addr: b:2\n", "http.addr", "twice", NULL),
       "duplicate key, nested and flat");
    ok(fails_with("http:\n  addr: \"oops\n", "YAML", NULL), "syntax error");
    ok(fails_with("http:\n  addr: a:1\n bad: indentation\n", "YAML", ":3", NULL), "syntax error line");
    ok(fails_with("workers: 1\n---\nworkers: 2\n", "one YAML document", NULL), "several documents");
    ok(fails_with("storage.root: \"/srv\\x00/x\"\n", "storage.root", "NUL", NULL), "NUL in a value");
    ok(fails_with("\"workers\\0x\": 1\n", "NUL", NULL), "NUL in a key");

    ok(fails_with("workers:\n", "workers", "required", NULL), "null for a number");
    ok(fails_with("http:\n  addr: ~\n", "http.addr", "required", NULL), "null for a required string");
    ok(fails_with("storage:\n  root: ''\n", "storage.root", "empty", ":2", NULL), "empty storage.root");

    ok(fails_with("workers: 0\n", "workers", "out of range", NULL), "workers 0");
    ok(fails_with("workers: 1025\n", "workers", "1024", NULL), "workers 1025");
    ok(loads("workers: 1\n") && loads("workers: 1024\n"), "workers 1 and 1024");
    ok(fails_with("workers: -1\n", "workers", NULL) && fails_with("workers: 1.0\n", "workers", NULL) &&
           loads("workers: 4 \n"),
       "workers: negative and fractional rejected, trailing blanks stripped by YAML");
    ok(fails_with("http.threads: 4294967296\n", "http.threads", NULL), "uint overflow");
    ok(loads("http.threads: 4294967295\n"), "uint max");
    ok(fails_with("http.max_connections: 0\n", "http.max_connections", NULL), "max_connections 0");
    ok(fails_with("log.level: verbose\n", "log.level", "verbose", "debug", NULL), "bad log.level");
    ok(fails_with("\nhttp:\n  addr: localhost\n", "http.addr", "localhost", ":3", "host:port", NULL),
       "addr without a port");
    ok(fails_with("log.level: INFO\n", "log.level", NULL), "log.level is case-sensitive");
    ok(loads("auth.external_keys: /etc/idp/jwks.json\n") && loads("auth.external_keys: https://idp.example/jwks\n") &&
           loads("auth.external_keys: http://127.0.0.1:8080/token/jwks\n"),
       "auth.external_keys: a file or an http(s) URL");
    ok(fails_with("auth.external_keys: ftp://idp/jwks\n", "auth.external_keys", "URL", NULL) &&
           fails_with("auth.external_keys: https://\n", "auth.external_keys", "host", NULL) &&
           fails_with("auth.external_keys: https:///jwks\n", "auth.external_keys", "host", NULL) &&
           fails_with("auth.external_keys: \"https://idp/a b\"\n", "auth.external_keys", "blanks", NULL),
       "auth.external_keys: another scheme, a URL without a host or with a blank");
    ok(fails_with("auth.external_keys_refresh: 500ms\n", "auth.external_keys_refresh", NULL) &&
           loads("auth.external_keys_refresh: 1s\n"),
       "auth.external_keys_refresh: at least 1s");
    ok(loads("log.level: error\n") && loads("log.level: warn\n") && loads("log.level: debug\n"), "every log level");

    ok(fails_with("storage:\n  manifest_max_size: 1MiB\n", "storage.manifest_max_size", "4MiB", NULL),
       "manifest limit < 4MiB");
    ok(fails_with("storage.manifest_max_size: 4194303\n", "storage.manifest_max_size", NULL),
       "manifest limit 4MiB - 1");
    ok(load_text(&cfg, "storage.manifest_max_size: 4194304\n", &err) == 0 && cfg.storage_manifest_max_size == 4194304,
       "manifest limit exactly 4MiB");
    config_dispose(&cfg);
    ok(fails_with("http.max_body_size: 16MiB\nstorage.manifest_max_size: 32MiB\n", "http.max_body_size", NULL),
       "body limit below the manifest limit");

    ok(fails_with("http.tls.certificate: c.pem\n", "http.tls.certificate", "http.tls.key", NULL),
       "certificate without key");
    ok(fails_with("http.tls.key: k.pem\n", "http.tls.certificate", "http.tls.key", NULL), "key without certificate");

    const char *good_addr[] = {"127.0.0.1:5000",          "0.0.0.0:1", "localhost:65535",
                               "my-host.example.com:443", "[::]:5000", "[::1]:80",
                               "[fe80::1%eth0]:8080",     ":5000",     ":1"};
    const char *bad_addr[] = {"127.0.0.1",
                              "127.0.0.1:",
                              ":",
                              ":0",
                              ":65536",
                              ":http",
                              "::5000",
                              "127.0.0.1:0",
                              "127.0.0.1:65536",
                              "127.0.0.1:99999",
                              "127.0.0.1:http",
                              "::1:5000",
                              "[::1]5000",
                              "[]:80",
                              "[::1:80",
                              "host :80",
                              "host:80x",
                              "host:-1",
                              "host:+80",
                              "a b:1",
                              "127.0.0.1:5000/",
                              "[::1]:"};
    int all = 1;
    for (size_t i = 0; i < sizeof(good_addr) / sizeof(good_addr[0]); ++i) {
        char yaml[128];
        snprintf(yaml, sizeof(yaml), "http.addr: '%s'\n", good_addr[i]);
        if (!loads(yaml)) {
            printf("# rejected %s\n", good_addr[i]);
            all = 0;
        }
    }
    ok(all, "good addresses accepted");
    all = 1;
    for (size_t i = 0; i < sizeof(bad_addr) / sizeof(bad_addr[0]); ++i) {
        char yaml[128];
        snprintf(yaml, sizeof(yaml), "http.addr: '%s'\n", bad_addr[i]);
        if (!fails_with(yaml, "http.addr", NULL)) {
            printf("# accepted %s\n", bad_addr[i]);
            all = 0;
        }
    }
    ok(all, "bad addresses rejected");

    char missing[300];
    snprintf(missing, sizeof(missing), "%s/does-not-exist.yaml", tmpdir);
    ok(config_load(&cfg, missing, &err) == -1 && err != NULL && strstr(err, missing) != NULL &&
           strstr(err, "No such file") != NULL && cfg.http_addr == NULL,
       "missing file: error names it");
    free(err);
    err = NULL;
    ok(config_load(&cfg, tmpdir, &err) == -1 && err != NULL && strstr(err, tmpdir) != NULL &&
           strstr(err, "directory") != NULL,
       "a directory is an error");
    free(err);
    err = NULL;
    ok(config_load(&cfg, missing, NULL) == -1, "err may be NULL");
}

static void test_conf_file(void)
{
    config_t cfg;
    char *err = NULL, path[4096];
    const char *srcdir = getenv("SRCDIR");

    snprintf(path, sizeof(path), "%s/conf/berth.yaml", srcdir != NULL ? srcdir : ".");
    int r = config_load(&cfg, path, &err);
    if (r != 0)
        printf("# %s\n", err);
    ok(r == 0 && is_default(&cfg), "conf/berth.yaml loads and holds exactly the defaults");
    config_dispose(&cfg);
    free(err);
}

static void test_print(void)
{
    config_t cfg;
    char *err = NULL, out[300], buf[8192];

    setenv("BERTH_WORKERS", "12", 1);
    setenv("BERTH_HTTP_MAX_BODY_SIZE", "1500000000", 1);
    ok(load_text(&cfg, "http.tls.certificate: c.pem\nhttp.tls.key: k.pem\nlog.access: ''\n", &err) == 0,
       "print: loads");
    clear_env();

    snprintf(out, sizeof(out), "%s/print.txt", tmpdir);
    fflush(stdout);
    int saved = dup(1);
    if (freopen(out, "w", stdout) == NULL)
        exit(2);
    config_print(&cfg);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    FILE *fp = fopen(out, "r");
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';

    ok(strstr(buf, "KEY") == buf && strstr(buf, "VARIABLE") != NULL, "print: header");
    ok(strstr(buf, "http.addr") != NULL && strstr(buf, "BERTH_HTTP_ADDR") != NULL &&
           strstr(buf, "127.0.0.1:5000") != NULL,
       "print: key, variable, value");
    ok(strstr(buf, "BERTH_HTTP_TLS_CERTIFICATE") != NULL && strstr(buf, "c.pem") != NULL,
       "print: nested key's variable");
    ok(strstr(buf, "BERTH_STORAGE_MANIFEST_MAX_SIZE") != NULL && strstr(buf, "4MiB") != NULL, "print: sizes in units");
    ok(strstr(buf, " 1500000000 ") != NULL, "print: odd size in bytes");
    ok(strstr(buf, " 1h ") != NULL && strstr(buf, " 5m ") != NULL && strstr(buf, " 30s ") != NULL &&
           strstr(buf, " 1d ") != NULL,
       "print: durations in units");
    ok(strstr(buf, " 12 ") != NULL && strstr(buf, " \"\" ") != NULL, "print: numbers and empty strings");
    /* a header, then one line per key, each naming its variable (no magic count: keys come with features) */
    int lines = 0, keyed = 0;
    for (const char *p = buf, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        ++lines;
        const char *v = strstr(p, " BERTH_");
        keyed += v != NULL && v < nl;
    }
    ok(lines > 40 && keyed == lines - 1, "print: a header and one line per key (%d lines, %d with a variable)", lines,
       keyed);
    unlink(out);
    config_dispose(&cfg);
    free(err);
}

static void test_replication(void)
{
    config_t cfg;
    char *err = NULL;
    int r = load_text(&cfg,
                      "replication:\n"
                      "  - name: dr\n"
                      "    remote: https://backup.example:5000\n"
                      "    username: robot\n"
                      "    password: s3cret\n"
                      "    repositories: [team/*, 'apps/**']\n"
                      "    tags: 'v*'\n"
                      "    remote_prefix: mirror/\n"
                      "    schedule: 1h\n"
                      "    on_push: true\n"
                      "  - name: hub\n"
                      "    direction: pull\n"
                      "    remote: http://127.0.0.1:5001\n"
                      "    repositories: library/alpine\n"
                      "    local_prefix: hub/\n"
                      "    tls_verify: false\n",
                      &err);
    if (r != 0)
        printf("# %s\n", err);
    ok(r == 0 && cfg.nreplication == 2, "replication: two rules load");
    if (r == 0 && cfg.nreplication == 2) {
        const config_replication_t *a = &cfg.replication[0], *b = &cfg.replication[1];
        ok(streq(a->name, "dr") && !a->pull && streq(a->remote, "https://backup.example:5000") &&
               a->nrepositories == 2 && streq(a->repositories[0], "team/*") && streq(a->repositories[1], "apps/**") &&
               streq(a->tags, "v*") && streq(a->remote_prefix, "mirror/") && a->schedule_ms == 3600000 && a->on_push &&
               a->tls_verify && a->timeout_ms == 30000,
           "replication: a push rule's keys");
        ok(streq(b->name, "hub") && b->pull && b->nrepositories == 1 && streq(b->repositories[0], "library/alpine") &&
               streq(b->local_prefix, "hub/") && !b->tls_verify && b->schedule_ms == 0 && b->tags == NULL,
           "replication: a pull rule's keys");
    }
    config_dispose(&cfg);
    free(err);
    ok(fails_with("replication:\n  - remote: http://a\n    repositories: x\n", "name is required", NULL),
       "replication: name is required");
    ok(fails_with("replication:\n  - name: a\n    repositories: x\n", "remote is required", NULL),
       "replication: remote is required");
    ok(fails_with("replication:\n  - name: a\n    remote: http://a\n", "repositories is required", NULL),
       "replication: repositories is required");
    ok(fails_with("replication:\n  - name: a\n    remote: ftp://a\n    repositories: x\n", "remote", NULL),
       "replication: remote must be http(s)");
    ok(fails_with("replication:\n  - name: a\n    remote: http://a/v2\n    repositories: x\n", "without a path", NULL),
       "replication: remote without a path");
    ok(fails_with("replication:\n  - name: a\n    remote: http://a\n    repositories: 'x y'\n",
                  "not a pattern of names", NULL),
       "replication: a bad pattern");
    ok(fails_with("replication:\n  - name: a\n    direction: sideways\n    remote: http://a\n    repositories: x\n",
                  "neither push nor pull", NULL),
       "replication: direction");
    ok(fails_with("replication:\n  - name: a\n    direction: pull\n    on_push: true\n    remote: http://a\n"
                  "    repositories: x\n",
                  "on_push is for push rules", NULL),
       "replication: on_push only for push rules");
    ok(fails_with("replication:\n  - name: a\n    remote: http://a\n    repositories: x\n"
                  "  - name: a\n    remote: http://b\n    repositories: y\n",
                  "two rules named", NULL),
       "replication: names are unique");
    ok(fails_with("replication:\n  - name: a\n    remote: http://a\n    repositories: x\n    local_prefix: team\n",
                  "followed by /", NULL),
       "replication: a prefix ends with /");
    ok(fails_with("retention:\n  - repositories: [a, b]\n    keep_last: 1\n", "expected a value", NULL),
       "retention takes no list");

    ok(config_glob_match("team/*", "team/app", 8) && !config_glob_match("team/*", "team/a/b", 8) &&
           config_glob_match("team/**", "team/a/b", 8) && config_glob_match("**", "x/y/z", 5) &&
           !config_glob_match("team/*", "teams/app", 9) && config_glob_match("a?c", "abc", 3) &&
           !config_glob_match("a?c", "a/c", 3) && config_glob_match("v1.*", "v1.2", 4) &&
           !config_glob_match("v1.*", "v2.0", 4) && config_glob_match("*/*", "a/b", 3) &&
           config_glob_match("x", "x", 1) && !config_glob_match("x", "xy", 2),
       "glob: * within a component, ** across, ? one character");
}

static void test_notifications(void)
{
    config_t cfg;
    char *err = NULL;
    int r = load_text(&cfg,
                      "notifications:\n"
                      "  queue_size: 500\n"
                      "  endpoints:\n"
                      "    - name: ci\n"
                      "      url: https://ci.example/hook\n"
                      "      headers:\n"
                      "        Authorization: [Bearer abc]\n"
                      "        X-One: single\n"
                      "      timeout: 2s\n"
                      "      threshold: 4\n"
                      "      backoff: 250ms\n"
                      "      maxbackoff: 10s\n"
                      "      ignoredmediatypes: [application/octet-stream]\n"
                      "      ignore:\n"
                      "        mediatypes: [a/b]\n"
                      "        actions: [delete]\n"
                      "      repositories: [acme/*, tools/x]\n"
                      "      format: cloudevents\n"
                      "    - name: pulls\n"
                      "      url: http://h/\n"
                      "      actions: [pull]\n",
                      &err);
    ok(r == 0, "notifications: a full endpoint loads (%s)", err ? err : "");
    if (r == 0) {
        const config_endpoint_t *e = &cfg.endpoints[0];
        ok(cfg.nendpoints == 2 && cfg.notifications_queue_size == 500, "notifications: two endpoints, queue_size");
        ok(streq(e->name, "ci") && streq(e->url, "https://ci.example/hook"), "notifications: name and url");
        ok(e->nheaders == 2 && streq(e->headers[0], "Authorization: Bearer abc") &&
               streq(e->headers[1], "X-One: single"),
           "notifications: headers as lines, a list or one value");
        ok(e->timeout_ms == 2000 && e->threshold == 4 && e->backoff_ms == 250 && e->max_backoff_ms == 10000,
           "notifications: timeout, threshold, backoff, maxbackoff");
        ok(e->nignored_types == 2 && streq(e->ignored_types[1], "a/b"), "notifications: both forms of ignored types");
        ok(e->actions == CONFIG_ACTION_PUSH, "notifications: default push and delete, minus ignore.actions");
        ok(e->nrepositories == 2 && e->cloudevents, "notifications: repositories, format");
        ok(cfg.endpoints[1].actions == CONFIG_ACTION_PULL && !cfg.endpoints[1].cloudevents &&
               cfg.endpoints[1].timeout_ms == 5000,
           "notifications: actions replace the default; defaults");
        config_dispose(&cfg);
    }
    free(err);
    ok(fails_with("notifications:\n  endpoints:\n    - url: http://h/\n", "needs a name and a url", NULL),
       "notifications: name required");
    ok(fails_with("notifications:\n  endpoints:\n    - name: a\n      url: ftp://h/\n", "http:// or https://", NULL),
       "notifications: http(s) only");
    ok(fails_with("notifications:\n  endpoints:\n    - {name: a, url: 'http://h/'}\n    - {name: a, url: "
                  "'http://i/'}\n",
                  "two endpoints named", NULL),
       "notifications: names unique");
    ok(fails_with("notifications:\n  endpoints:\n    - {name: a, url: 'http://h/', actions: [get]}\n",
                  "unknown action \"get\"", NULL),
       "notifications: actions checked");
    ok(fails_with("notifications:\n  endpoints:\n    - {name: a, url: 'http://h/', repositories: ['a b']}\n",
                  "not a repository name", NULL),
       "notifications: repository patterns checked");
    ok(fails_with("notifications:\n  endpoints:\n    - {name: a, url: 'http://h/', headers: {'X:Y': v}}\n",
                  "not a header name", NULL),
       "notifications: header names checked");
    ok(fails_with("notifications:\n  endpoints:\n    - {name: a, url: 'http://h/', backoff: 1m, maxbackoff: 1s}\n",
                  "maxbackoff is below backoff", NULL),
       "notifications: maxbackoff >= backoff");
    ok(fails_with("notifications:\n  endpoints:\n    - {name: a, url: 'http://h/', secret: x}\n",
                  "unknown key \"secret\"", NULL),
       "notifications: unknown keys refused");
    ok(loads("notifications:\n  endpoints:\n"), "notifications: no endpoints");
}

int main(void)
{
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    clear_env();
    test_defaults();
    test_yaml();
    test_env();
    test_sizes();
    test_durations();
    test_errors();
    test_conf_file();
    test_print();
    test_replication();
    test_notifications();

    for (int i = 0; i < nfiles; ++i) {
        char path[300];
        snprintf(path, sizeof(path), "%s/%d.yaml", tmpdir, i);
        unlink(path);
    }
    rmdir(tmpdir);
    return tap_done();
}
