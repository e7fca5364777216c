/* Unit tests for the mirrors list (src/config/config.c), the choice of mirror and names (src/mirror/mirror.c), the
 * routing of a request by the repositories a real database holds (src/mirror/route.c), and the parameters of an
 * upstream's challenge (src/mirror/challenge.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "mirror/challenge.h"
#include "mirror/mirror.h"
#include "mirror/route.h"
#include "mirror/tags.h"
#include "oci/name.h"
#include "config/config.h"
#include "store/metastore.h"
#include "util/status.h"
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

#define PICKS(name, ns, want)                                                                                          \
    do {                                                                                                               \
        const char *got = pick(name, ns);                                                                              \
        ok(strcmp(got, want) == 0, "%s%s%s -> %s", name, ns ? " ?ns=" : "", ns ? ns : "", want);                       \
        if (strcmp(got, want) != 0)                                                                                    \
            printf("# got: %s\n", got);                                                                                \
    } while (0)

/* ---- routing with a database ---- */

typedef struct {
    const char *repo;
    int mirrored;
} link_args_t;

static int link_one(metastore_t *m, void *arg)
{
    const link_args_t *a = arg;
    digest_t d;
    digest_compute(&d, DIGEST_SHA256, "x", 1);
    return a->mirrored ? metastore_mirror_blob_link(m, a->repo, &d, 1) : metastore_blob_link(m, a->repo, &d, 1);
}

/* mirror_route's decision as "<kind> <local> <- <ns>/<up>",
 * e.g. "mirrored library/alpine <- docker.io/library/alpine". */
static const char *route(metastore_t *db, const char *name, const char *ns, int push)
{
    static const char *kinds[] = {"hosted", "mirrored", "deny", "no-mirror", "error"};
    static char buf[3 * NAME_MAX_LEN + 32];
    mirror_route_t rt;
    mirror_route_kind_t k = mirror_route(db, name, ns, push, &rt);
    if (k == MIRROR_ROUTE_ERROR)
        return kinds[k]; /* the names are of no use then */
    int n = snprintf(buf, sizeof(buf), "%s%s%s", kinds[k], rt.local[0] ? " " : "", rt.local);
    if (rt.m != NULL && k == MIRROR_ROUTE_MIRRORED)
        snprintf(buf + n, sizeof(buf) - (size_t)n, " <- %s/%s", rt.m->cfg->ns, rt.up);
    else if (rt.m != NULL)
        snprintf(buf + n, sizeof(buf) - (size_t)n, " (%s)", rt.m->cfg->upstream);
    return buf;
}

#define ROUTES(db, name, ns, push, want)                                                                               \
    do {                                                                                                               \
        const char *got = route(db, name, ns, push);                                                                   \
        ok(strcmp(got, want) == 0, "%s %s%s%s -> %s", push ? "push" : "pull", name, ns ? " ?ns=" : "", ns ? ns : "",   \
           want);                                                                                                      \
        if (strcmp(got, want) != 0)                                                                                    \
            printf("# got: %s\n", got);                                                                                \
    } while (0)

