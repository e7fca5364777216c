/* Unit tests for the mirrors list (src/config/config.c) and the choice of mirror and names (src/mirror/mirror.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "mirror/mirror.h"
#include "oci/name.h"
#include "config/config.h"
#include "tap.h"

static char path[] = "/tmp/berth-mirror-test.XXXXXX";

/* Load `text` as the configuration file; the error (if any) in *err, freed by the caller. */
static int load(config_t *cfg, const char *text, char **err)
{
    FILE *fp = fopen(path, "w");
    if (fp == NULL || fputs(text, fp) < 0 || fclose(fp) != 0) {
        perror(path);
        exit(2);
    }
    *err = NULL;
    return config_load(cfg, path, err);
}

static int fails_with(const char *text, const char *want)
{
    config_t cfg;
    char *err;
    int good = load(&cfg, text, &err) == -1 && err != NULL && strstr(err, want) != NULL && cfg.nmirrors == 0;
    if (!good)
        printf("# got: %s\n", err ? err : "(success)");
    free(err);
    config_dispose(&cfg);
    return good;
}

/* mirror_select's answer as "local <- up", or "-" for none. */
static const char *pick(const char *name, const char *ns)
{
    static char buf[2 * NAME_MAX_LEN + 8];
    char local[NAME_MAX_LEN + 1], up[NAME_MAX_LEN + 1];
    const mirror_t *m = mirror_select(name, ns, local, up);
    if (m == NULL)
        return "-";
    snprintf(buf, sizeof(buf), "%s <- %s%s%s", local, m->cfg->ns, "/", up);
    return buf;
}

#define PICKS(name, ns, want)                                                                                               \
    do {                                                                                                                    \
        const char *got = pick(name, ns);                                                                                   \
        ok(strcmp(got, want) == 0, "%s%s%s -> %s", name, ns ? " ?ns=" : "", ns ? ns : "", want);                           \
        if (strcmp(got, want) != 0)                                                                                         \
            printf("# got: %s\n", got);                                                                                     \
    } while (0)

int main(void)
{
    config_t cfg;
    char *err;
    int fd = mkstemp(path);
    if (fd < 0)
        return 2;
    close(fd);

    /* ---- the list ---- */
    ok(load(&cfg, "mirrors:\n"
                  "  - prefix: \"\"\n"
                  "    upstream: https://registry-1.docker.io/\n"
                  "    username: bob\n"
                  "    password: s3cret\n"
                  "    tag_ttl: 10m\n"
                  "  - prefix: quay\n"
                  "    upstream: http://127.0.0.1:5001\n"
                  "    timeout: 5s\n"
                  "    library: true\n",
               &err) == 0,
       "a list of two mirrors loads");
    ok(cfg.nmirrors == 2, "... two mirrors");
    ok(strcmp(cfg.mirrors[0].prefix, "") == 0 && strcmp(cfg.mirrors[0].upstream, "https://registry-1.docker.io") == 0,
       "... prefix \"\", the upstream without its trailing slash");
    ok(strcmp(cfg.mirrors[0].ns, "docker.io") == 0 && cfg.mirrors[0].library == 1,
       "... Docker Hub's ns defaults to docker.io, and library/ is on for it");
    ok(strcmp(cfg.mirrors[0].username, "bob") == 0 && strcmp(cfg.mirrors[0].password, "s3cret") == 0,
       "... credentials");
    ok(cfg.mirrors[0].tag_ttl_ms == 600000 && cfg.mirrors[0].timeout_ms == 30000, "... tag_ttl 10m, timeout default 30s");
    ok(strcmp(cfg.mirrors[1].ns, "127.0.0.1:5001") == 0 && cfg.mirrors[1].tag_ttl_ms == 300000 &&
           cfg.mirrors[1].timeout_ms == 5000 && cfg.mirrors[1].library == 1,
       "... another upstream's ns defaults to its host:port; tag_ttl default 5m; library as set");
    free(err);

    /* ---- choosing the mirror ---- */
    ok(mirror_init(&cfg) == 0 && nmirrors == 2, "mirror_init");
    PICKS("alpine", NULL, "library/alpine <- docker.io/library/alpine");
    PICKS("library/alpine", NULL, "library/alpine <- docker.io/library/alpine");
    PICKS("bitnami/redis", NULL, "bitnami/redis <- docker.io/bitnami/redis");
    PICKS("quay/coreos/etcd", NULL, "quay/coreos/etcd <- 127.0.0.1:5001/coreos/etcd");
    PICKS("quay/app", NULL, "quay/library/app <- 127.0.0.1:5001/library/app");
    PICKS("quay", NULL, "library/quay <- docker.io/library/quay");
    PICKS("quayx/app", NULL, "quayx/app <- docker.io/quayx/app");
    PICKS("library/alpine", "docker.io", "library/alpine <- docker.io/library/alpine");
    PICKS("nginx", "docker.io", "library/nginx <- docker.io/library/nginx");
    PICKS("coreos/etcd", "127.0.0.1:5001", "quay/coreos/etcd <- 127.0.0.1:5001/coreos/etcd");
    PICKS("library/alpine", "ghcr.io", "-");
    mirror_dispose();
    config_dispose(&cfg);

    ok(load(&cfg, "mirrors:\n  - prefix: hub\n    upstream: http://127.0.0.1:9\n    ns: docker.io\n    library: false\n", &err) == 0,
       "a prefixed mirror with library off");
    free(err);
    mirror_init(&cfg);
    PICKS("hub/alpine", NULL, "hub/alpine <- docker.io/alpine");
    PICKS("alpine", NULL, "-");
    PICKS("hub", NULL, "-");
    mirror_dispose();
    config_dispose(&cfg);

    ok(load(&cfg, "mirrors:\n", &err) == 0 && cfg.nmirrors == 0, "mirrors: (null) is no mirror");
    free(err);
    config_dispose(&cfg);

    /* ---- mistakes ---- */
    ok(fails_with("mirrors:\n  - prefix: x\n", "upstream is required"), "a mirror without upstream");
    ok(fails_with("mirrors:\n  - upstream: ftp://x\n", "must be an http:// or https:// URL"), "an upstream that is not http(s)");
    ok(fails_with("mirrors:\n  - upstream: http://x\n    prefix: Bad/Name\n", "is not a repository name"), "a bad prefix");
    ok(fails_with("mirrors:\n  - upstream: http://x\n    tag_tll: 5m\n", "unknown key \"tag_tll\""), "a misspelt key");
    ok(fails_with("mirrors:\n  - upstream: http://x\n    timeout: 10ms\n", "at least 1s"), "a timeout under 1s");
    ok(fails_with("mirrors:\n  - upstream: http://x\n  - upstream: http://y\n", "two mirrors with the same prefix"),
       "two mirrors of every name");
    ok(fails_with("mirrors:\n  - upstream: http://x\n    ns: a\n  - upstream: http://y\n    ns: a\n    prefix: p\n",
                  "two mirrors with the same ns"),
       "two mirrors with one ns");
    ok(fails_with("mirrors:\n  upstream: http://x\n", "expected a list of mirrors"), "a mapping instead of a list");
    ok(fails_with("mirrors:\n  - http://x\n", "each mirror is a mapping"), "a list of strings");
    ok(fails_with("mirrors:\n  - upstream: http://x\n    ns: a/b\n", "must be a registry host"), "an ns with a slash");
    ok(fails_with("mirrors:\n  - upstream: http://x\n    library: maybe\n", "invalid boolean"), "library: maybe");

    unlink(path);
    return tap_done();
}
