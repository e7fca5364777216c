/*
 * berth's configuration: one YAML file (libyaml), every key overridable by an environment variable
 * BERTH_<KEY PATH IN CAPITALS, '.' -> '_'>, e.g. http.addr -> BERTH_HTTP_ADDR. Keys, types, defaults and
 * documentation live in one table in config.c; conf/berth.yaml documents the same keys.
 */
#ifndef BERTH_CONFIG_CONFIG_H
#define BERTH_CONFIG_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/** One pull-through mirror (the "mirrors" list; see docs/mirror.md). */
typedef struct {
    char *prefix;        /* prefix   ""  the repository names it serves: "" = every name not hosted here */
    char *upstream;      /* upstream     base URL of the upstream registry (required) */
    char *ns;            /* ns           containerd's ?ns= value selecting it; default: the upstream's host,
                                         "docker.io" for registry-1.docker.io */
    char *username;      /* username     upstream credentials (optional) */
    char *password;      /* password */
    uint64_t tag_ttl_ms; /* tag_ttl  5m  how long a tag is served before it is revalidated upstream */
    uint64_t timeout_ms; /* timeout  30s connecting, and waiting for an answer */
    int library;         /* library      one-word names get "library/"; default: true when ns is docker.io */
    uint64_t max_size;   /* max_size 0   bytes the mirror's repositories may hold (0 = no limit): the least
                                         recently pulled images are evicted by the garbage collector */
    uint64_t max_age_ms; /* max_age  0   images not pulled for this long are evicted (0 = never) */
} config_mirror_t;

/** A retention rule (the "retention" list; docs/lifecycle.md): which tags of which repositories to keep. */
typedef struct {
    char *repositories;      /* repositories   a name, "ns/" + "*", or "*" (required) */
    char *tags;              /* tags           PCRE2 pattern of the tags the rule judges; NULL = every tag */
    char *keep_tags;         /* keep_tags      PCRE2 pattern of judged tags always kept; NULL = none */
    long keep_last;          /* keep_last      the N most recently pushed judged tags are kept; -1 = not set */
    uint64_t keep_within_ms; /* keep_within    judged tags pushed within this are kept; 0 = not set */
} config_retention_t;

/** An immutable-tags rule (the "immutable_tags" list): tags that, once pushed, never move. */
typedef struct {
    char *repositories; /* repositories   as a retention rule's (required) */
    char *tags;         /* tags           PCRE2 pattern; NULL = every tag */
} config_immutable_t;

/** A replication rule (the "replication" list; docs/replication.md). */
typedef struct {
    char *name;          /* name           the rule's name, for `berth replicate NAME` and the log (required) */
    int pull;            /* direction      push (0, default) or pull (1) */
    char *remote;        /* remote         base URL of the other registry (required) */
    char *username;      /* username       credentials at the remote (optional) */
    char *password;      /* password */
    char *password_file; /* password_file  a file whose first line is the password */
    char **repositories; /* repositories   glob patterns of the source's names (* within a path component, **
                                            across them, ? one character); required */
    size_t nrepositories;
    char *tags;           /* tags           glob pattern of the tags replicated; NULL = every tag */
    char *local_prefix;   /* local_prefix   "" names here start with this ... */
    char *remote_prefix;  /* remote_prefix  "" ... and there with this instead */
    uint64_t schedule_ms; /* schedule       0 how often the server runs the rule (0: only on push events / CLI) */
    int on_push;          /* on_push        false a push rule runs for a repository as soon as a manifest is
                                            pushed to it */
    int tls_verify;       /* tls_verify     true */
    char *ca_file;        /* ca_file        CA certificates (PEM) the remote's certificate is checked against */
    uint64_t timeout_ms;  /* timeout        30s connecting, and waiting for a manifest */
} config_replication_t;

/** Webhook actions (config_endpoint_t.actions). */
enum { CONFIG_ACTION_PUSH = 1, CONFIG_ACTION_PULL = 2, CONFIG_ACTION_DELETE = 4 };

