/*
 * berth's configuration. Every key is one row of `keys` below: its type, where it lives in config_t, its
 * default, its limits and its documentation. The loader, the environment overrides, `berth config` and the
 * error messages all walk that table, so adding a key is adding a row (and a field, and a line in
 * conf/berth.yaml and docs/configuration.md).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include "oci/name.h"
#include "config/config.h"

typedef enum { CONFIG_STRING, CONFIG_SIZE, CONFIG_DURATION, CONFIG_UINT, CONFIG_BOOL } config_type_t;

struct config_key {
    const char *key;
    config_type_t type; /* STRING: char *, SIZE/DURATION: uint64_t (bytes / ms), UINT: unsigned, BOOL: int */
    size_t offset;      /* of the field in config_t */
    const char *defval; /* as it would be written in the file; NULL = unset (STRING only) */
    uint64_t min, max;  /* numeric types, in bytes / ms / units; max 0 = the type's limit */
    const char *(*check)(const char *s); /* STRING: NULL if acceptable, else what is expected; NULL = anything */
    const char *doc;
};

static const char *check_nonempty(const char *s);
static const char *check_addr(const char *s);
static const char *check_external_keys(const char *s);
static const char *check_level(const char *s);
static const char *check_mode(const char *s);
static const char *check_format(const char *s);

#define MIB (1024 * 1024)
#define F(field) offsetof(config_t, field)

static const struct config_key keys[] = {
    {"http.addr", CONFIG_STRING, F(http_addr), "127.0.0.1:5000", 0, 0, check_addr,
     "listen address, host:port, [v6]:port, or :port for every address (IPv4 and IPv6)"},
    {"http.tls.certificate", CONFIG_STRING, F(http_tls_certificate), NULL, 0, 0, NULL,
     "PEM certificate chain; TLS is on when this and http.tls.key are set"},
    {"http.tls.key", CONFIG_STRING, F(http_tls_key), NULL, 0, 0, NULL, "PEM private key of http.tls.certificate"},
    {"http.threads", CONFIG_UINT, F(http_threads), "0", 0, 0, NULL, "event loop threads; 0 = one per core"},
    {"http.max_connections", CONFIG_UINT, F(http_max_connections), "10000", 1, 0, NULL,
     "open connections per process (lowered to what the descriptor limit allows)"},
    {"http.max_connections_per_address", CONFIG_UINT, F(http_max_connections_per_address), "128", 0, 0, NULL,
     "open connections per client address; 0 = no cap (a trusted proxy's connections are not counted)"},
    {"http.header_timeout", CONFIG_DURATION, F(http_header_timeout_ms), "20s", 1, 0, NULL,
     "a request's head must arrive within this of its first byte; also the window of http.min_rate"},
    {"http.min_rate", CONFIG_SIZE, F(http_min_rate), "16KiB", 0, 0, NULL,
     "bytes a second below which a request body arriving is cut off (over each http.header_timeout); 0 = none"},
    /* 0 is not "never" to h2o: the timer would fire at once and close every connection */
    {"http.request_timeout", CONFIG_DURATION, F(http_request_timeout_ms), "1h", 1, 0, NULL,
     "HTTP/1 keep-alive wait + headers + whole body; bounds the slowest upload"},
    {"http.idle_timeout", CONFIG_DURATION, F(http_idle_timeout_ms), "60s", 1, 0, NULL,
     "a connection with no request for this long is closed (HTTP/1 and HTTP/2)"},
    {"http.shutdown_timeout", CONFIG_DURATION, F(http_shutdown_timeout_ms), "30s", 0, 0, NULL,
     "grace for in-flight requests on SIGTERM"},
    {"http.shutdown_delay", CONFIG_DURATION, F(http_shutdown_delay_ms), "0", 0, 0, NULL,
     "on SIGTERM, /readyz answers 503 while berth still accepts and serves for this long, then it stops accepting"},
    {"http.max_body_size", CONFIG_SIZE, F(http_max_body_size), "10GiB", 0, 0, NULL,
     "largest request body, i.e. largest single upload"},
    {"storage.root", CONFIG_STRING, F(storage_root), "./data", 0, 0, check_nonempty,
     "directory holding blobs, metadata and uploads"},
    /* the distribution spec says registries should accept manifests of at least 4 MiB */
    {"storage.manifest_max_size", CONFIG_SIZE, F(storage_manifest_max_size), "4MiB", 4 * MIB, 0, NULL,
     "largest manifest accepted (at least 4MiB)"},
    {"storage.min_free", CONFIG_SIZE, F(storage_min_free), "1GiB", 0, 0, NULL,
     "below this much free space on the storage volume, pushes are refused with 507 (pulls go on)"},
    {"storage.upload_ttl", CONFIG_DURATION, F(storage_upload_ttl_ms), "24h", 0, 0, NULL,
     "upload sessions idle this long are removed"},
    {"storage.scrub_rate", CONFIG_SIZE, F(storage_scrub_rate), "0", 0, 0, NULL,
     "bytes per second the background scrub re-hashes blobs at, to find bit rot; 0 = off"},
    {"storage.sparse_manifests", CONFIG_BOOL, F(storage_sparse_manifests), "false", 0, 0, NULL,
     "accept manifests and indexes whose blobs or child manifests are absent (the spec's sparse manifests)"},
    {"gc.interval", CONFIG_DURATION, F(gc_interval_ms), "1h", 0, 0, NULL,
     "how often the server collects garbage (what no tag, index or referrer keeps); 0 = never (berth gc still does)"},
    {"gc.blob_grace", CONFIG_DURATION, F(gc_blob_grace_ms), "24h", 0, 0, NULL,
     "a blob a repository got but no manifest of it references is kept this long (clients push layers first)"},
    {"gc.untagged_grace", CONFIG_DURATION, F(gc_untagged_grace_ms), "7d", 0, 0, NULL,
     "an untagged manifest no index or subject keeps is removed after this long; 0 = kept forever"},
    {"audit.retention", CONFIG_DURATION, F(audit_retention_ms), "90d", 0, 0, NULL,
     "audit log rows older than this are removed by the server's chores (berth audit lists them); 0 = kept forever"},
    {"notifications.queue_size", CONFIG_UINT, F(notifications_queue_size), "10000", 100, 10000000, NULL,
     "webhook events kept in the database until every endpoint has them; beyond, the oldest are dropped (counted)"},
    {"workers", CONFIG_UINT, F(workers), "16", 1, 1024, NULL, "threads for blocking work (fsync, rename, hashing)"},
    {"log.access", CONFIG_STRING, F(log_access), "-", 0, 0, NULL,
     "access log: \"-\" = stdout, \"\" = off, else a file"},
    {"log.level", CONFIG_STRING, F(log_level), "info", 0, 0, check_level, "error, warn, info or debug"},
    {"log.format", CONFIG_STRING, F(log_format), "text", 0, 0, check_format,
     "text, or json: one JSON object a line, for the diagnostics and the access log"},
    {"mode", CONFIG_STRING, F(mode), "private", 0, 0, check_mode,
     "who may do what: private (credentials for everything), public, cloud, open (no authentication)"},
    {"admin_password", CONFIG_STRING, F(admin_password), NULL, 0, 0, NULL,
     "password of the admin account when it is created (serve prints a generated one otherwise)"},
    {"external_url", CONFIG_STRING, F(external_url), NULL, 0, 0, NULL,
     "how clients reach berth, e.g. https://registry.example (token realm); default: the request's scheme and Host"},
    {"auth.service", CONFIG_STRING, F(auth_service), "berth", 0, 0, check_nonempty,
     "the service name tokens are issued for (aud)"},
    {"auth.issuer", CONFIG_STRING, F(auth_issuer), "berth", 0, 0, check_nonempty, "the issuer of berth's tokens (iss)"},
    {"auth.key", CONFIG_STRING, F(auth_key), NULL, 0, 0, NULL,
     "token signing key (P-256, PKCS#8 PEM); default <storage.root>/keys/token.pem, generated at first start"},
    {"auth.token_ttl", CONFIG_DURATION, F(auth_token_ttl_ms), "5m", 60000, 0, NULL,
     "lifetime of issued tokens (at least 60s)"},
    {"auth.refresh_ttl", CONFIG_DURATION, F(auth_refresh_ttl_ms), "30d", 60000, 0, NULL, "lifetime of refresh tokens"},
    {"auth.private_default_pull", CONFIG_BOOL, F(auth_private_default_pull), "true", 0, 0, NULL,
     "mode private: every account may pull every repository"},
    {"auth.external_issuer", CONFIG_STRING, F(auth_external_issuer), NULL, 0, 0, NULL,
     "also trust tokens whose iss is this, signed by auth.external_keys"},
    {"auth.external_keys", CONFIG_STRING, F(auth_external_keys), NULL, 0, 0, check_external_keys,
     "PEM public key or JWKS of auth.external_issuer: a file, or an http(s):// URL of a JWKS"},
    {"auth.external_keys_refresh", CONFIG_DURATION, F(auth_external_keys_refresh_ms), "5m", 1000, 0, NULL,
     "how often auth.external_keys is read again (the issuer's key rotations), at least 1s"},
    {"auth.login_failures", CONFIG_UINT, F(auth_login_failures), "5", 1, 0, NULL,
     "failed logins per account and client address before backoff (429 + Retry-After)"},
    {"auth.login_failures_per_address", CONFIG_UINT, F(auth_login_failures_per_address), "30", 1, 0, NULL,
     "failed logins per client address, whatever the account name, before backoff (against password spraying)"},
    {"auth.login_backoff", CONFIG_DURATION, F(auth_login_backoff_ms), "1s", 0, 0, NULL,
     "first backoff after auth.login_failures, doubling with each further failure, at most 15 minutes"},
    {"auth.trusted_proxies", CONFIG_STRING, F(auth_trusted_proxies), "", 0, 0, NULL,
     "comma-separated proxy addresses whose X-Forwarded-For names the client"},
    {"auth.credential_cache_ttl", CONFIG_DURATION, F(auth_credential_cache_ttl_ms), "60s", 0, 0, NULL,
     "how long a verified password is remembered (keyed by an HMAC, never the password)"},
};

