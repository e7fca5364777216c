/* Mirror cache eviction (store/evict.h) on a database built here: which mirror a repository belongs to; an image is
 * its top manifest with what it lists and its referrers, and a manifest another index of the repository lists, or
 * that has a tag of its own, stays; hosted repositories are never looked at; a dry run reports what the run does. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "store/db.h"
#include "store/evict.h"
#include "store/gc.h"
#include "store/metastore.h"
#include "util/status.h"
#include "tap.h"

static char root[256];

static void test_mirror_of(void)
{
    const evict_mirror_t ms[] = {{"hub", 0, 0}, {"hub/deep", 0, 0}, {"quay", 0, 0}};
    const evict_mirror_t all[] = {{"quay", 0, 0}, {"", 1, 0}};
    ok(evict_mirror_of(ms, 3, "hub/library/a") == 0, "hub/library/a: mirror hub");
    ok(evict_mirror_of(ms, 3, "hub/deep/a") == 1, "hub/deep/a: the longest prefix, hub/deep");
    ok(evict_mirror_of(ms, 3, "hubx/a") == -1, "hubx/a: no mirror (a prefix is a whole path component)");
    ok(evict_mirror_of(ms, 3, "quay") == -1, "quay: no mirror");
    ok(evict_mirror_of(all, 2, "quay/x") == 0 && evict_mirror_of(all, 2, "library/x") == 1,
       "with a mirror of every name: quay/x is quay's, library/x the catch-all's");
    ok(!evict_enabled(ms, 3) && evict_enabled(all, 2), "eviction runs only when a mirror has a limit");
}

/* ---- a database ---- */

typedef struct {
    const char *repo, *tag, *body;
    int mirror;
} put_t;

static int put(metastore_t *m, void *arg)
{
    put_t *p = arg;
    char err[256];
    manifest_t *mf;
    digest_t d;
    if (manifest_parse(&mf, NULL, 0, p->body, strlen(p->body), err, sizeof(err)) != MANIFEST_OK)
        return -1;
    digest_compute(&d, DIGEST_SHA256, p->body, strlen(p->body));
    int rc = p->mirror ? metastore_mirror_manifest_put(m, p->repo, &d, mf, p->body, strlen(p->body), p->tag, 1)
                       : metastore_manifest_put(m, p->repo, &d, mf, p->body, strlen(p->body), &p->tag, p->tag != NULL,
                                                0, NULL);
    manifest_free(mf);
    return rc;
}

typedef struct {
    const char *repo;
    digest_t d;
    int mirror;
} link_t;

static int link_blob(metastore_t *m, void *arg)
{
    link_t *l = arg;
    return l->mirror ? metastore_mirror_blob_link(m, l->repo, &l->d, 1000)
                     : metastore_blob_link(m, l->repo, &l->d, 1000);
}

/* An image manifest of one layer (its config the same blob), as JSON into buf; the layer's digest in *layer. */
static const char *image(char *buf, size_t len, const char *seed, digest_t *layer)
{
    digest_compute(layer, DIGEST_SHA256, seed, strlen(seed));
    snprintf(buf, len,
             "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\",\"config\":{\"mediaType\":\"application/"
             "vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":1000},\"layers\":[{\"mediaType\":"
             "\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":1000}]}",
             layer->str, layer->str);
    return buf;
}

static const char *index_of(char *buf, size_t len, const char *a, const char *b)
{
    digest_t da, db;
    digest_compute(&da, DIGEST_SHA256, a, strlen(a));
    digest_compute(&db, DIGEST_SHA256, b, strlen(b));
    snprintf(buf, len,
             "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\",\"manifests\":[{\"mediaType\":\"" MT_OCI_MANIFEST
             "\",\"digest\":\"%s\",\"size\":%zu},{\"mediaType\":\"" MT_OCI_MANIFEST
             "\",\"digest\":\"%s\",\"size\":%zu}]}",
             da.str, strlen(a), db.str, strlen(b));
    return buf;
}