/** A webhook endpoint (the "notifications.endpoints" list; docs/webhooks.md), as distribution's. */
typedef struct {
    char *name;     /* name          required, unique: [A-Za-z0-9._-] (it keys the endpoint's queue cursor) */
    char *url;      /* url           required, http:// or https:// */
    char **headers; /* headers       "Name: value" lines sent with every request (never logged) */
    size_t nheaders;
    uint64_t timeout_ms;     /* timeout   5s  of one delivery */
    unsigned threshold;      /* threshold 3   failures in a row retried after `backoff`; then it doubles */
    uint64_t backoff_ms;     /* backoff   1s */
    uint64_t max_backoff_ms; /* maxbackoff 1m the longest wait between attempts */
    char **ignored_types;    /* ignoredmediatypes and ignore.mediatypes: events of these target types are skipped */
    size_t nignored_types;
    unsigned actions;    /* actions   push, delete (pull is opt-in); minus ignore.actions */
    char **repositories; /* repositories  patterns as the lifecycle rules' (name, ns/ + *, *); none = all */
    size_t nrepositories;
    int cloudevents; /* format    "distribution" (0) or "cloudevents" (1: structured mode, one per request) */
    int disabled;    /* disabled  false */
} config_endpoint_t;

typedef struct {
    /* http */
    char *http_addr;                           /* http.addr            "127.0.0.1:5000" (host:port; [v6]:port; :port) */
    char *http_tls_certificate;                /* http.tls.certificate NULL (PEM file; TLS on when both are set) */
    char *http_tls_key;                        /* http.tls.key         NULL */
    unsigned http_threads;                     /* http.threads         0 = one event loop per core */
    unsigned http_max_connections;             /* http.max_connections 10000 (per process) */
    unsigned http_max_connections_per_address; /* http.max_connections_per_address 128 (0 = no cap) */
    uint64_t http_header_timeout_ms;           /* http.header_timeout  20s (a request's head; the window of min_rate) */
    uint64_t http_min_rate;                    /* http.min_rate        16KiB a second (0 = none) */
    uint64_t http_request_timeout_ms;  /* http.request_timeout 1h (h2o's http1 req_timeout: headers + whole body) */
    uint64_t http_idle_timeout_ms;     /* http.idle_timeout    60s (between requests, HTTP/1 and HTTP/2) */
    uint64_t http_shutdown_timeout_ms; /* http.shutdown_timeout 30s (grace for in-flight requests on SIGTERM) */
    uint64_t http_shutdown_delay_ms;   /* http.shutdown_delay  0 (on SIGTERM: /readyz 503, still serving, this long) */
    uint64_t http_max_body_size; /* http.max_body_size   10GiB (largest request body, i.e. largest single upload) */
    /* storage */
    char *storage_root;                 /* storage.root         "./data" */
    uint64_t storage_manifest_max_size; /* storage.manifest_max_size 4MiB (never below 4 MiB) */
    uint64_t storage_min_free;          /* storage.min_free     1GiB */
    uint64_t storage_upload_ttl_ms;     /* storage.upload_ttl   24h (stale upload sessions are removed) */
    uint64_t storage_scrub_rate;        /* storage.scrub_rate   0 (bytes/s the background scrub re-hashes; 0 = off) */
    int storage_sparse_manifests;       /* storage.sparse_manifests false (absent references accepted) */
    /* garbage collection (store/gc.h) */
    uint64_t gc_interval_ms;       /* gc.interval          1h (0 = no scheduled runs) */
    uint64_t gc_blob_grace_ms;     /* gc.blob_grace        24h */
    uint64_t gc_untagged_grace_ms; /* gc.untagged_grace    7d (0 = untagged manifests are kept) */
    /* audit log (store/audit.h) */
    uint64_t audit_retention_ms; /* audit.retention      90d (0 = kept forever) */
    /* workers */
    unsigned workers; /* workers              16 (threads for blocking work: fsync, rename, hashing) */
    /* log */
    char *log_access; /* log.access           "-" (stdout), "" = off, else a file path */
    char *log_level;  /* log.level            "info" (error, warn, info, debug) */
    char *log_format; /* log.format           "text" (text, json) */
    /* who may do what */
    char *mode;                    /* mode                 "private" (private, public, cloud, open) */
    char *admin_password;          /* admin_password       NULL (the admin account's password when created) */
    char *external_url;            /* external_url         NULL (the request's scheme and Host) */
    char *auth_service;            /* auth.service         "berth" (aud of tokens) */
    char *auth_issuer;             /* auth.issuer          "berth" (iss of tokens) */
    char *auth_key;                /* auth.key             NULL = <storage.root>/keys/token.pem */
    uint64_t auth_token_ttl_ms;    /* auth.token_ttl       5m */
    uint64_t auth_refresh_ttl_ms;  /* auth.refresh_ttl     30d */
    int auth_private_default_pull; /* auth.private_default_pull true */
    char *auth_external_issuer;    /* auth.external_issuer NULL */
    char *auth_external_keys;      /* auth.external_keys   NULL (PEM public key or JWKS: file or http(s) URL) */
    uint64_t auth_external_keys_refresh_ms;   /* auth.external_keys_refresh 5m */
    unsigned auth_login_failures;             /* auth.login_failures  5 */
    unsigned auth_login_failures_per_address; /* auth.login_failures_per_address 30 */
    uint64_t auth_login_backoff_ms;           /* auth.login_backoff   1s */
    char *auth_trusted_proxies;               /* auth.trusted_proxies "" */
    uint64_t auth_credential_cache_ttl_ms;    /* auth.credential_cache_ttl 60s */
    /* pull-through mirrors, from the file only (a list has no environment variable) */
    config_mirror_t *mirrors;
    size_t nmirrors;
    /* lifecycle rules (store/policy.h), from the file only, in the file's order */
    config_retention_t *retention;
    size_t nretention;
    config_immutable_t *immutable;
    size_t nimmutable;
    /* replication rules (replicate/), from the file only, in the file's order */
    config_replication_t *replication;
    size_t nreplication;
    /* webhooks (docs/webhooks.md): the endpoints from the file only */
    unsigned notifications_queue_size; /* notifications.queue_size 10000 (events kept undelivered; oldest dropped) */
    config_endpoint_t *endpoints;
    size_t nendpoints;
} config_t;