static void test_route(void)
{
    char root[256], db_path[300], *err;
    config_t cfg;
    if (tap_tmpdir(root, sizeof(root), "berth-mirror-route") != 0)
        exit(2);
    snprintf(db_path, sizeof(db_path), "%s/berth.db", root);
    metastore_t *db = metastore_open(db_path, 1);
    metastore_writer_t *w = metastore_writer_start(db_path);
    link_args_t links[] = {{"myapp", 0}, {"library/foo", 0}, {"library/alpine", 1}, {"quay/coreos/etcd", 1}};
    int linked = db != NULL && w != NULL;
    for (size_t i = 0; linked && i < sizeof(links) / sizeof(links[0]); ++i)
        linked = metastore_write(w, link_one, &links[i]) == 0;
    ok(linked, "a database with myapp and library/foo pushed, library/alpine and quay/coreos/etcd mirrored");

    ROUTES(db, "myapp", NULL, 0, "hosted");
    ok(load(&cfg,
            "mirrors:\n  - upstream: https://registry-1.docker.io\n  - prefix: quay\n    upstream: https://quay.io\n",
            &err) == 0 &&
           mirror_init(&cfg) == 0,
       "a mirror of every name and one of quay/");
    free(err);
    /* a mirror of every name */
    ROUTES(db, "myapp", NULL, 0, "hosted");
    ROUTES(db, "myapp", NULL, 1, "hosted");
    ROUTES(db, "library/alpine", NULL, 0, "mirrored library/alpine <- docker.io/library/alpine");
    ROUTES(db, "alpine", NULL, 0, "mirrored library/alpine <- docker.io/library/alpine");
    ROUTES(db, "nothere", NULL, 0, "mirrored library/nothere <- docker.io/library/nothere");
    ROUTES(db, "library/alpine", NULL, 1, "deny library/alpine (https://registry-1.docker.io)");
    ROUTES(db, "alpine", NULL, 1, "deny library/alpine (https://registry-1.docker.io)");
    ROUTES(db, "newthing", NULL, 1, "hosted");
    ROUTES(db, "foo", NULL, 0, "hosted library/foo");
    ROUTES(db, "library/foo", NULL, 0, "hosted");
    /* a prefixed mirror */
    ROUTES(db, "quay/coreos/etcd", NULL, 0, "mirrored quay/coreos/etcd <- quay.io/coreos/etcd");
    ROUTES(db, "quay/coreos/new", NULL, 0, "mirrored quay/coreos/new <- quay.io/coreos/new");
    ROUTES(db, "quay/coreos/new", NULL, 1, "deny quay/coreos/new (https://quay.io)");
    /* containerd's ?ns= */
    ROUTES(db, "coreos/etcd", "quay.io", 0, "mirrored quay/coreos/etcd <- quay.io/coreos/etcd");
    ROUTES(db, "library/alpine", "docker.io", 0, "mirrored library/alpine <- docker.io/library/alpine");
    ROUTES(db, "library/alpine", "ghcr.io", 0, "no-mirror");
    ROUTES(db, "library/alpine", "ghcr.io", 1, "no-mirror");
    ROUTES(db, "myapp", "ghcr.io", 0, "hosted");
    ROUTES(db, "nothere", "ghcr.io", 0, "hosted");

    /* a database without its tables fails every query */
    snprintf(db_path, sizeof(db_path), "%s/empty.db", root);
    metastore_t *empty = metastore_open(db_path, 0);
    ROUTES(empty, "alpine", NULL, 0, "error");
    ROUTES(empty, "quay/coreos/etcd", NULL, 0, "error");
    metastore_close(empty);

    mirror_dispose();
    config_dispose(&cfg);
    metastore_writer_stop(w);
    metastore_close(db);
    if (tap_rmtree(root) != 0)
        exit(2);
}

/* The value of `key` in challenge `ch` is `want` (NULL: absent), read into a buffer of `size` bytes. */
static int param(const char *ch, const char *key, size_t size, const char *want)
{
    char buf[64];
    memset(buf, 'X', sizeof(buf));
    int r = challenge_param(ch, key, buf, size);
    return want == NULL ? r == -1 : r == 0 && strcmp(buf, want) == 0;
}

