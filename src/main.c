/* berth: an OCI distribution registry. `berth serve [-c FILE]`; the only file that knows every module. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "auth/admin.h"
#include "auth/principal.h"
#include "cli/cli.h"
#include "config/config.h"
#include "http/api.h"
#include "http/gate.h"
#include "http/metrics.h"
#include "http/server.h"
#include "mirror/mirror.h"
#include "mirror/upstream.h"
#include "replicate/service.h"
#include "notify/notify.h"
#include "store/store.h"
#include "util/log.h"

/* The modules of the HTTP layer that keep state per event loop, or stop work at shutdown. */
static const server_hooks_t *const http_hooks[] = {&metrics_hooks, &gate_hooks, &api_mirror_hooks, &api_tags_hooks,
                                                   NULL};

/* The site administrator, at the first start: a generated password is shown on the terminal, never logged. */
static int ensure_admin(store_t *store, const config_t *cfg)
{
    metastore_t *m = metastore_open(store->db_path, 0);
    char *generated = NULL;
    int created = m != NULL ? admin_ensure(m, cfg->admin_password, &generated) : -1;
    if (m != NULL)
        metastore_close(m);
    if (created < 0)
        return -1;
    if (created && generated != NULL && log_json()) {
        log_warn("created the site administrator \"admin\" with password: %s (shown once; change it with: berth user "
                 "passwd admin)",
                 generated);
        OPENSSL_cleanse(generated, strlen(generated));
        free(generated);
    } else if (created && generated != NULL) {
        fprintf(stderr,
                "\n  created the site administrator \"admin\" with password: %s\n"
                "  (shown once; change it with: berth user passwd admin)\n\n",
                generated);
        OPENSSL_cleanse(generated, strlen(generated));
        free(generated);
    } else if (created) {
        log_info("created the site administrator \"admin\" with the password from BERTH_ADMIN_PASSWORD");
    }
    return 0;
}

/* auth.external_keys at a URL: fetched with the mirrors' HTTP client (libcurl, opened on first use). */
static int fetch_keys(const char *url, char **data, size_t *len, char *err, size_t errlen)
{
    if (upstream_global_init() != 0) {
        snprintf(err, errlen, "libcurl cannot be loaded");
        return -1;
    }
    return upstream_get_url(url, 10000, data, len, err, errlen);
}

static replicate_service_t *replication;

static void on_manifest_pushed(const char *repo)
{
    replicate_service_notify(replication, repo);
}

/* Webhooks: posted with the mirrors' HTTP client too; -2 when libcurl cannot be loaded (the events wait). */
static int post_event(const char *url, const char *const *headers, size_t nheaders, const char *body, size_t len,
                      long timeout_ms, long *status, char *err, size_t errlen)
{
    if (upstream_global_init() != 0) {
        snprintf(err, errlen, "libcurl cannot be loaded");
        return -2;
    }
    return upstream_post(url, headers, nheaders, body, len, timeout_ms, status, err, errlen);
}

/* berth serve: open the store, set up accounts, tokens and mirrors, serve until a signal; then undo it all. */
static int serve(const config_t *cfg)
{
    store_t store;
    char *err = NULL;
    int status = 1, authed = 0, mirrored = 0, failed = 0, notifying = 0;
    server_block_signals(); /* before the store starts its threads */
    if (store_open(&store, cfg) != 0)
        return 1;
    if (ensure_admin(&store, cfg) != 0)
        goto Exit;
    auth_set_fetcher(fetch_keys);
    if (auth_init(cfg, mirror_creates, &err) != 0) {
        log_error("auth: %s", err);
        free(err);
        goto Exit;
    }
    authed = 1;
    if (mirror_init(cfg) != 0)
        goto Exit;
    mirrored = 1;
    notify_set_poster(post_event);
    if (notify_start(cfg, store.db_path, store.writer, cfg->http_addr) != 0)
        goto Exit;
    notifying = 1;
    replication = replicate_service_start(cfg, &store, &failed);
    if (failed)
        goto Exit;
    api_manifest_pushed = replication != NULL ? on_manifest_pushed : NULL;
    status = server_run(cfg, &store, http_hooks);
Exit:
    replicate_service_stop(replication);
    replication = NULL;
    if (notifying)
        notify_stop();
    if (mirrored)
        mirror_dispose();
    if (authed)
        auth_dispose();
    store_close(&store);
    return status;
}

static int usage(FILE *out)
{
    fprintf(out, "usage: berth serve [-c FILE]    run the registry\n"
                 "       berth config [-c FILE]   print the configuration in effect\n"
                 "       berth version\n");
    cli_usage(out);
    fprintf(out, "Configuration: a YAML file (-c, or BERTH_CONFIG), every key overridable by BERTH_<KEY>.\n"
                 "The administration commands work on <storage.root>/berth.db, also while berth serve runs.\n");
    return out == stderr ? 2 : 0;
}

int main(int argc, char **argv)
{
    const char *conf_path = getenv("BERTH_CONFIG");
    /* -c FILE may stand anywhere: take it out, keep the rest in order */
    char **rest = calloc((size_t)argc + 1, sizeof(*rest));
    int nrest = 0, status;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "berth: %s needs a file\n", argv[i]);
                free(rest);
                return usage(stderr);
            }
            conf_path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            conf_path = argv[i] + 9;
        } else {
            rest[nrest++] = argv[i];
        }
    }
    if (nrest < 1) {
        free(rest);
        return usage(stderr);
    }
    const char *cmd = rest[0];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        free(rest);
        return usage(stdout);
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("berth %s\n", PACKAGE_VERSION);
        free(rest);
        return 0;
    }
    int admin = cli_is_command(cmd);
    if (!admin && nrest > 1) {
        fprintf(stderr, "berth: unknown argument %s\n", rest[1]);
        free(rest);
        return usage(stderr);
    }
    if (conf_path != NULL && *conf_path == '\0')
        conf_path = NULL;

    config_t cfg;
    char *err = NULL;
    if (config_load(&cfg, conf_path, &err) != 0) {
        fprintf(stderr, "berth: %s\n", err);
        free(err);
        free(rest);
        return 1;
    }
    log_set_level((log_level_t)log_level_from_name(cfg.log_level));
    log_set_json(strcmp(cfg.log_format, "json") == 0);
    if (admin) {
        status = cli_main(cmd, nrest - 1, rest + 1, &cfg);
    } else if (strcmp(cmd, "config") == 0) {
        config_print(&cfg);
        status = 0;
    } else if (strcmp(cmd, "serve") == 0) {
        status = serve(&cfg);
    } else {
        fprintf(stderr, "berth: unknown command %s\n", cmd);
        status = usage(stderr);
    }
    config_dispose(&cfg);
    free(rest);
    return status;
}