/**
 * Fill `cfg` with the defaults, then the keys of the YAML file `path` (skipped when NULL), then the environment.
 * Returns 0, or -1 with a malloc'd message in `*err` (the caller frees it) naming the file, line and key or the
 * variable: unknown keys, wrong types, bad sizes/durations and a manifest limit under 4 MiB are errors.
 * Sizes accept a plain byte count or a number with B, KiB, MiB, GiB, TiB (also KB/MB/GB/TB = powers of 1000,
 * and k/K/M/G/T as binary shorthand); durations a number of seconds or a number with ms, s, m, h, d.
 */
int config_load(config_t *cfg, const char *path, char **err);

/** Free the strings config_load allocated (the struct itself is the caller's). */
void config_dispose(config_t *cfg);

/** Parse a size / duration as config_load does; 0 on success, -1 if malformed or out of range. */
int config_parse_size(const char *s, uint64_t *out);
int config_parse_duration_ms(const char *s, uint64_t *out);

/** 1 if `pattern` is a repository pattern of the lifecycle rules: a repository name, name + "/" + "*", or "*". */
int config_repo_pattern_valid(const char *pattern);

/**
 * 1 if `s` (length `len`) matches the glob `pattern`: `*` any characters but '/', `**` any characters, `?` one
 * character but '/', anything else itself.
 */
int config_glob_match(const char *pattern, const char *s, size_t len);

/** Print every key, its variable, current value and documentation (for `berth config`), to stdout. */
void config_print(const config_t *cfg);

#endif