#undef F
#define NKEYS (sizeof(keys) / sizeof(keys[0]))
#define FIELD(cfg, k, type) ((type *)((char *)(cfg) + (k)->offset))

/* ---- value syntax ---- */

static const char *check_nonempty(const char *s)
{
    return *s != '\0' ? NULL : "must not be empty";
}

/* host:port, [v6]:port or :port (every address), port 1-65535. Only the syntax: resolving is the server's business. */
static const char *check_addr(const char *s)
{
    static const char *const expected = "expected host:port, [v6]:port or :port, port 1-65535";
    const char *p = s, *host;
    int v6 = *p == '[';

    /* host names and v4 addresses; v6 ones (hex digits, ':', '.' and a "%eth0" zone) only within brackets */
    for (host = p += v6;
         isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '_' || (v6 && (*p == ':' || *p == '%')); ++p)
        ;
    if ((p == host && v6) || (v6 && *p++ != ']') || *p++ != ':')
        return expected;
    unsigned port = 0;
    const char *digits = p;
    for (; isdigit((unsigned char)*p) && p - digits < 5; ++p)
        port = port * 10 + (*p - '0');
    return p != digits && *p == '\0' && port >= 1 && port <= 65535 ? NULL : expected;
}

/* A file path, or an http:// or https:// URL with a host. */
static const char *check_external_keys(const char *s)
{
    if (*s == '\0')
        return "must not be empty";
    const char *host = strncmp(s, "https://", 8) == 0 ? s + 8 : strncmp(s, "http://", 7) == 0 ? s + 7 : NULL;
    if (strstr(s, "://") != NULL && host == NULL)
        return "expected a file, or an http:// or https:// URL";
    if (host != NULL && (*host == '\0' || *host == '/'))
        return "a URL needs a host";
    for (const char *p = s; *p; ++p)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return host != NULL ? "a URL may not contain blanks or control characters" : NULL;
    return NULL;
}

/* NULL if `s` is one of the NULL-terminated `names`, else `expected`. */
static const char *check_one_of(const char *s, const char *const *names, const char *expected)
{
    for (; *names != NULL; ++names)
        if (strcmp(s, *names) == 0)
            return NULL;
    return expected;
}

static const char *check_level(const char *s)
{
    static const char *const levels[] = {"error", "warn", "info", "debug", NULL};
    return check_one_of(s, levels, "expected error, warn, info or debug");
}

static const char *check_format(const char *s)
{
    static const char *const formats[] = {"text", "json", NULL};
    return check_one_of(s, formats, "expected text or json");
}

static const char *check_mode(const char *s)
{
    static const char *const modes[] = {"private", "public", "cloud", "open", NULL};
    return check_one_of(s, modes, "expected private, public, cloud or open");
}

/* Leading decimal digits into *out; returns the first byte after them, NULL on no digits or overflow. */
static const char *parse_digits(const char *s, uint64_t *out)
{
    uint64_t n = 0;
    const char *p = s;
    for (; isdigit((unsigned char)*p); ++p) {
        unsigned d = *p - '0';
        if (n > (UINT64_MAX - d) / 10)
            return NULL;
        n = n * 10 + d;
    }
    if (p == s)
        return NULL;
    *out = n;
    return p;
}

static int apply_unit(uint64_t n, uint64_t mult, uint64_t *out)
{
    if (mult != 0 && n > UINT64_MAX / mult)
        return -1;
    *out = n * mult;
    return 0;
}

struct unit {
    const char *name;
    uint64_t mult;
};

static int parse_with_units(const char *s, const struct unit *units, uint64_t *out)
{
    uint64_t n;
    const char *p;
    if (s == NULL || (p = parse_digits(s, &n)) == NULL)
        return -1;
    if (*p == ' ') { /* "10 GiB", but not "10 " */
        while (*p == ' ')
            ++p;
        if (*p == '\0')
            return -1;
    }
    for (; units->name != NULL; ++units)
        if (strcmp(p, units->name) == 0)
            return apply_unit(n, units->mult, out);
    return -1;
}

int config_parse_size(const char *s, uint64_t *out)
{
    static const struct unit units[] = {
        {"", 1},
        {"B", 1},
        {"KiB", 1ull << 10},
        {"MiB", 1ull << 20},
        {"GiB", 1ull << 30},
        {"TiB", 1ull << 40},
        {"KB", 1000ull},
        {"kB", 1000ull},
        {"MB", 1000000ull},
        {"GB", 1000000000ull},
        {"TB", 1000000000000ull},
        {"k", 1ull << 10},
        {"K", 1ull << 10},
        {"M", 1ull << 20},
        {"G", 1ull << 30},
        {"T", 1ull << 40},
        {NULL, 0},
    };
    return parse_with_units(s, units, out);
}

int config_parse_duration_ms(const char *s, uint64_t *out)
{
    static const struct unit units[] = {
        {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}, {"d", 86400 * 1000}, {NULL, 0},
    };
    return parse_with_units(s, units, out);
}

static int parse_bool(const char *s, int *out)
{
    static const char *const t[] = {"true", "yes", "on", "1"}, *const f[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); ++i) {
        if (strcasecmp(s, t[i]) == 0)
            return *out = 1, 0;
        if (strcasecmp(s, f[i]) == 0)
            return *out = 0, 0;
    }
    return -1;
}

/* The form conf/berth.yaml uses: the largest unit that divides the value, so that it parses back to itself. */
static const char *format_size(uint64_t v, char *buf, size_t len)
{
    static const char *const names[] = {"TiB", "GiB", "MiB", "KiB"};
    for (int i = 0; i < 4 && v != 0; ++i) {
        uint64_t m = 1ull << (10 * (4 - i));
        if (v % m == 0) {
            snprintf(buf, len, "%" PRIu64 "%s", v / m, names[i]);
            return buf;
        }
    }
    snprintf(buf, len, "%" PRIu64, v);
    return buf;
}

static const char *format_duration(uint64_t ms, char *buf, size_t len)
{
    static const struct unit units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {NULL, 0}};
    for (const struct unit *u = units; u->name != NULL && ms != 0; ++u) {
        if (ms % u->mult == 0) {
            snprintf(buf, len, "%" PRIu64 "%s", ms / u->mult, u->name);
            return buf;
        }
    }
    snprintf(buf, len, "%" PRIu64 "ms", ms);
    return buf;
}

static const char *format_value(const config_t *cfg, const struct config_key *k, char *buf, size_t len)
{
    switch (k->type) {
    case CONFIG_STRING: {
        const char *s = *FIELD(cfg, k, char *const);
        if (s != NULL && strstr(k->key, "password") != NULL)
            return "(set)"; /* never print a secret */
        return s == NULL ? "~" : *s == '\0' ? "\"\"" : s;
    }
    case CONFIG_SIZE:
        return format_size(*FIELD(cfg, k, const uint64_t), buf, len);
    case CONFIG_DURATION:
        return format_duration(*FIELD(cfg, k, const uint64_t), buf, len);
    case CONFIG_UINT:
        snprintf(buf, len, "%u", *FIELD(cfg, k, const unsigned));
        return buf;
    case CONFIG_BOOL:
        return *FIELD(cfg, k, const int) ? "true" : "false";
    }
    return "?";
}

/* ---- keys ---- */

static void env_name(const struct config_key *k, char *buf, size_t len)
{
    size_t i = snprintf(buf, len, "BERTH_");
    for (const char *p = k->key; *p != '\0' && i + 1 < len; ++p)
        buf[i++] = *p == '.' ? '_' : toupper((unsigned char)*p);
    buf[i] = '\0';
}

static const struct config_key *find_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; ++i)
        if (strcmp(keys[i].key, name) == 0)
            return &keys[i];
    return NULL;
}

/* A section is a proper dotted prefix of some key: "http", "http.tls". */
static int is_section(const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < NKEYS; ++i)
        if (strncmp(keys[i].key, name, len) == 0 && keys[i].key[len] == '.')
            return 1;
    return 0;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[64];
    if (la >= 64 || lb >= 64)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; ++j)
        row[j] = j;
    for (size_t i = 1; i <= la; ++i) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; ++j) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* Suggest a known key or section for an unknown one: the same name under its section ("addr" -> "http.addr",
 * "tls.key" -> "http.tls.key"), else the closest by a few typos. Writes into buf, returns 0 if found. */
static int suggest(const char *name, char *buf, size_t len)
{
    size_t nlen = strlen(name), best = 2 + nlen / 4; /* up to 1 typo in a short name, 3 in "http.adress" */
    int found = 0;
    for (size_t i = 0; i < NKEYS; ++i) {
        /* every dotted prefix of the key, then the key itself */
        for (const char *end = strchr(keys[i].key, '.');; end = strchr(end + 1, '.')) {
            size_t clen = end != NULL ? (size_t)(end - keys[i].key) : strlen(keys[i].key);
            char cand[128];
            if (clen >= sizeof(cand))
                break;
            memcpy(cand, keys[i].key, clen);
            cand[clen] = '\0';
            if (clen > nlen && cand[clen - nlen - 1] == '.' && strcmp(cand + clen - nlen, name) == 0) {
                snprintf(buf, len, "%s", cand);
                return 0;
            }
            size_t d = edit_distance(name, cand);
            if (d < best) {
                best = d;
                snprintf(buf, len, "%s", cand);
                found = 1;
            }
            if (end == NULL)
                break;
        }
    }
    return found ? 0 : -1;
}

/* ---- loading ---- */

struct loader {
    config_t *cfg;
    const char *path;
    FILE *fp;
    char *err;
    unsigned line[NKEYS]; /* where the file set each key, to report duplicates */
};

/* Records the first error only, so that what the user reads is what went wrong first. */
__attribute__((format(printf, 2, 3))) static int fail(struct loader *ld, const char *fmt, ...)
{
    va_list ap;
    if (ld->err == NULL) {
        va_start(ap, fmt);
        if (vasprintf(&ld->err, fmt, ap) < 0)
            ld->err = NULL;
        va_end(ap);
        if (ld->err == NULL)
            ld->err = strdup("config: out of memory");
    }
    return -1;
}