static void test_challenge(void)
{
    static const char hub[] =
        "realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\",scope=\"repository:library/x:pull\"";
    ok(param(hub, "realm", 64, "https://auth.docker.io/token"), "Docker Hub's realm");
    ok(param(hub, "service", 64, "registry.docker.io"), "its service");
    ok(param(hub, "scope", 64, "repository:library/x:pull"), "its scope");
    ok(param(hub, "error", 64, NULL), "no error parameter");
    ok(param(hub, "REALM", 64, "https://auth.docker.io/token"), "keys are matched without case");
    ok(param("realm=https://ghcr.io/token,service=ghcr.io", "service", 64, "ghcr.io"), "unquoted values (tokens)");
    ok(param("realm=\"a\\\"b\\\\c\"", "realm", 64, "a\"b\\c"), "backslash escapes in a quoted value");
    ok(param("scope=\"a,realm=evil\",realm=\"good\"", "realm", 64, "good"), "a key inside a quoted value is not one");
    ok(param("realm=\"x\" , , service=\"y\"", "service", 64, "y"), "spaces and empty items between parameters");
    ok(param("realm=\"https://auth.example/token\"", "realm", 8, "https:/"), "a value cut to its buffer");
    ok(param("realm=\"unterminated", "realm", 64, "unterminated"), "an unterminated quoted value runs to the end");
    ok(param("realm", "realm", 64, NULL), "a key without a value");
    ok(param("", "realm", 64, NULL), "nothing");
}

/* The upstream's tag list pages (mirror/tags.h): their JSON, and the Link to the next one. */
static void test_tag_pages(void)
{
    char **tags = NULL, why[256] = "";
    size_t n = 0, cap = 0;
    const char *p1 = "{\"name\":\"library/alpine\",\"tags\":[\"3.19\",\"latest\"]}";
    ok(mirror_tags_parse_page(p1, strlen(p1), &tags, &n, &cap, why, sizeof(why)) == 0 && n == 2 &&
           strcmp(tags[0], "3.19") == 0 && strcmp(tags[1], "latest") == 0,
       "a page's tags are appended");
    const char *p2 = "{\"name\":\"x\",\"tags\":null}";
    ok(mirror_tags_parse_page(p2, strlen(p2), &tags, &n, &cap, why, sizeof(why)) == 0 && n == 2,
       "\"tags\": null is a repository without tags");
    const char *bad[] = {"[]",
                         "{\"tags\":\"a\"}",
                         "{\"tags\":[\"a b\"]}",
                         "{\"tags\":[\".x\"]}",
                         "{\"tags\":[1]}",
                         "{\"tags\":[\"a\\u0000b\"]}",
                         "{\"tags\":[\"a\"],\"tags\":[]}",
                         "not json"};
    int all = 1;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        size_t before = n;
        if (mirror_tags_parse_page(bad[i], strlen(bad[i]), &tags, &n, &cap, why, sizeof(why)) != -1 || why[0] == '\0') {
            printf("# accepted %s\n", bad[i]);
            all = 0;
        }
        for (size_t j = before; j < n; ++j) /* what a refused page appended before its bad tag */
            free(tags[j]);
        n = before;
    }
    ok(all, "pages that are not tag lists, or hold a non-tag, are refused with a reason");
    for (size_t i = 0; i < n; ++i)
        free(tags[i]);
    free(tags);

    char next[256], last[TAG_MAX_LEN + 1];
    ok(mirror_tags_next("</v2/library/alpine/tags/list?last=3.19&n=100>; rel=\"next\"", next, sizeof(next), last,
                        sizeof(last)) == 1 &&
           strcmp(next, "list?n=100&last=3.19") == 0 && strcmp(last, "3.19") == 0,
       "Docker Hub's Link: the next page's request");
    ok(mirror_tags_next("<https://other.example/v2/x/tags/list?n=2&last=b&evil=1>; rel=\"next\"", next, sizeof(next),
                        last, sizeof(last)) == 1 &&
           strcmp(next, "list?n=2&last=b") == 0,
       "only n and last are taken from it, never its host or other parameters");
    ok(mirror_tags_next("", next, sizeof(next), last, sizeof(last)) == 0 &&
           mirror_tags_next("</v2/x/tags/list?last=a>; rel=\"prev\"", next, sizeof(next), last, sizeof(last)) == 0,
       "no Link, or none with rel=next: the last page");
    const char *badlink[] = {"</v2/x/tags/list?n=2>; rel=\"next\"",
                             "</v2/x/tags/list?last=a%2Fb>; rel=\"next\"",
                             "</v2/x/tags/list?last=a&n=-1>; rel=\"next\"",
                             "</v2/x/tags/list?last=a&n=>; rel=\"next\"",
                             "</v2/x/tags/list?last=../x>; rel=\"next\"",
                             "<no-end; rel=\"next\"",
                             "junk"};
    all = 1;
    for (size_t i = 0; i < sizeof(badlink) / sizeof(badlink[0]); ++i)
        if (mirror_tags_next(badlink[i], next, sizeof(next), last, sizeof(last)) != -1) {
            printf("# accepted %s\n", badlink[i]);
            all = 0;
        }
    ok(all, "a next Link without a valid last tag, or with a bad n, is refused");
}