/* A referrer of `subject` (its config and layer the empty blob `empty`). */
static const char *referrer(char *buf, size_t len, const char *subject, const digest_t *empty)
{
    digest_t ds;
    digest_compute(&ds, DIGEST_SHA256, subject, strlen(subject));
    snprintf(buf, len,
             "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\",\"artifactType\":\"application/x.sig\","
             "\"config\":{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"digest\":\"%s\",\"size\":1000},"
             "\"layers\":[],\"subject\":{\"mediaType\":\"" MT_OCI_INDEX "\",\"digest\":\"%s\",\"size\":%zu}}",
             empty->str, ds.str, strlen(subject));
    return buf;
}

static long count(sqlite3 *h, const char *sql)
{
    sqlite3_stmt *s;
    long n = -1;
    if (sqlite3_prepare_v2(h, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return n;
}

static char reported[4096];

static void on_item(void *ctx, const gc_item_t *it)
{
    char line[512];
    snprintf(line, sizeof(line), "%s %s@%.19s %s %s %llu\n", it->kind, it->repo ? it->repo : "-", it->digest,
             it->tags ? it->tags : "", it->why ? it->why : "", (unsigned long long)it->size);
    strncat(reported, line, sizeof(reported) - strlen(reported) - 1);
}

static void test_images(void)
{
    char path[300], b1[1024], b2[1024], b3[1024], bi1[1024], bi2[1024], bt[1024], br[1024], bh[1024];
    digest_t l1, l2, l3, lt, lh, empty;
    snprintf(path, sizeof(path), "%s/berth.db", root);
    metastore_t *m = metastore_open(path, 1);
    metastore_writer_t *w = metastore_writer_start(path);
    sqlite3 *h = db_handle(m);

    /* hub/x: index i1 (tag 1) lists c1 and t (which has a tag of its own); index i2 (tag 2) lists c1 and c3; r
     * refers to i1; solo (tag solo) stands alone */
    image(b1, sizeof(b1), "layer one", &l1);
    image(b2, sizeof(b2), "layer two", &l2);
    image(b3, sizeof(b3), "layer three", &l3);
    image(bt, sizeof(bt), "layer tagged", &lt);
    index_of(bi1, sizeof(bi1), b1, bt);
    index_of(bi2, sizeof(bi2), b1, b3); /* c1 is in both indexes */
    digest_compute(&empty, DIGEST_SHA256, "{}", 2);
    referrer(br, sizeof(br), bi1, &empty);
    image(bh, sizeof(bh), "layer one", &lh); /* hosted: the same bytes as hub/x's c1 */
    link_t links[] = {{"hub/x", l1, 1}, {"hub/x", l2, 1},    {"hub/x", l3, 1},
                      {"hub/x", lt, 1}, {"hub/x", empty, 1}, {"local/x", lh, 0}};
    int okay = 1;
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); ++i)
        okay &= metastore_write(w, link_blob, &links[i]) == 0;
    put_t puts[] = {{"hub/x", NULL, b1, 1}, {"hub/x", NULL, b3, 1}, {"hub/x", "t", bt, 1},    {"hub/x", "1", bi1, 1},
                    {"hub/x", "2", bi2, 1}, {"hub/x", NULL, br, 1}, {"hub/x", "solo", b2, 1}, {"local/x", "v1", bh, 0}};
    for (size_t i = 0; i < sizeof(puts) / sizeof(puts[0]); ++i)
        okay &= metastore_write(w, put, &puts[i]) == 0;
    ok(okay, "hub/x (mirrored): index 1 of c1 and t (tagged itself), index 2 of c1 and c3, a referrer of index 1, "
             "solo; local/x (hosted) shares c1's blob");
    ok(count(h, "SELECT count(*) FROM manifest") == 8, "... 8 manifests");
    /* last pulls: index 1's image long ago, solo and the hosted one longer ago still, index 2 now */
    sqlite3_exec(h, "UPDATE manifest SET pulled_at = unixepoch() - 864000", NULL, NULL, NULL);
    sqlite3_exec(h,
                 "UPDATE manifest SET pulled_at = unixepoch() WHERE digest IN (SELECT digest FROM manifest_ref "
                 "WHERE kind = 2 AND manifest_id = (SELECT manifest_id FROM tag WHERE name = '2')) "
                 "OR id = (SELECT manifest_id FROM tag WHERE name = '2')",
                 NULL, NULL, NULL);
    sqlite3_exec(h,
                 "UPDATE manifest SET pulled_at = 5 WHERE id IN (SELECT manifest_id FROM tag WHERE name IN "
                 "('solo', 'v1'))",
                 NULL, NULL, NULL);

    evict_mirror_t ms[] = {{"hub", 0, 86400}};
    gc_options_t o = {86400, 0, 1, on_item, NULL, NULL, ms, 1};
    gc_stats_t st = {0};
    ok(gc_run(m, root, &o, &st) == 0, "a dry run with max_age 1d");
    char dry[4096];
    snprintf(dry, sizeof(dry), "%s", reported);
    ok(st.images == 2 && count(h, "SELECT count(*) FROM manifest") == 8,
       "... would evict 2 images (solo, index 1), removes nothing (%llu)", (unsigned long long)st.images);
    reported[0] = '\0';
    memset(&st, 0, sizeof(st));
    o.dry_run = 0;
    ok(gc_run(m, root, &o, &st) == 0, "the real run");
    ok(strcmp(dry, reported) == 0, "... reports what the dry run did");
    ok(st.images == 2 && st.image_manifests == 3,
       "... evicts 2 images: solo, index 1 with its referrer (3 manifests), not c1 nor t");
    ok(count(h, "SELECT count(*) FROM tag t JOIN repository r ON r.id = t.repository_id WHERE r.name = 'hub/x' AND "
                "t.name IN ('1', 'solo')") == 0 &&
           count(h, "SELECT count(*) FROM tag WHERE name IN ('2', 't', 'v1')") == 3,
       "... tags 1 and solo are gone; 2, and t (its own tag: an image of its own) stay");
    ok(count(h, "SELECT count(*) FROM manifest m JOIN repository r ON r.id = m.repository_id AND r.name = 'hub/x'") ==
           4,
       "... hub/x keeps index 2, c1 (index 2 lists it), c3, t");
    ok(count(h, "SELECT count(*) FROM manifest m JOIN repository r ON r.id = m.repository_id AND r.name = "
                "'local/x'") == 1,
       "... the hosted local/x, last pulled longer ago than anything, is untouched");
    ok(count(h, "SELECT count(*) FROM repository_blob l JOIN repository r ON r.id = l.repository_id AND r.name = "
                "'hub/x'") == 3,
       "... hub/x's links to solo's layer and the referrer's blob went in the same run; c1's, c3's, t's stay");
    reported[0] = '\0';
    memset(&st, 0, sizeof(st));
    ok(gc_run(m, root, &o, &st) == 0 && st.images == 1 && strstr(reported, "image hub/x@") != NULL &&
           strstr(reported, " t max_age ") != NULL,
       "the next run evicts t, an image of its own now, last pulled 10 days ago");
    ok(count(h, "SELECT count(*) FROM manifest") == 4, "... hub/x keeps index 2, c1, c3; local/x its manifest");
    metastore_writer_stop(w);
    metastore_close(m);
}

int main(void)
{
    snprintf(root, sizeof(root), "/tmp/berth-evict-test-XXXXXX");
    if (mkdtemp(root) == NULL)
        return 2;
    test_mirror_of();
    test_images();
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    if (system(cmd) != 0)
        return 2;
    return tap_done();
}