/* Set key `k` from text `s` found at `where` ("file:line" or the variable name); s == NULL is YAML null. */
static int set_value(struct loader *ld, const struct config_key *k, const char *s, const char *where)
{
    uint64_t v = 0;

    if (s == NULL && !(k->type == CONFIG_STRING && k->defval == NULL))
        return fail(ld, "%s: %s: a value is required", where, k->key);

    switch (k->type) {
    case CONFIG_STRING: {
        char **field = FIELD(ld->cfg, k, char *), *copy = NULL;
        /* for an optional path, empty means "none": lets BERTH_HTTP_TLS_CERTIFICATE= turn off TLS set by the file */
        if (s != NULL && *s == '\0' && k->defval == NULL)
            s = NULL;
        if (s != NULL) {
            const char *problem;
            if (k->check != NULL && (problem = k->check(s)) != NULL)
                return fail(ld, "%s: %s: invalid value \"%s\" (%s)", where, k->key, s, problem);
            if ((copy = strdup(s)) == NULL)
                return fail(ld, "config: out of memory");
        }
        free(*field);
        *field = copy;
        return 0;
    }
    case CONFIG_BOOL:
        if (parse_bool(s, FIELD(ld->cfg, k, int)) != 0)
            return fail(ld, "%s: %s: invalid boolean \"%s\" (true or false)", where, k->key, s);
        return 0;
    case CONFIG_SIZE:
        if (config_parse_size(s, &v) != 0)
            return fail(ld,
                        "%s: %s: invalid size \"%s\" (bytes, or a number with B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)",
                        where, k->key, s);
        break;
    case CONFIG_DURATION:
        if (config_parse_duration_ms(s, &v) != 0)
            return fail(ld, "%s: %s: invalid duration \"%s\" (seconds, or a number with ms, s, m, h, d)", where, k->key,
                        s);
        break;
    case CONFIG_UINT:
        if (parse_digits(s, &v) == NULL || s[strspn(s, "0123456789")] != '\0' || v > UINT_MAX)
            return fail(ld, "%s: %s: invalid number \"%s\"", where, k->key, s);
        break;
    }

    if (v < k->min || (k->max != 0 && v > k->max)) {
        char lo[32], hi[32];
        const char *(*fmt)(uint64_t, char *, size_t) = k->type == CONFIG_SIZE       ? format_size
                                                       : k->type == CONFIG_DURATION ? format_duration
                                                                                    : NULL;
        if (fmt == NULL) {
            snprintf(lo, sizeof(lo), "%" PRIu64, k->min);
            snprintf(hi, sizeof(hi), "%" PRIu64, k->max);
        } else {
            fmt(k->min, lo, sizeof(lo));
            fmt(k->max, hi, sizeof(hi));
        }
        if (k->max != 0)
            return fail(ld, "%s: %s: \"%s\" is out of range (%s to %s)", where, k->key, s, lo, hi);
        return fail(ld, "%s: %s: \"%s\" is below the minimum (%s)", where, k->key, s, lo);
    }
    if (k->type == CONFIG_UINT)
        *FIELD(ld->cfg, k, unsigned) = (unsigned)v;
    else
        *FIELD(ld->cfg, k, uint64_t) = v;
    return 0;
}

static int next_event(struct loader *ld, yaml_parser_t *parser, yaml_event_t *ev)
{
    int saved_errno;
    errno = 0;
    if (yaml_parser_parse(parser, ev))
        return 0;
    saved_errno = errno;
    if (parser->error == YAML_READER_ERROR && ld->fp != NULL && ferror(ld->fp)) /* e.g. a directory */
        return fail(ld, "%s: %s", ld->path, strerror(saved_errno != 0 ? saved_errno : EIO));
    return fail(ld, "%s:%zu: YAML syntax error: %s%s%s", ld->path, parser->problem_mark.line + 1,
                parser->problem != NULL ? parser->problem : "malformed input", parser->context != NULL ? " " : "",
                parser->context != NULL ? parser->context : "");
}

/* Plain (unquoted) empty, ~ and null are YAML's null; quoted "" is an empty string. */
static int is_null(const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    return *v == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
           strcmp(v, "NULL") == 0;
}

/* "\0" in a double-quoted scalar would silently cut the C string short */
static int has_nul(const yaml_event_t *ev)
{
    return strlen((const char *)ev->data.scalar.value) != ev->data.scalar.length;
}

static int unknown_key(struct loader *ld, size_t line, const char *name)
{
    char hint[128];
    if (suggest(name, hint, sizeof(hint)) == 0)
        return fail(ld, "%s:%zu: unknown key \"%s\" (did you mean \"%s\"?)", ld->path, line, name, hint);
    return fail(ld, "%s:%zu: unknown key \"%s\"", ld->path, line, name);
}

static int parse_value(struct loader *ld, yaml_parser_t *parser, const char *name, size_t line);

/* The events of a mapping after its MAPPING_START; keys are joined to `prefix` with '.'. */
static int parse_mapping(struct loader *ld, yaml_parser_t *parser, const char *prefix)
{
    for (;;) {
        yaml_event_t ev;
        char *name;
        int r;
        if (next_event(ld, parser, &ev) != 0)
            return -1;
        if (ev.type != YAML_SCALAR_EVENT || has_nul(&ev)) {
            r = ev.type == YAML_MAPPING_END_EVENT
                    ? 0
                    : fail(ld, "%s:%zu: keys must be plain names%s", ld->path, ev.start_mark.line + 1,
                           ev.type == YAML_SCALAR_EVENT ? " (NUL in key)" : "");
            yaml_event_delete(&ev);
            return r;
        }
        r = asprintf(&name, "%s%s%s", prefix, *prefix ? "." : "", (const char *)ev.data.scalar.value);
        size_t line = ev.start_mark.line + 1;
        yaml_event_delete(&ev);
        if (r < 0)
            return fail(ld, "config: out of memory");
        r = parse_value(ld, parser, name, line);
        free(name);
        if (r != 0)
            return -1;
    }
}

/* ---- the mirrors list ---- */

/* Set one key of a mirror from the scalar `v` (NULL: YAML null). */
static int set_mirror_key(struct loader *ld, config_mirror_t *mr, const char *key, const char *v, size_t line)
{
    char **str = strcmp(key, "prefix") == 0     ? &mr->prefix
                 : strcmp(key, "upstream") == 0 ? &mr->upstream
                 : strcmp(key, "ns") == 0       ? &mr->ns
                 : strcmp(key, "username") == 0 ? &mr->username
                 : strcmp(key, "password") == 0 ? &mr->password
                                                : NULL;
    if (str != NULL) {
        if (v == NULL)
            v = "";
        if (str == &mr->prefix && *v != '\0' && !name_valid(v, strlen(v)))
            return fail(ld, "%s:%zu: mirrors: prefix \"%s\" is not a repository name (or \"\" for every name)",
                        ld->path, line, v);
        if (str == &mr->upstream && strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
            return fail(ld, "%s:%zu: mirrors: upstream \"%s\" must be an http:// or https:// URL", ld->path, line, v);
        if (str == &mr->ns && (*v == '\0' || strpbrk(v, "/ ?&#") != NULL))
            return fail(ld, "%s:%zu: mirrors: ns \"%s\" must be a registry host such as docker.io", ld->path, line, v);
        free(*str);
        if ((*str = strdup(v)) == NULL)
            return fail(ld, "config: out of memory");
        if (str == &mr->upstream)
            for (size_t n = strlen(*str); n > 0 && (*str)[n - 1] == '/'; --n)
                (*str)[n - 1] = '\0';
        return 0;
    }
    if (strcmp(key, "tag_ttl") == 0 || strcmp(key, "timeout") == 0) {
        uint64_t *ms = key[0] == 't' && key[1] == 'a' ? &mr->tag_ttl_ms : &mr->timeout_ms;
        if (v == NULL || config_parse_duration_ms(v, ms) != 0 || (ms == &mr->timeout_ms && *ms < 1000))
            return fail(ld, "%s:%zu: mirrors: %s: invalid duration \"%s\"%s", ld->path, line, key, v ? v : "",
                        ms == &mr->timeout_ms ? " (at least 1s)" : "");
        return 0;
    }
    if (strcmp(key, "max_size") == 0) {
        if (v == NULL || config_parse_size(v, &mr->max_size) != 0)
            return fail(ld, "%s:%zu: mirrors: max_size: invalid size \"%s\" (such as 50GiB; 0 for no limit)", ld->path,
                        line, v ? v : "");
        return 0;
    }
    if (strcmp(key, "max_age") == 0) {
        if (v == NULL || config_parse_duration_ms(v, &mr->max_age_ms) != 0)
            return fail(ld, "%s:%zu: mirrors: max_age: invalid duration \"%s\" (such as 30d; 0 for none)", ld->path,
                        line, v ? v : "");
        return 0;
    }
    if (strcmp(key, "library") == 0) {
        if (v == NULL || parse_bool(v, &mr->library) != 0)
            return fail(ld, "%s:%zu: mirrors: library: invalid boolean \"%s\" (true or false)", ld->path, line,
                        v ? v : "");
        return 0;
    }
    return fail(ld,
                "%s:%zu: mirrors: unknown key \"%s\" (prefix, upstream, ns, username, password, tag_ttl, timeout, "
                "library, max_size, max_age)",
                ld->path, line, key);
}

/* The upstream's host[:port], the default ns: Docker Hub's API host is registry-1.docker.io, its name docker.io. */
static char *upstream_host(const char *url)
{
    const char *h = strstr(url, "://") + 3;
    size_t n = strcspn(h, "/");
    if ((n == 20 && strncmp(h, "registry-1.docker.io", n) == 0) || (n == 16 && strncmp(h, "index.docker.io", n) == 0))
        return strdup("docker.io");
    return strndup(h, n);
}

/* One list item: a mapping of mirror keys (after its MAPPING_START). */
static int parse_mirror(struct loader *ld, yaml_parser_t *parser, config_mirror_t *mr, size_t item_line)
{
    *mr = (config_mirror_t){.tag_ttl_ms = 5 * 60 * 1000, .timeout_ms = 30 * 1000, .library = -1};
    for (;;) {
        yaml_event_t k, v;
        if (next_event(ld, parser, &k) != 0)
            return -1;
        if (k.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&k);
            break;
        }
        size_t line = k.start_mark.line + 1;
        if (k.type != YAML_SCALAR_EVENT || has_nul(&k)) {
            yaml_event_delete(&k);
            return fail(ld, "%s:%zu: mirrors: keys must be plain names", ld->path, line);
        }
        if (next_event(ld, parser, &v) != 0) {
            yaml_event_delete(&k);
            return -1;
        }
        int r =
            v.type != YAML_SCALAR_EVENT || has_nul(&v)
                ? fail(ld, "%s:%zu: mirrors: %s: expected a value", ld->path, line, (const char *)k.data.scalar.value)
                : set_mirror_key(ld, mr, (const char *)k.data.scalar.value,
                                 is_null(&v) ? NULL : (const char *)v.data.scalar.value, line);
        yaml_event_delete(&k);
        yaml_event_delete(&v);
        if (r != 0)
            return -1;
    }
    if (mr->upstream == NULL || *mr->upstream == '\0')
        return fail(ld, "%s:%zu: mirrors: upstream is required", ld->path, item_line);
    if (mr->prefix == NULL && (mr->prefix = strdup("")) == NULL)
        return fail(ld, "config: out of memory");
    if ((mr->ns == NULL || *mr->ns == '\0') && (free(mr->ns), mr->ns = upstream_host(mr->upstream)) == NULL)
        return fail(ld, "config: out of memory");
    if (mr->library < 0)
        mr->library = strcmp(mr->ns, "docker.io") == 0;
    for (size_t i = 0; i < ld->cfg->nmirrors; ++i) {
        const config_mirror_t *o = &ld->cfg->mirrors[i];
        if (strcmp(o->prefix, mr->prefix) == 0 || strcmp(o->ns, mr->ns) == 0)
            return fail(ld, "%s:%zu: mirrors: two mirrors with the same %s \"%s\"", ld->path, item_line,
                        strcmp(o->prefix, mr->prefix) == 0 ? "prefix" : "ns",
                        strcmp(o->prefix, mr->prefix) == 0 ? mr->prefix : mr->ns);
    }
    return 0;
}