int main(void)
{
    config_t cfg;
    char *err;
    int fd = mkstemp(path);
    if (fd < 0)
        return 2;
    close(fd);

    /* ---- the list ---- */
    ok(load(&cfg,
            "mirrors:\n"
            "  - prefix: \"\"\n"
            "    upstream: https://registry-1.docker.io/\n"
            "    username: bob\n"
            "    password: s3cret\n"
            "    tag_ttl: 10m\n"
            "  - prefix: quay\n"
            "    upstream: http://127.0.0.1:5001\n"
            "    timeout: 5s\n"
            "    library: true\n"
            "    max_size: 50GiB\n"
            "    max_age: 30d\n",
            &err) == 0,
       "a list of two mirrors loads");
    ok(cfg.nmirrors == 2, "... two mirrors");
    ok(strcmp(cfg.mirrors[0].prefix, "") == 0 && strcmp(cfg.mirrors[0].upstream, "https://registry-1.docker.io") == 0,
       "... prefix \"\", the upstream without its trailing slash");
    ok(strcmp(cfg.mirrors[0].ns, "docker.io") == 0 && cfg.mirrors[0].library == 1,
       "... Docker Hub's ns defaults to docker.io, and library/ is on for it");
    ok(strcmp(cfg.mirrors[0].username, "bob") == 0 && strcmp(cfg.mirrors[0].password, "s3cret") == 0,
       "... credentials");
    ok(cfg.mirrors[0].tag_ttl_ms == 600000 && cfg.mirrors[0].timeout_ms == 30000,
       "... tag_ttl 10m, timeout default 30s");
    ok(strcmp(cfg.mirrors[1].ns, "127.0.0.1:5001") == 0 && cfg.mirrors[1].tag_ttl_ms == 300000 &&
           cfg.mirrors[1].timeout_ms == 5000 && cfg.mirrors[1].library == 1,
       "... another upstream's ns defaults to its host:port; tag_ttl default 5m; library as set");
    ok(cfg.mirrors[0].max_size == 0 && cfg.mirrors[0].max_age_ms == 0, "... no max_size, no max_age by default");
    ok(cfg.mirrors[1].max_size == 50ull << 30 && cfg.mirrors[1].max_age_ms == 30ull * 86400000,
       "... max_size 50GiB, max_age 30d");
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

    ok(load(&cfg,
            "mirrors:\n  - prefix: hub\n    upstream: http://127.0.0.1:9\n    ns: docker.io\n    library: false\n",
            &err) == 0,
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
    ok(fails_with("mirrors:\n  - upstream: ftp://x\n", "must be an http:// or https:// URL"),
       "an upstream that is not http(s)");
    ok(fails_with("mirrors:\n  - upstream: http://x\n    prefix: Bad/Name\n", "is not a repository name"),
       "a bad prefix");
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
    ok(fails_with("mirrors:\n  - upstream: http://x\n    max_size: 5 apples\n", "max_size: invalid size"),
       "max_size: 5 apples");
    ok(fails_with("mirrors:\n  - upstream: http://x\n    max_age: soon\n", "max_age: invalid duration"),
       "max_age: soon");

    test_route();
    test_challenge();
    unlink(path);
    test_tag_pages();
    return tap_done();
}