static void config_mirror_dispose(config_mirror_t *mr)
{
    free(mr->prefix);
    free(mr->upstream);
    free(mr->ns);
    free(mr->username);
    if (mr->password != NULL)
        explicit_bzero(mr->password, strlen(mr->password));
    free(mr->password);
}

/* A block that is a list of mappings (or null for none), each handed to `item` with the line it starts on; `list` and
 * `each` are the errors for something else than a list and than a mapping in it. */
static int parse_mapping_list(struct loader *ld, yaml_parser_t *parser, size_t line, const char *list, const char *each,
                              int (*item)(struct loader *ld, yaml_parser_t *parser, void *ctx, size_t item_line),
                              void *ctx)
{
    yaml_event_t ev;
    if (next_event(ld, parser, &ev) != 0)
        return -1;
    int type = ev.type, null = type == YAML_SCALAR_EVENT && is_null(&ev);
    yaml_event_delete(&ev);
    if (null)
        return 0;
    if (type != YAML_SEQUENCE_START_EVENT)
        return fail(ld, "%s:%zu: %s", ld->path, line, list);
    for (;;) {
        if (next_event(ld, parser, &ev) != 0)
            return -1;
        type = ev.type;
        size_t item_line = ev.start_mark.line + 1;
        yaml_event_delete(&ev);
        if (type == YAML_SEQUENCE_END_EVENT)
            return 0;
        if (type != YAML_MAPPING_START_EVENT)
            return fail(ld, "%s:%zu: %s", ld->path, item_line, each);
        if (item(ld, parser, ctx, item_line) != 0)
            return -1;
    }
}

static int mirror_item(struct loader *ld, yaml_parser_t *parser, void *ctx, size_t item_line)
{
    (void)ctx;
    config_mirror_t mr, *grown = realloc(ld->cfg->mirrors, (ld->cfg->nmirrors + 1) * sizeof(mr));
    if (grown == NULL)
        return fail(ld, "config: out of memory");
    ld->cfg->mirrors = grown;
    if (parse_mirror(ld, parser, &mr, item_line) != 0) {
        config_mirror_dispose(&mr);
        return -1;
    }
    ld->cfg->mirrors[ld->cfg->nmirrors++] = mr;
    return 0;
}

/* "mirrors:" followed by a list of mappings (or null for none). */
static int parse_mirrors(struct loader *ld, yaml_parser_t *parser, size_t line)
{
    if (ld->cfg->nmirrors != 0)
        return fail(ld, "%s:%zu: mirrors: set twice", ld->path, line);
    return parse_mapping_list(ld, parser, line, "mirrors: expected a list of mirrors",
                              "mirrors: each mirror is a mapping (prefix, upstream, ...)", mirror_item, NULL);
}

/* ---- the lifecycle rules: "retention" and "immutable_tags" ---- */

int config_repo_pattern_valid(const char *p)
{
    size_t n = p != NULL ? strlen(p) : 0;
    if (n == 1 && p[0] == '*')
        return 1;
    if (n > 2 && p[n - 2] == '/' && p[n - 1] == '*')
        n -= 2;
    return n > 0 && name_valid(p, n);
}

/* A rule's value: a string that must be a repository pattern (`pattern`) or compile as a PCRE2 pattern. */
static int set_rule_string(struct loader *ld, const char *list, const char *key, const char *v, int pattern, char **out,
                           size_t line)
{
    if (v == NULL || *v == '\0')
        return fail(ld, "%s:%zu: %s: %s: expected a value", ld->path, line, list, key);
    if (pattern && !config_repo_pattern_valid(v))
        return fail(ld, "%s:%zu: %s: %s: \"%s\" is not a repository name, a name followed by /*, or *", ld->path, line,
                    list, key, v);
    if (!pattern) {
        int code;
        PCRE2_SIZE at;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)v, PCRE2_ZERO_TERMINATED, 0, &code, &at, NULL);
        if (re == NULL) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(code, msg, sizeof(msg));
            return fail(ld, "%s:%zu: %s: %s: \"%s\" is not a valid pattern: %s at offset %zu", ld->path, line, list,
                        key, v, (const char *)msg, (size_t)at);
        }
        pcre2_code_free(re);
    }
    free(*out);
    if ((*out = strdup(v)) == NULL)
        return fail(ld, "config: out of memory");
    return 0;
}

static int retention_key(struct loader *ld, void *item, const char *key, const char *v, size_t line)
{
    config_retention_t *r = item;
    if (key == NULL) {
        if (r->repositories == NULL)
            return fail(ld, "%s:%zu: retention: repositories is required", ld->path, line);
        if (r->keep_last < 0 && r->keep_within_ms == 0 && r->keep_tags == NULL)
            return fail(ld, "%s:%zu: retention: a rule keeps something: set keep_last, keep_within or keep_tags",
                        ld->path, line);
        return 0;
    }
    if (strcmp(key, "repositories") == 0 || strcmp(key, "tags") == 0 || strcmp(key, "keep_tags") == 0)
        return set_rule_string(ld, "retention", key, v, key[0] == 'r',
                               key[0] == 'r'   ? &r->repositories
                               : key[0] == 't' ? &r->tags
                                               : &r->keep_tags,
                               line);
    if (strcmp(key, "keep_last") == 0) {
        char *end;
        errno = 0;
        long n = v != NULL ? strtol(v, &end, 10) : -1;
        if (v == NULL || *v == '\0' || *end != '\0' || errno != 0 || n < 0 || n > 1000000)
            return fail(ld, "%s:%zu: retention: keep_last: \"%s\" is not a count (0 to 1000000)", ld->path, line,
                        v ? v : "");
        r->keep_last = n;
        return 0;
    }
    if (strcmp(key, "keep_within") == 0) {
        if (v == NULL || config_parse_duration_ms(v, &r->keep_within_ms) != 0 || r->keep_within_ms == 0)
            return fail(ld, "%s:%zu: retention: keep_within: invalid duration \"%s\"", ld->path, line, v ? v : "");
        return 0;
    }
    return fail(ld, "%s:%zu: retention: unknown key \"%s\" (repositories, tags, keep_last, keep_within, keep_tags)",
                ld->path, line, key);
}

static void retention_dispose(void *item)
{
    config_retention_t *r = item;
    free(r->repositories);
    free(r->tags);
    free(r->keep_tags);
}

static int immutable_key(struct loader *ld, void *item, const char *key, const char *v, size_t line)
{
    config_immutable_t *r = item;
    if (key == NULL)
        return r->repositories == NULL ? fail(ld, "%s:%zu: immutable_tags: repositories is required", ld->path, line)
                                       : 0;
    if (strcmp(key, "repositories") == 0 || strcmp(key, "tags") == 0)
        return set_rule_string(ld, "immutable_tags", key, v, key[0] == 'r', key[0] == 'r' ? &r->repositories : &r->tags,
                               line);
    return fail(ld, "%s:%zu: immutable_tags: unknown key \"%s\" (repositories, tags)", ld->path, line, key);
}

static void immutable_dispose(void *item)
{
    config_immutable_t *r = item;
    free(r->repositories);
    free(r->tags);
}

typedef struct {
    const char *name;
    size_t size;  /* of an item */
    size_t array; /* offset of the array in config_t */
    size_t count; /* offset of its count */
    void (*init)(void *item);
    int (*key)(struct loader *ld, void *item, const char *key, const char *v, size_t line); /* key NULL: finish */
    void (*dispose)(void *item);
    int lists; /* a key may take a list of scalars, handed over joined by newlines */
} rule_list_t;

/* ---- the replication rules ---- */

int config_glob_match(const char *p, const char *s, size_t len)
{
    if (*p == '\0')
        return len == 0;
    if (p[0] == '*' && p[1] == '*') {
        for (size_t i = 0; i <= len; ++i)
            if (config_glob_match(p + 2, s + i, len - i))
                return 1;
        return 0;
    }
    if (p[0] == '*') {
        for (size_t i = 0; i <= len; ++i) {
            if (config_glob_match(p + 1, s + i, len - i))
                return 1;
            if (i < len && s[i] == '/')
                return 0;
        }
        return 0;
    }
    if (len == 0)
        return 0;
    if (p[0] == '?')
        return s[0] != '/' && config_glob_match(p + 1, s + 1, len - 1);
    return p[0] == s[0] && config_glob_match(p + 1, s + 1, len - 1);
}

/* A glob of names: the characters of names and tags, '/', and the wildcards. */
static int glob_valid(const char *v, size_t max)
{
    size_t n = strlen(v);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; ++i)
        if (!isalnum((unsigned char)v[i]) && strchr("._-/*?", v[i]) == NULL)
            return 0;
    return 1;
}

static int set_rule_copy(struct loader *ld, char **out, const char *v)
{
    free(*out);
    if ((*out = strdup(v != NULL ? v : "")) == NULL)
        return fail(ld, "config: out of memory");
    return 0;
}

static int replication_key(struct loader *ld, void *item, const char *key, const char *v, size_t line)
{
    config_replication_t *r = item;
    if (key == NULL) {
        if (r->name == NULL)
            return fail(ld, "%s:%zu: replication: name is required", ld->path, line);
        if (r->remote == NULL)
            return fail(ld, "%s:%zu: replication: %s: remote is required", ld->path, line, r->name);
        if (r->nrepositories == 0)
            return fail(ld, "%s:%zu: replication: %s: repositories is required (such as team/* or **)", ld->path, line,
                        r->name);
        if (r->pull && r->on_push)
            return fail(ld, "%s:%zu: replication: %s: on_push is for push rules; a pull rule runs on its schedule",
                        ld->path, line, r->name);
        if (r->password != NULL && r->password_file != NULL)
            return fail(ld, "%s:%zu: replication: %s: password and password_file are both set", ld->path, line,
                        r->name);
        for (size_t i = 0; i < ld->cfg->nreplication; ++i) {
            const config_replication_t *o = &ld->cfg->replication[i];
            if (o != r && o->name != NULL && strcmp(o->name, r->name) == 0)
                return fail(ld, "%s:%zu: replication: two rules named \"%s\"", ld->path, line, r->name);
        }
        return 0;
    }
    if (strcmp(key, "repositories") == 0) {
        /* a list arrives as its items joined by newlines */
        for (const char *p = v; p != NULL && *p != '\0';) {
            size_t n = strcspn(p, "\n");
            char *g = strndup(p, n);
            if (!glob_valid(g, NAME_MAX_LEN)) {
                int r2 =
                    fail(ld, "%s:%zu: replication: repositories: \"%s\" is not a pattern of names", ld->path, line, g);
                free(g);
                return r2;
            }
            char **grown = realloc(r->repositories, (r->nrepositories + 1) * sizeof(*grown));
            if (grown == NULL) {
                free(g);
                return fail(ld, "config: out of memory");
            }
            r->repositories = grown;
            r->repositories[r->nrepositories++] = g;
            p += n;
            if (*p == '\n')
                ++p;
        }
        if (r->nrepositories == 0)
            return fail(ld, "%s:%zu: replication: repositories: expected a pattern or a list of them", ld->path, line);
        return 0;
    }
    if (v != NULL && strchr(v, '\n') != NULL)
        return fail(ld, "%s:%zu: replication: %s: expected a value, not a list", ld->path, line, key);
    if (strcmp(key, "name") == 0) {
        if (v == NULL || !glob_valid(v, 64) || strpbrk(v, "*?/") != NULL)
            return fail(ld, "%s:%zu: replication: name: \"%s\" is not a name (letters, digits, . _ -)", ld->path, line,
                        v ? v : "");
        return set_rule_copy(ld, &r->name, v);
    }
    if (strcmp(key, "direction") == 0) {
        if (v == NULL || (strcmp(v, "push") != 0 && strcmp(v, "pull") != 0))
            return fail(ld, "%s:%zu: replication: direction: \"%s\" is neither push nor pull", ld->path, line,
                        v ? v : "");
        r->pull = v[1] == 'u' && v[2] == 'l';
        return 0;
    }
    if (strcmp(key, "remote") == 0) {
        size_t n = v != NULL ? strlen(v) : 0;
        if (n == 0 || (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) || v[n - 1] == '/' ||
            strpbrk(v + 8, "/?#") != NULL)
            return fail(ld, "%s:%zu: replication: remote \"%s\" must be http(s)://host[:port], without a path",
                        ld->path, line, v ? v : "");
        return set_rule_copy(ld, &r->remote, v);
    }
    if (strcmp(key, "username") == 0)
        return set_rule_copy(ld, &r->username, v);
    if (strcmp(key, "password") == 0)
        return set_rule_copy(ld, &r->password, v);
    if (strcmp(key, "password_file") == 0 || strcmp(key, "ca_file") == 0) {
        if (v == NULL || *v == '\0')
            return fail(ld, "%s:%zu: replication: %s: expected a file", ld->path, line, key);
        return set_rule_copy(ld, key[0] == 'p' ? &r->password_file : &r->ca_file, v);
    }
    if (strcmp(key, "tags") == 0) {
        if (v == NULL || !glob_valid(v, TAG_MAX_LEN) || strchr(v, '/') != NULL)
            return fail(ld, "%s:%zu: replication: tags: \"%s\" is not a pattern of tags", ld->path, line, v ? v : "");
        return set_rule_copy(ld, &r->tags, v);
    }
    if (strcmp(key, "local_prefix") == 0 || strcmp(key, "remote_prefix") == 0) {
        /* "" or a name followed by "/" */
        size_t n = v != NULL ? strlen(v) : 0;
        if (n > 0 && (n < 2 || v[n - 1] != '/' || !name_valid(v, n - 1)))
            return fail(ld, "%s:%zu: replication: %s: \"%s\" must be \"\" or a name followed by /", ld->path, line, key,
                        v);
        return set_rule_copy(ld, key[0] == 'l' ? &r->local_prefix : &r->remote_prefix, v);
    }
    if (strcmp(key, "schedule") == 0 || strcmp(key, "timeout") == 0) {
        uint64_t *out = key[0] == 's' ? &r->schedule_ms : &r->timeout_ms;
        if (v == NULL || config_parse_duration_ms(v, out) != 0 || (key[0] == 't' && *out == 0))
            return fail(ld, "%s:%zu: replication: %s: invalid duration \"%s\"", ld->path, line, key, v ? v : "");
        if (key[0] == 's' && *out != 0 && *out < 1000)
            return fail(ld, "%s:%zu: replication: schedule: at least 1s (or 0 for none)", ld->path, line);
        return 0;
    }
    if (strcmp(key, "on_push") == 0 || strcmp(key, "tls_verify") == 0) {
        int b = v == NULL ? -1 : strcmp(v, "true") == 0 ? 1 : strcmp(v, "false") == 0 ? 0 : -1;
        if (b < 0)
            return fail(ld, "%s:%zu: replication: %s: invalid boolean \"%s\" (true or false)", ld->path, line, key,
                        v ? v : "");
        *(key[0] == 'o' ? &r->on_push : &r->tls_verify) = b;
        return 0;
    }
    return fail(ld,
                "%s:%zu: replication: unknown key \"%s\" (name, direction, remote, username, password, password_file, "
                "repositories, tags, local_prefix, remote_prefix, schedule, on_push, tls_verify, ca_file, timeout)",
                ld->path, line, key);
}

static void replication_dispose(void *item)
{
    config_replication_t *r = item;
    free(r->name);
    free(r->remote);
    free(r->username);
    if (r->password != NULL)
        explicit_bzero(r->password, strlen(r->password));
    free(r->password);
    free(r->password_file);
    for (size_t i = 0; i < r->nrepositories; ++i)
        free(r->repositories[i]);
    free(r->repositories);
    free(r->tags);
    free(r->local_prefix);
    free(r->remote_prefix);
    free(r->ca_file);
}

static void replication_init(void *item)
{
    *(config_replication_t *)item = (config_replication_t){.tls_verify = 1, .timeout_ms = 30 * 1000};
}

static void retention_init(void *item)
{
    *(config_retention_t *)item = (config_retention_t){.keep_last = -1};
}

static void immutable_init(void *item)
{
    *(config_immutable_t *)item = (config_immutable_t){0};
}

static const rule_list_t rule_lists[] = {
    {"retention", sizeof(config_retention_t), offsetof(config_t, retention), offsetof(config_t, nretention),
     retention_init, retention_key, retention_dispose, 0},
    {"immutable_tags", sizeof(config_immutable_t), offsetof(config_t, immutable), offsetof(config_t, nimmutable),
     immutable_init, immutable_key, immutable_dispose, 0},
    {"replication", sizeof(config_replication_t), offsetof(config_t, replication), offsetof(config_t, nreplication),
     replication_init, replication_key, replication_dispose, 1},
};

static const rule_list_t *rule_list(const char *name)
{
    for (size_t i = 0; i < sizeof(rule_lists) / sizeof(rule_lists[0]); ++i)
        if (strcmp(rule_lists[i].name, name) == 0)
            return &rule_lists[i];
    return NULL;
}

/* A list of scalars (after its SEQUENCE_START), into one malloc'd string of its items joined by newlines. */
static int join_list(struct loader *ld, yaml_parser_t *parser, char **out, size_t line)
{
    size_t len = 0;
    *out = strdup("");
    for (;;) {
        yaml_event_t ev;
        if (next_event(ld, parser, &ev) != 0)
            return -1;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        if (ev.type != YAML_SCALAR_EVENT || has_nul(&ev) || is_null(&ev) ||
            strchr((const char *)ev.data.scalar.value, '\n') != NULL) {
            yaml_event_delete(&ev);
            return fail(ld, "%s:%zu: expected a list of plain values", ld->path, line);
        }
        size_t n = strlen((const char *)ev.data.scalar.value);
        char *grown = realloc(*out, len + n + 2);
        if (grown == NULL) {
            yaml_event_delete(&ev);
            return fail(ld, "config: out of memory");
        }
        *out = grown;
        if (len > 0)
            grown[len++] = '\n';
        memcpy(grown + len, ev.data.scalar.value, n + 1);
        len += n;
        yaml_event_delete(&ev);
    }
}

/* One item of a rule list: a mapping of scalars. */
static int parse_rule(struct loader *ld, yaml_parser_t *parser, const rule_list_t *rl, void *item, size_t item_line)
{
    for (;;) {
        yaml_event_t k, v;
        if (next_event(ld, parser, &k) != 0)
            return -1;
        if (k.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&k);
            return rl->key(ld, item, NULL, NULL, item_line);
        }
        size_t line = k.start_mark.line + 1;
        if (k.type != YAML_SCALAR_EVENT || has_nul(&k)) {
            yaml_event_delete(&k);
            return fail(ld, "%s:%zu: %s: keys must be plain names", ld->path, line, rl->name);
        }
        if (next_event(ld, parser, &v) != 0) {
            yaml_event_delete(&k);
            return -1;
        }
        int r;
        if (v.type == YAML_SEQUENCE_START_EVENT && rl->lists) {
            char *joined = NULL;
            r = join_list(ld, parser, &joined, line);
            if (r == 0)
                r = rl->key(ld, item, (const char *)k.data.scalar.value, joined, line);
            free(joined);
        } else {
            r = v.type != YAML_SCALAR_EVENT || has_nul(&v)
                    ? fail(ld, "%s:%zu: %s: %s: expected a value", ld->path, line, rl->name,
                           (const char *)k.data.scalar.value)
                    : rl->key(ld, item, (const char *)k.data.scalar.value,
                              is_null(&v) ? NULL : (const char *)v.data.scalar.value, line);
        }
        yaml_event_delete(&k);
        yaml_event_delete(&v);
        if (r != 0)
            return -1;
    }
}

static int rule_item(struct loader *ld, yaml_parser_t *parser, void *ctx, size_t item_line)
{
    const rule_list_t *rl = ctx;
    char **array = (char **)((char *)ld->cfg + rl->array);
    size_t *count = (size_t *)((char *)ld->cfg + rl->count);
    char *grown = realloc(*array, (*count + 1) * rl->size);
    if (grown == NULL)
        return fail(ld, "config: out of memory");
    *array = grown;
    void *item = grown + *count * rl->size;
    rl->init(item);
    ++*count; /* disposed with the others whether or not it parses */
    return parse_rule(ld, parser, rl, item, item_line);
}

/* "retention:", "immutable_tags:" or "replication:" followed by a list of mappings (or null for none). */
static int parse_rules(struct loader *ld, yaml_parser_t *parser, const rule_list_t *rl, size_t line)
{
    if (*(size_t *)((char *)ld->cfg + rl->count) != 0)
        return fail(ld, "%s:%zu: %s: set twice", ld->path, line, rl->name);
    char list[64], each[96];
    snprintf(list, sizeof(list), "%s: expected a list of rules", rl->name);
    snprintf(each, sizeof(each), "%s: each rule is a mapping (repositories, ...)", rl->name);
    return parse_mapping_list(ld, parser, line, list, each, rule_item, (void *)rl);
}

static void rules_dispose(config_t *cfg)
{
    for (size_t l = 0; l < sizeof(rule_lists) / sizeof(rule_lists[0]); ++l) {
        const rule_list_t *rl = &rule_lists[l];
        char **array = (char **)((char *)cfg + rl->array);
        size_t *count = (size_t *)((char *)cfg + rl->count);
        for (size_t i = 0; i < *count; ++i)
            rl->dispose(*array + i * rl->size);
        free(*array);
        *array = NULL;
        *count = 0;
    }
}

/* ---- the webhook endpoints: "notifications: endpoints:" ---- */

static void strings_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; ++i)
        free(v[i]);
    free(v);
}

static int strings_add(struct loader *ld, char ***v, size_t *n, const char *s)
{
    char **grown = realloc(*v, (*n + 1) * sizeof(**v));
    if (grown == NULL || (grown[*n] = strdup(s)) == NULL) {
        if (grown != NULL)
            *v = grown;
        return fail(ld, "config: out of memory");
    }
    *v = grown;
    ++*n;
    return 0;
}

/* A value that is a scalar or a list of scalars (the event after the key); each passed to add(). Null: none. */
static int read_strings(struct loader *ld, yaml_parser_t *parser, const char *what, size_t line,
                        int (*add)(struct loader *ld, void *ctx, const char *s, size_t line), void *ctx)
{
    yaml_event_t ev;
    if (next_event(ld, parser, &ev) != 0)
        return -1;
    int r = 0;
    if (ev.type == YAML_SCALAR_EVENT) {
        r = has_nul(&ev)   ? fail(ld, "%s:%zu: %s: NUL in value", ld->path, line, what)
            : is_null(&ev) ? 0
                           : add(ld, ctx, (const char *)ev.data.scalar.value, line);
        yaml_event_delete(&ev);
        return r;
    }
    int list = ev.type == YAML_SEQUENCE_START_EVENT;
    yaml_event_delete(&ev);
    if (!list)
        return fail(ld, "%s:%zu: %s: expected a value or a list of values", ld->path, line, what);
    for (;;) {
        if (next_event(ld, parser, &ev) != 0)
            return -1;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        size_t l = ev.start_mark.line + 1;
        r = ev.type != YAML_SCALAR_EVENT || has_nul(&ev)
                ? fail(ld, "%s:%zu: %s: each item is a plain value", ld->path, l, what)
                : add(ld, ctx, (const char *)ev.data.scalar.value, l);
        yaml_event_delete(&ev);
        if (r != 0)
            return -1;
    }
}

typedef struct {
    config_endpoint_t *ep;
    const char *header; /* headers: the name the values belong to */
    unsigned *actions;  /* actions / ignore.actions: the bits to set */
} ep_ctx_t;

static int add_action(struct loader *ld, void *ctx, const char *s, size_t line)
{
    unsigned a = strcmp(s, "push") == 0     ? CONFIG_ACTION_PUSH
                 : strcmp(s, "pull") == 0   ? CONFIG_ACTION_PULL
                 : strcmp(s, "delete") == 0 ? CONFIG_ACTION_DELETE
                                            : 0;
    if (a == 0)
        return fail(ld, "%s:%zu: notifications: unknown action \"%s\" (push, pull, delete)", ld->path, line, s);
    *((ep_ctx_t *)ctx)->actions |= a;
    return 0;
}

static int add_type(struct loader *ld, void *ctx, const char *s, size_t line)
{
    config_endpoint_t *ep = ((ep_ctx_t *)ctx)->ep;
    if (*s == '\0' || strpbrk(s, " \t\r\n") != NULL)
        return fail(ld, "%s:%zu: notifications: \"%s\" is not a media type", ld->path, line, s);
    return strings_add(ld, &ep->ignored_types, &ep->nignored_types, s);
}

static int add_repository(struct loader *ld, void *ctx, const char *s, size_t line)
{
    config_endpoint_t *ep = ((ep_ctx_t *)ctx)->ep;
    if (!config_repo_pattern_valid(s))
        return fail(ld,
                    "%s:%zu: notifications: repositories: \"%s\" is not a repository name, a name followed by /*, "
                    "or *",
                    ld->path, line, s);
    return strings_add(ld, &ep->repositories, &ep->nrepositories, s);
}

static int add_header(struct loader *ld, void *ctx, const char *s, size_t line)
{
    ep_ctx_t *c = ctx;
    char *h;
    if (strpbrk(s, "\r\n") != NULL)
        return fail(ld, "%s:%zu: notifications: headers: %s: a value may not hold a line break", ld->path, line,
                    c->header);
    if (asprintf(&h, "%s: %s", c->header, s) < 0)
        return fail(ld, "config: out of memory");
    int r = strings_add(ld, &c->ep->headers, &c->ep->nheaders, h);
    explicit_bzero(h, strlen(h));
    free(h);
    return r;
}

/* A mapping value (the event after the key was read by the caller): name -> (value | list) pairs, each name given
 * to key(). */
static int read_mapping(struct loader *ld, yaml_parser_t *parser, const char *what, size_t line,
                        int (*key)(struct loader *ld, yaml_parser_t *parser, ep_ctx_t *c, const char *k, size_t line),
                        ep_ctx_t *c)
{
    yaml_event_t ev;
    if (next_event(ld, parser, &ev) != 0)
        return -1;
    int type = ev.type, null = type == YAML_SCALAR_EVENT && is_null(&ev);
    yaml_event_delete(&ev);
    if (null)
        return 0;
    if (type != YAML_MAPPING_START_EVENT)
        return fail(ld, "%s:%zu: %s: expected a mapping", ld->path, line, what);
    for (;;) {
        if (next_event(ld, parser, &ev) != 0)
            return -1;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        size_t l = ev.start_mark.line + 1;
        char *k = ev.type == YAML_SCALAR_EVENT && !has_nul(&ev) ? strdup((const char *)ev.data.scalar.value) : NULL;
        yaml_event_delete(&ev);
        if (k == NULL)
            return fail(ld, "%s:%zu: %s: keys must be plain names", ld->path, l, what);
        int r = key(ld, parser, c, k, l);
        free(k);
        if (r != 0)
            return -1;
    }
}

static int header_key(struct loader *ld, yaml_parser_t *parser, ep_ctx_t *c, const char *k, size_t line)
{
    for (const char *p = k; *p; ++p)
        if (!isalnum((unsigned char)*p) && strchr("!#$%&'*+-.^_`|~", *p) == NULL)
            return fail(ld, "%s:%zu: notifications: headers: \"%s\" is not a header name", ld->path, line, k);
    if (*k == '\0')
        return fail(ld, "%s:%zu: notifications: headers: empty header name", ld->path, line);
    c->header = k;
    return read_strings(ld, parser, "notifications: headers", line, add_header, c);
}

static int ignore_key(struct loader *ld, yaml_parser_t *parser, ep_ctx_t *c, const char *k, size_t line)
{
    if (strcmp(k, "mediatypes") == 0)
        return read_strings(ld, parser, "notifications: ignore: mediatypes", line, add_type, c);
    if (strcmp(k, "actions") == 0)
        return read_strings(ld, parser, "notifications: ignore: actions", line, add_action, c);
    return fail(ld, "%s:%zu: notifications: ignore: unknown key \"%s\" (mediatypes, actions)", ld->path, line, k);
}

/* One scalar key of an endpoint. */
static int endpoint_scalar(struct loader *ld, config_endpoint_t *ep, const char *k, const char *v, size_t line)
{
    if (strcmp(k, "name") == 0 || strcmp(k, "url") == 0) {
        char **field = k[0] == 'n' ? &ep->name : &ep->url;
        if (v == NULL || *v == '\0')
            return fail(ld, "%s:%zu: notifications: %s: expected a value", ld->path, line, k);
        if (field == &ep->name &&
            strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != strlen(v))
            return fail(ld, "%s:%zu: notifications: name \"%s\": letters, digits, '.', '_' and '-' only", ld->path,
                        line, v);
        if (field == &ep->url && ((strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) ||
                                  strpbrk(v, " \t\r\n") != NULL || strstr(v, "://")[3] == '\0'))
            return fail(ld, "%s:%zu: notifications: url \"%s\" must be an http:// or https:// URL", ld->path, line, v);
        free(*field);
        if ((*field = strdup(v)) == NULL)
            return fail(ld, "config: out of memory");
        return 0;
    }
    if (strcmp(k, "timeout") == 0 || strcmp(k, "backoff") == 0 || strcmp(k, "maxbackoff") == 0) {
        uint64_t *ms = k[0] == 't' ? &ep->timeout_ms : k[0] == 'b' ? &ep->backoff_ms : &ep->max_backoff_ms;
        if (v == NULL || config_parse_duration_ms(v, ms) != 0 || *ms < 100 || *ms > 3600 * 1000)
            return fail(ld, "%s:%zu: notifications: %s: invalid duration \"%s\" (100ms to 1h)", ld->path, line, k,
                        v ? v : "");
        return 0;
    }
    if (strcmp(k, "threshold") == 0) {
        uint64_t n;
        if (v == NULL || parse_digits(v, &n) == NULL || v[strspn(v, "0123456789")] != '\0' || n < 1 || n > 1000)
            return fail(ld, "%s:%zu: notifications: threshold: \"%s\" is not a count (1 to 1000)", ld->path, line,
                        v ? v : "");
        ep->threshold = (unsigned)n;
        return 0;
    }
    if (strcmp(k, "format") == 0) {
        if (v == NULL || (strcmp(v, "distribution") != 0 && strcmp(v, "cloudevents") != 0))
            return fail(ld, "%s:%zu: notifications: format: \"%s\" (distribution or cloudevents)", ld->path, line,
                        v ? v : "");
        ep->cloudevents = strcmp(v, "cloudevents") == 0;
        return 0;
    }
    if (strcmp(k, "disabled") == 0) {
        if (v == NULL || parse_bool(v, &ep->disabled) != 0)
            return fail(ld, "%s:%zu: notifications: disabled: invalid boolean \"%s\"", ld->path, line, v ? v : "");
        return 0;
    }
    return fail(
        ld,
        "%s:%zu: notifications: unknown key \"%s\" (name, url, headers, timeout, threshold, backoff, maxbackoff, "
        "ignoredmediatypes, ignore, actions, repositories, format, disabled)",
        ld->path, line, k);
}

static void config_endpoint_dispose(config_endpoint_t *ep)
{
    free(ep->name);
    free(ep->url);
    for (size_t i = 0; i < ep->nheaders; ++i)
        explicit_bzero(ep->headers[i], strlen(ep->headers[i]));
    strings_free(ep->headers, ep->nheaders);
    strings_free(ep->ignored_types, ep->nignored_types);
    strings_free(ep->repositories, ep->nrepositories);
}

static int parse_endpoint(struct loader *ld, yaml_parser_t *parser, config_endpoint_t *ep, size_t item_line)
{
    unsigned actions = 0, ignored = 0;
    int actions_set = 0;
    *ep = (config_endpoint_t){.timeout_ms = 5000, .threshold = 3, .backoff_ms = 1000, .max_backoff_ms = 60000};
    ep_ctx_t c = {ep, NULL, NULL};
    for (;;) {
        yaml_event_t k;
        if (next_event(ld, parser, &k) != 0)
            return -1;
        if (k.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&k);
            break;
        }
        size_t line = k.start_mark.line + 1;
        if (k.type != YAML_SCALAR_EVENT || has_nul(&k)) {
            yaml_event_delete(&k);
            return fail(ld, "%s:%zu: notifications: keys must be plain names", ld->path, line);
        }
        char key[32];
        snprintf(key, sizeof(key), "%s", (const char *)k.data.scalar.value);
        yaml_event_delete(&k);
        int r;
        if (strcmp(key, "headers") == 0) {
            r = read_mapping(ld, parser, "notifications: headers", line, header_key, &c);
        } else if (strcmp(key, "ignore") == 0) {
            c.actions = &ignored;
            r = read_mapping(ld, parser, "notifications: ignore", line, ignore_key, &c);
        } else if (strcmp(key, "ignoredmediatypes") == 0) {
            r = read_strings(ld, parser, "notifications: ignoredmediatypes", line, add_type, &c);
        } else if (strcmp(key, "actions") == 0) {
            c.actions = &actions;
            actions_set = 1;
            r = read_strings(ld, parser, "notifications: actions", line, add_action, &c);
        } else if (strcmp(key, "repositories") == 0) {
            r = read_strings(ld, parser, "notifications: repositories", line, add_repository, &c);
        } else {
            yaml_event_t v;
            if (next_event(ld, parser, &v) != 0)
                return -1;
            r = v.type != YAML_SCALAR_EVENT || has_nul(&v)
                    ? fail(ld, "%s:%zu: notifications: %s: expected a value", ld->path, line, key)
                    : endpoint_scalar(ld, ep, key, is_null(&v) ? NULL : (const char *)v.data.scalar.value, line);
            yaml_event_delete(&v);
        }
        if (r != 0)
            return -1;
    }
    if (ep->name == NULL || ep->url == NULL)
        return fail(ld, "%s:%zu: notifications: an endpoint needs a name and a url", ld->path, item_line);
    if (ep->max_backoff_ms < ep->backoff_ms)
        return fail(ld, "%s:%zu: notifications: %s: maxbackoff is below backoff", ld->path, item_line, ep->name);
    ep->actions = (actions_set ? actions : CONFIG_ACTION_PUSH | CONFIG_ACTION_DELETE) & ~ignored;
    for (size_t i = 0; i < ld->cfg->nendpoints; ++i)
        if (strcmp(ld->cfg->endpoints[i].name, ep->name) == 0)
            return fail(ld, "%s:%zu: notifications: two endpoints named \"%s\"", ld->path, item_line, ep->name);
    return 0;
}

static int endpoint_item(struct loader *ld, yaml_parser_t *parser, void *ctx, size_t item_line)
{
    (void)ctx;
    config_endpoint_t ep, *grown = realloc(ld->cfg->endpoints, (ld->cfg->nendpoints + 1) * sizeof(ep));
    if (grown == NULL)
        return fail(ld, "config: out of memory");
    ld->cfg->endpoints = grown;
    if (parse_endpoint(ld, parser, &ep, item_line) != 0) {
        config_endpoint_dispose(&ep);
        return -1;
    }
    ld->cfg->endpoints[ld->cfg->nendpoints++] = ep;
    return 0;
}

/* "endpoints:" under "notifications:": a list of mappings (or null for none). */
static int parse_endpoints(struct loader *ld, yaml_parser_t *parser, size_t line)
{
    if (ld->cfg->nendpoints != 0)
        return fail(ld, "%s:%zu: notifications: endpoints: set twice", ld->path, line);
    return parse_mapping_list(ld, parser, line, "notifications: endpoints: expected a list of endpoints",
                              "notifications: each endpoint is a mapping (name, url, ...)", endpoint_item, NULL);
}

static int parse_value(struct loader *ld, yaml_parser_t *parser, const char *name, size_t line)
{
    if (strcmp(name, "mirrors") == 0)
        return parse_mirrors(ld, parser, line);
    if (strcmp(name, "notifications.endpoints") == 0)
        return parse_endpoints(ld, parser, line);
    const rule_list_t *rl = rule_list(name);
    if (rl != NULL)
        return parse_rules(ld, parser, rl, line);
    const struct config_key *k = find_key(name);
    int section = k == NULL && is_section(name), ret = -1;
    yaml_event_t ev;

    if (next_event(ld, parser, &ev) != 0)
        return -1;
    if (k == NULL && !section) {
        unknown_key(ld, line, name);
        goto Exit;
    }
    switch (ev.type) {
    case YAML_SCALAR_EVENT:
        if (section) {
            /* "http:" with everything under it commented out */
            if (!is_null(&ev)) {
                fail(ld, "%s:%zu: %s: is a section, expected a mapping of its keys", ld->path, line, name);
                goto Exit;
            }
        } else {
            char where[PATH_MAX + 32];
            size_t i = k - keys;
            if (ld->line[i] != 0) {
                fail(ld, "%s:%zu: %s: set twice (first on line %u)", ld->path, line, name, ld->line[i]);
                goto Exit;
            }
            ld->line[i] = (unsigned)line;
            if (has_nul(&ev)) {
                fail(ld, "%s:%zu: %s: NUL in value", ld->path, line, name);
                goto Exit;
            }
            snprintf(where, sizeof(where), "%s:%zu", ld->path, line);
            if (set_value(ld, k, is_null(&ev) ? NULL : (const char *)ev.data.scalar.value, where) != 0)
                goto Exit;
        }
        break;
    case YAML_MAPPING_START_EVENT:
        if (!section) {
            fail(ld, "%s:%zu: %s: expected a value, not a mapping", ld->path, line, name);
            goto Exit;
        }
        yaml_event_delete(&ev);
        return parse_mapping(ld, parser, name);
    case YAML_SEQUENCE_START_EVENT:
        fail(ld, "%s:%zu: %s: expected %s, not a list", ld->path, line, name, section ? "a mapping" : "a value");
        goto Exit;
    default: /* an alias */
        fail(ld, "%s:%zu: %s: aliases are not supported", ld->path, line, name);
        goto Exit;
    }
    ret = 0;
Exit:
    yaml_event_delete(&ev);
    return ret;
}

static int load_file(struct loader *ld)
{
    yaml_parser_t parser;
    yaml_event_t ev = {0}; /* yaml_parser_parse zeroes it and yaml_event_delete re-zeroes it: deleting twice is safe */
    FILE *fp;
    int ret = -1;

    if ((ld->fp = fp = fopen(ld->path, "rb")) == NULL)
        return fail(ld, "%s: %s", ld->path, strerror(errno));
    if (!yaml_parser_initialize(&parser)) {
        fclose(fp);
        return fail(ld, "config: out of memory");
    }
    yaml_parser_set_input_file(&parser, fp);

    /* STREAM_START, then nothing (an empty file, or only comments) or one document holding a mapping */
    if (next_event(ld, &parser, &ev) != 0)
        goto Exit;
    yaml_event_delete(&ev);
    if (next_event(ld, &parser, &ev) != 0)
        goto Exit;
    if (ev.type == YAML_DOCUMENT_START_EVENT) {
        yaml_event_delete(&ev);
        if (next_event(ld, &parser, &ev) != 0)
            goto Exit;
        if (ev.type == YAML_MAPPING_START_EVENT) {
            yaml_event_delete(&ev);
            if (parse_mapping(ld, &parser, "") != 0)
                goto Exit;
        } else if (!(ev.type == YAML_SCALAR_EVENT && is_null(&ev))) { /* a bare "---" is an empty document */
            fail(ld, "%s:%zu: expected a mapping of keys at the top level", ld->path, ev.start_mark.line + 1);
            goto Exit;
        }
        yaml_event_delete(&ev);
        if (next_event(ld, &parser, &ev) != 0) /* DOCUMENT_END */
            goto Exit;
        yaml_event_delete(&ev);
        if (next_event(ld, &parser, &ev) != 0)
            goto Exit;
        if (ev.type != YAML_STREAM_END_EVENT) {
            fail(ld, "%s:%zu: only one YAML document is allowed", ld->path, ev.start_mark.line + 1);
            goto Exit;
        }
    }
    ret = 0;
Exit:
    yaml_event_delete(&ev);
    yaml_parser_delete(&parser);
    fclose(fp);
    ld->fp = NULL;
    return ret;
}

static int load_env(struct loader *ld)
{
    for (size_t i = 0; i < NKEYS; ++i) {
        char name[128], where[160];
        const char *v;
        env_name(&keys[i], name, sizeof(name));
        if ((v = getenv(name)) == NULL)
            continue;
        snprintf(where, sizeof(where), "environment %s", name);
        if (set_value(ld, &keys[i], v, where) != 0)
            return -1;
    }
    return 0;
}

/* Rules that involve more than one key, checked once everything is loaded. */
static int validate(struct loader *ld)
{
    config_t *cfg = ld->cfg;
    if ((cfg->http_tls_certificate == NULL) != (cfg->http_tls_key == NULL))
        return fail(
            ld, "http.tls.certificate (BERTH_HTTP_TLS_CERTIFICATE) and http.tls.key (BERTH_HTTP_TLS_KEY) must be set "
                "together");
    /* h2o refuses a larger body before berth sees it, so a manifest limit above the body limit would be a lie */
    if (cfg->http_max_body_size < cfg->storage_manifest_max_size) {
        char a[32], b[32];
        return fail(ld, "http.max_body_size (%s) must be at least storage.manifest_max_size (%s)",
                    format_size(cfg->http_max_body_size, a, sizeof(a)),
                    format_size(cfg->storage_manifest_max_size, b, sizeof(b)));
    }
    return 0;
}

int config_load(config_t *cfg, const char *path, char **err)
{
    struct loader ld = {cfg, path};

    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < NKEYS; ++i) {
        if (keys[i].defval != NULL && set_value(&ld, &keys[i], keys[i].defval, "default") != 0)
            goto Error; /* a bad row in the table: caught by the unit tests */
    }
    if (path != NULL && load_file(&ld) != 0)
        goto Error;
    if (load_env(&ld) != 0 || validate(&ld) != 0)
        goto Error;
    return 0;

Error:
    /* leave nothing allocated, so that callers may or may not dispose after a failure */
    config_dispose(cfg);
    if (err != NULL)
        *err = ld.err;
    else
        free(ld.err);
    return -1;
}

void config_dispose(config_t *cfg)
{
    rules_dispose(cfg);
    for (size_t i = 0; i < cfg->nendpoints; ++i)
        config_endpoint_dispose(&cfg->endpoints[i]);
    free(cfg->endpoints);
    cfg->endpoints = NULL;
    cfg->nendpoints = 0;
    for (size_t i = 0; i < cfg->nmirrors; ++i)
        config_mirror_dispose(&cfg->mirrors[i]);
    free(cfg->mirrors);
    cfg->mirrors = NULL;
    cfg->nmirrors = 0;
    for (size_t i = 0; i < NKEYS; ++i) {
        if (keys[i].type == CONFIG_STRING) {
            char **field = FIELD(cfg, &keys[i], char *);
            free(*field);
            *field = NULL;
        }
    }
}

void config_print(const config_t *cfg)
{
    int wk = (int)strlen("KEY"), wv = (int)strlen("VARIABLE"), wval = (int)strlen("VALUE");
    char name[128], buf[64];

    for (size_t i = 0; i < NKEYS; ++i) {
        env_name(&keys[i], name, sizeof(name));
        int l;
        if ((l = (int)strlen(keys[i].key)) > wk)
            wk = l;
        if ((l = (int)strlen(name)) > wv)
            wv = l;
        if ((l = (int)strlen(format_value(cfg, &keys[i], buf, sizeof(buf)))) > wval && l <= 40)
            wval = l;
    }
    printf("%-*s  %-*s  %-*s  %s\n", wk, "KEY", wv, "VARIABLE", wval, "VALUE", "DESCRIPTION");
    for (size_t i = 0; i < NKEYS; ++i) {
        env_name(&keys[i], name, sizeof(name));
        printf("%-*s  %-*s  %-*s  %s\n", wk, keys[i].key, wv, name, wval, format_value(cfg, &keys[i], buf, sizeof(buf)),
               keys[i].doc);
    }
    for (size_t i = 0; i < cfg->nmirrors; ++i) {
        const config_mirror_t *mr = &cfg->mirrors[i];
        char ttl[32], to[32], size[32], age[32];
        printf("mirrors[%zu]  prefix \"%s\"  upstream %s  ns %s  tag_ttl %s  timeout %s  library %s  credentials %s  "
               "max_size %s  max_age %s\n",
               i, mr->prefix, mr->upstream, mr->ns, format_duration(mr->tag_ttl_ms, ttl, sizeof(ttl)),
               format_duration(mr->timeout_ms, to, sizeof(to)), mr->library ? "true" : "false",
               mr->username && *mr->username ? "(set)" : "none", format_size(mr->max_size, size, sizeof(size)),
               mr->max_age_ms ? format_duration(mr->max_age_ms, age, sizeof(age)) : "0");
    }
    for (size_t i = 0; i < cfg->nretention; ++i) {
        const config_retention_t *r = &cfg->retention[i];
        char within[32];
        printf("retention[%zu]  repositories %s  tags %s  keep_last %ld  keep_within %s  keep_tags %s\n", i,
               r->repositories, r->tags ? r->tags : "(all)", r->keep_last,
               r->keep_within_ms ? format_duration(r->keep_within_ms, within, sizeof(within)) : "-",
               r->keep_tags ? r->keep_tags : "-");
    }
    for (size_t i = 0; i < cfg->nreplication; ++i) {
        const config_replication_t *r = &cfg->replication[i];
        char sched[32];
        printf("replication[%zu]  name %s  direction %s  remote %s  credentials %s  repositories", i, r->name,
               r->pull ? "pull" : "push", r->remote,
               (r->username && *r->username) ? (r->password_file ? "(user, password file)" : "(set)") : "none");
        for (size_t j = 0; j < r->nrepositories; ++j)
            printf("%s%s", j ? "," : " ", r->repositories[j]);
        printf("  tags %s  local_prefix \"%s\"  remote_prefix \"%s\"  schedule %s  on_push %s  tls_verify %s\n",
               r->tags ? r->tags : "(all)", r->local_prefix ? r->local_prefix : "",
               r->remote_prefix ? r->remote_prefix : "",
               r->schedule_ms ? format_duration(r->schedule_ms, sched, sizeof(sched)) : "0",
               r->on_push ? "true" : "false", r->tls_verify ? "true" : "false");
    }
    for (size_t i = 0; i < cfg->nendpoints; ++i) {
        const config_endpoint_t *ep = &cfg->endpoints[i];
        char to[32], bo[32], mb[32];
        /* the URL may hold credentials and the headers tokens: neither is printed */
        printf("notifications.endpoints[%zu]  name %s  url (set)  headers %zu (not shown)  timeout %s  threshold %u  "
               "backoff %s  maxbackoff %s  actions %s%s%s  repositories %zu  ignored media types %zu  format %s%s\n",
               i, ep->name, ep->nheaders, format_duration(ep->timeout_ms, to, sizeof(to)), ep->threshold,
               format_duration(ep->backoff_ms, bo, sizeof(bo)), format_duration(ep->max_backoff_ms, mb, sizeof(mb)),
               ep->actions & CONFIG_ACTION_PUSH ? "push " : "", ep->actions & CONFIG_ACTION_PULL ? "pull " : "",
               ep->actions & CONFIG_ACTION_DELETE ? "delete" : "", ep->nrepositories, ep->nignored_types,
               ep->cloudevents ? "cloudevents" : "distribution", ep->disabled ? "  disabled" : "");
    }
    for (size_t i = 0; i < cfg->nimmutable; ++i)
        printf("immutable_tags[%zu]  repositories %s  tags %s\n", i, cfg->immutable[i].repositories,
               cfg->immutable[i].tags ? cfg->immutable[i].tags : "(all)");
}
