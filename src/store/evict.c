#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/db.h"
#include "store/evict.h"
#include "util/log.h"
#include "util/status.h"
#include "util/time.h"

#define BATCH_MS 25 /* a write transaction evicts for this long at most: pushes and pulls' writes wait no longer */

/*
 * The repositories each mirror holds, classified once per run (by prefix, in C: as the router does) into a temporary
 * table of the collector's connection, for the queries below to join.
 */
static db_query_t q_mirror_repos = {"SELECT id, name FROM repository WHERE mirror = 1", 0};
static db_query_t q_repo_add = {"INSERT INTO temp.evict_repo VALUES (?1, ?2)", 0};
static db_query_t q_repo_clear = {"DELETE FROM temp.evict_repo", 0};

/* A manifest that is an image's top: no manifest of its repository lists it or is its subject (as in gc.c). */
#define IS_TOP(m)                                                                                                      \
    "NOT EXISTS(SELECT 1 FROM manifest_ref x JOIN manifest p ON p.id = x.manifest_id WHERE x.digest = " m ".digest "   \
    "AND x.kind = 2 AND p.repository_id = " m ".repository_id) AND (" m ".subject IS NULL OR NOT EXISTS(SELECT 1 "     \
    "FROM manifest s WHERE s.repository_id = " m ".repository_id AND s.digest = " m ".subject))"
/* What an image holds: the manifests its manifests list, and their referrers (recursive, from grp(root, id)). */
#define GROW                                                                                                           \
    " UNION SELECT g.root, c.id FROM grp g JOIN manifest p ON p.id = g.id JOIN manifest_ref x ON "                     \
    "x.manifest_id = p.id AND x.kind = 2 JOIN manifest c ON c.repository_id = p.repository_id AND c.digest = x.digest" \
    " UNION SELECT g.root, c.id FROM grp g JOIN manifest p ON p.id = g.id JOIN manifest c ON "                         \
    "c.repository_id = p.repository_id AND c.subject = p.digest"

/* A mirror's images, least recently pulled first: (top manifest, when it was last pulled). */
static db_query_t q_images = {
    "SELECT m.id, m.pulled_at FROM temp.evict_repo e JOIN manifest m ON "
    "m.repository_id = e.id WHERE e.mirror = ?1 AND " IS_TOP("m") " ORDER BY m.pulled_at, m.id",
    0};
/* What a mirror holds: the distinct blobs its repositories link, and their manifests. */
static db_query_t q_mirror_size = {
    "SELECT (SELECT COALESCE(SUM(b.size), 0) FROM blob b WHERE b.digest IN (SELECT l.digest FROM temp.evict_repo e "
    "JOIN repository_blob l ON l.repository_id = e.id WHERE e.mirror = ?1)) + (SELECT COALESCE(SUM(m.size), 0) "
    "FROM temp.evict_repo e JOIN manifest m ON m.repository_id = e.id WHERE e.mirror = ?1)",
    0};

/* In the eviction's transaction: the image's top again (still a top, of a mirrored repository), its tags ... */
static db_query_t q_top = {
    "SELECT m.repository_id, r.name, m.digest, (SELECT group_concat(name, ',') FROM (SELECT name FROM tag WHERE "
    "manifest_id = m.id ORDER BY name)), m.pulled_at FROM manifest m JOIN repository r ON r.id = m.repository_id AND "
    "r.mirror = 1 "
    "WHERE m.id = ?1 AND " IS_TOP("m"),
    0};
/* ... its manifests, the top first ... */
static db_query_t q_image = {"WITH RECURSIVE grp(root, id) AS (SELECT ?1, ?1" GROW ") "
                             "SELECT m.id, m.size FROM grp g JOIN manifest m ON m.id = g.id "
                             "ORDER BY m.id <> ?1",
                             0};
/* ... and the blobs they reference */
static db_query_t q_refs = {"SELECT DISTINCT digest FROM manifest_ref WHERE manifest_id = ?1 AND kind < 2", 0};
/* a manifest of the image that something outside it still keeps (as gc.c's q_manifest) */
static db_query_t q_kept = {
    "SELECT EXISTS(SELECT 1 FROM tag WHERE manifest_id = m.id) OR EXISTS(SELECT 1 FROM manifest_ref x JOIN manifest p "
    "ON p.id = x.manifest_id WHERE x.digest = m.digest AND x.kind = 2 AND p.repository_id = m.repository_id) OR "
    "(m.subject IS NOT NULL AND EXISTS(SELECT 1 FROM manifest s WHERE s.repository_id = m.repository_id AND "
    "s.digest = m.subject)) FROM manifest m WHERE m.id = ?1",
    0};
static db_query_t q_delete = {"DELETE FROM manifest WHERE id = ?1", 0};
/* a link no manifest of its repository references any more */
static db_query_t q_unreferenced = {"SELECT NOT EXISTS(SELECT 1 FROM manifest_ref x JOIN manifest m ON "
                                    "m.id = x.manifest_id WHERE x.digest = ?2 AND x.kind < 2 AND m.repository_id = ?1)",
                                    0};
static db_query_t q_unlink = {"DELETE FROM repository_blob WHERE repository_id = ?1 AND digest = ?2", 0};
/* the blob's size, and whether another repository of the mirror still links it */
static db_query_t q_blob_left = {
    "SELECT b.size, EXISTS(SELECT 1 FROM repository_blob l JOIN temp.evict_repo e ON e.id = l.repository_id WHERE "
    "l.digest = b.digest AND e.mirror = ?2) FROM blob b WHERE b.digest = ?1",
    0};

evict_mirror_t *evict_mirrors_new(const config_t *cfg)
{
    evict_mirror_t *v = cfg->nmirrors ? calloc(cfg->nmirrors, sizeof(*v)) : NULL;
    for (size_t i = 0; v != NULL && i < cfg->nmirrors; ++i)
        v[i] = (evict_mirror_t){cfg->mirrors[i].prefix, cfg->mirrors[i].max_size,
                                (int64_t)(cfg->mirrors[i].max_age_ms / 1000)};
    return v;
}

int evict_enabled(const evict_mirror_t *mirrors, size_t n)
{
    for (size_t i = 0; i < n; ++i)
        if (mirrors[i].max_size != 0 || mirrors[i].max_age_s != 0)
            return 1;
    return 0;
}

int evict_mirror_of(const evict_mirror_t *mirrors, size_t n, const char *name)
{
    int best = -1, all = -1;
    size_t best_len = 0;
    for (size_t i = 0; i < n; ++i) {
        size_t plen = strlen(mirrors[i].prefix);
        if (plen == 0)
            all = (int)i;
        else if (plen > best_len && strncmp(name, mirrors[i].prefix, plen) == 0 && name[plen] == '/')
            best = (int)i, best_len = plen;
    }
    return best >= 0 ? best : all;
}

typedef struct {
    int64_t id, pulled_at;
} image_t;

typedef struct {
    int64_t id, size;
    int gone;
} member_t;

typedef struct {
    db_t *db;
    const gc_options_t *o;
    gc_stats_t *st;
    int mirror;
    uint64_t size; /* the mirror's, as eviction goes */
    /* the image being evicted */
    member_t *members;
    size_t nmembers, cap;
    char (*blobs)[DIGEST_MAX_STR + 1];
    size_t nblobs, bcap;
} run_t;

/* One integer answer of `q` bound to (i1[, t2]): 0 with it in *out, BERTH_ENOTFOUND (no row), BERTH_ERROR. */
static int ask(db_t *db, db_query_t *q, int64_t i1, const char *t2, int64_t *out)
{
    sqlite3_stmt *s = db_stmt(db, q);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, i1);
    if (t2 != NULL)
        db_bind_text(s, 2, t2);
    int rc = db_step(db, s);
    if (rc == 1)
        *out = sqlite3_column_int64(s, 0);
    db_done(db, s);
    return rc == 1 ? 0 : rc == 0 ? BERTH_ENOTFOUND : rc;
}

/* Sort the mirrored repositories into temp.evict_repo by mirror. 0 or BERTH_ERROR. */
static int classify(db_t *db, const gc_options_t *o)
{
    if (db_exec(db, "CREATE TEMP TABLE IF NOT EXISTS evict_repo (id INTEGER PRIMARY KEY, mirror INTEGER NOT NULL)") !=
            0 ||
        db_exec(db, "CREATE INDEX IF NOT EXISTS temp.evict_repo_mirror ON evict_repo(mirror)") != 0)
        return BERTH_ERROR;
    sqlite3_stmt *s = db_stmt(db, &q_repo_clear);
    if (s == NULL || db_run(db, s) != 0 || (s = db_stmt(db, &q_mirror_repos)) == NULL)
        return BERTH_ERROR;
    int rc;
    while ((rc = db_step(db, s)) == 1) {
        int i = evict_mirror_of(o->mirrors, o->nmirrors, (const char *)sqlite3_column_text(s, 1));
        sqlite3_stmt *a;
        if (i < 0)
            continue;
        if ((a = db_stmt(db, &q_repo_add)) == NULL) {
            rc = BERTH_ERROR;
            break;
        }
        sqlite3_bind_int64(a, 1, sqlite3_column_int64(s, 0));
        sqlite3_bind_int(a, 2, i);
        if (db_run(db, a) != 0) {
            rc = BERTH_ERROR;
            break;
        }
    }
    db_done(db, s);
    return rc < 0 ? BERTH_ERROR : 0;
}

/* The mirror's images, least recently pulled first, into *out (malloc'd): the count or BERTH_ERROR. */
static long images_list(db_t *db, int mirror, image_t **out)
{
    sqlite3_stmt *s = db_stmt(db, &q_images);
    size_t n = 0, cap = 0;
    image_t *v = NULL;
    int rc;
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int(s, 1, mirror);
    while ((rc = db_step(db, s)) == 1) {
        if (n == cap) {
            image_t *g = realloc(v, (cap = cap ? 2 * cap : 256) * sizeof(*v));
            if (g == NULL) {
                rc = BERTH_ERROR;
                break;
            }
            v = g;
        }
        v[n].id = sqlite3_column_int64(s, 0);
        v[n++].pulled_at = sqlite3_column_int64(s, 1);
    }
    db_done(db, s);
    if (rc < 0) {
        free(v);
        return BERTH_ERROR;
    }
    *out = v;
    return (long)n;
}

static int add_blob(run_t *r, const char *digest)
{
    for (size_t i = 0; i < r->nblobs; ++i)
        if (strcmp(r->blobs[i], digest) == 0)
            return 0;
    if (r->nblobs == r->bcap) {
        void *g = realloc(r->blobs, (r->bcap = r->bcap ? 2 * r->bcap : 64) * sizeof(*r->blobs));
        if (g == NULL)
            return BERTH_ERROR;
        r->blobs = g;
    }
    snprintf(r->blobs[r->nblobs++], sizeof(r->blobs[0]), "%s", digest);
    return 0;
}

/* The image's manifests (top first) and the blobs they reference. 0 or BERTH_ERROR. */
static int image_read(run_t *r, int64_t top)
{
    sqlite3_stmt *s = db_stmt(r->db, &q_image);
    int rc;
    r->nmembers = r->nblobs = 0;
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, top);
    while ((rc = db_step(r->db, s)) == 1) {
        if (r->nmembers == r->cap) {
            void *g = realloc(r->members, (r->cap = r->cap ? 2 * r->cap : 16) * sizeof(*r->members));
            if (g == NULL) {
                rc = BERTH_ERROR;
                break;
            }
            r->members = g;
        }
        r->members[r->nmembers++] = (member_t){sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1), 0};
    }
    db_done(r->db, s);
    for (size_t i = 0; rc == 0 && i < r->nmembers; ++i) {
        if ((s = db_stmt(r->db, &q_refs)) == NULL)
            return BERTH_ERROR;
        sqlite3_bind_int64(s, 1, r->members[i].id);
        while ((rc = db_step(r->db, s)) == 1)
            if (add_blob(r, (const char *)sqlite3_column_text(s, 0)) != 0) {
                rc = BERTH_ERROR;
                break;
            }
        db_done(r->db, s);
    }
    return rc < 0 ? BERTH_ERROR : 0;
}

/*
 * Evict image `im` (in the caller's transaction) if it is still an image of a mirrored repository, not pulled since
 * it was listed. 1 if evicted, 0 if not, BERTH_ERROR.
 */
static int image_evict(run_t *r, const image_t *im, const char *why)
{
    sqlite3_stmt *s = db_stmt(r->db, &q_top);
    char repo[256] = "", digest[DIGEST_MAX_STR + 1] = "", tags[1024] = "";
    int64_t repo_id = 0, pulled_at = 0, v;
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, im->id);
    int rc = db_step(r->db, s);
    if (rc == 1) {
        const char *t = (const char *)sqlite3_column_text(s, 3);
        repo_id = sqlite3_column_int64(s, 0);
        snprintf(repo, sizeof(repo), "%s", (const char *)sqlite3_column_text(s, 1));
        snprintf(digest, sizeof(digest), "%s", (const char *)sqlite3_column_text(s, 2));
        snprintf(tags, sizeof(tags), "%s", t ? t : "");
        pulled_at = sqlite3_column_int64(s, 4);
    }
    db_done(r->db, s);
    /* gone, no longer an image's top (a new index lists it), or pulled since the list was made: left alone */
    if (rc <= 0 || pulled_at > im->pulled_at)
        return rc;
    if (image_read(r, im->id) != 0)
        return BERTH_ERROR;
    uint64_t freed = 0, manifests = 0;
    /* the top goes with its tags; then what it held and nothing else keeps, until nothing more goes */
    for (int more = 1; more;) {
        more = 0;
        for (size_t i = 0; i < r->nmembers; ++i) {
            member_t *mb = &r->members[i];
            if (mb->gone)
                continue;
            if (i > 0 && (rc = ask(r->db, &q_kept, mb->id, NULL, &v)) != 0) {
                if (rc == BERTH_ERROR)
                    return BERTH_ERROR;
                mb->gone = 1; /* went with another */
                continue;
            }
            if (i > 0 && v) /* listed by a manifest outside the image, or tagged itself */
                continue;
            if ((rc = db_run_keyed(r->db, &q_delete, mb->id, NULL)) < 0)
                return BERTH_ERROR;
            mb->gone = more = 1;
            freed += rc > 0 ? (uint64_t)mb->size : 0;
            manifests += rc > 0;
        }
    }
    /* the links no manifest of the repository references now: their blobs go in this run, not after blob_grace */
    for (size_t i = 0; i < r->nblobs; ++i) {
        const char *d = r->blobs[i];
        if (ask(r->db, &q_unreferenced, repo_id, d, &v) != 0)
            return BERTH_ERROR;
        if (!v)
            continue;
        if ((rc = db_run_keyed(r->db, &q_unlink, repo_id, d)) < 0)
            return BERTH_ERROR;
        if (rc == 0) /* never fetched */
            continue;
        sqlite3_stmt *b = db_stmt(r->db, &q_blob_left);
        if (b == NULL)
            return BERTH_ERROR;
        db_bind_text(b, 1, d);
        sqlite3_bind_int(b, 2, r->mirror);
        if ((rc = db_step(r->db, b)) == 1 && !sqlite3_column_int(b, 1))
            freed += (uint64_t)sqlite3_column_int64(b, 0);
        db_done(r->db, b);
        if (rc < 0)
            return BERTH_ERROR;
    }
    r->size = r->size > freed ? r->size - freed : 0;
    r->st->images++;
    r->st->image_manifests += manifests;
    r->st->image_bytes += freed;
    if (r->o->report != NULL) {
        gc_item_t it = {"image", repo, digest, freed, tags, why, pulled_at, r->mirror};
        r->o->report(r->o->ctx, &it);
    }
    return 1;
}

static int begin(run_t *r, int write)
{
    const char *err;
    if (r->o->dry_run || db_begin(r->db, write, &err) == 0)
        return 0;
    log_error("gc: eviction cannot lock the database: %s", err);
    return BERTH_ERROR;
}

static int commit(run_t *r)
{
    const char *err;
    if (r->o->dry_run || db_commit(r->db, &err) == 0)
        return 0;
    log_error("gc: eviction cannot commit: %s", err);
    db_rollback(r->db);
    return BERTH_ERROR;
}

/* Evict what mirror `i`'s limits say must go. 0 or BERTH_ERROR. */
static int mirror_evict(run_t *r, int64_t now)
{
    const evict_mirror_t *mr = &r->o->mirrors[r->mirror];
    image_t *v = NULL;
    int64_t size = 0;
    long n;
    int rc = 0;
    if (mr->max_size == 0 && mr->max_age_s == 0)
        return 0;
    /* the list is read in one snapshot, without the write lock; each eviction checks its image again in the write
     * transaction that removes it */
    if (begin(r, 0) != 0)
        return BERTH_ERROR;
    if ((n = images_list(r->db, r->mirror, &v)) < 0 ||
        (mr->max_size != 0 && ask(r->db, &q_mirror_size, r->mirror, NULL, &size) != 0) || commit(r) != 0) {
        if (!r->o->dry_run)
            db_rollback(r->db);
        free(v);
        return BERTH_ERROR;
    }
    r->size = (uint64_t)size;
    uint64_t t0 = 0;
    int open = 0; /* a write transaction */
    for (long i = 0; i < n; ++i) {
        const char *why = mr->max_age_s != 0 && v[i].pulled_at < now - mr->max_age_s ? "max_age"
                          : mr->max_size != 0 && r->size > mr->max_size              ? "max_size"
                                                                                     : NULL;
        if (why == NULL) /* the rest were pulled later, and the mirror is within its size */
            break;
        if (!open) {
            if ((rc = begin(r, 1)) != 0)
                break;
            open = 1;
            t0 = time_mono_ms();
        }
        if ((rc = image_evict(r, &v[i], why)) < 0)
            break;
        if (!r->o->dry_run && time_mono_ms() - t0 >= BATCH_MS) {
            open = 0;
            if ((rc = commit(r)) != 0)
                break;
            if (r->o->stop != NULL && __atomic_load_n(r->o->stop, __ATOMIC_ACQUIRE))
                break;
        }
    }
    if (open && rc < 0 && !r->o->dry_run)
        db_rollback(r->db);
    else if (open && rc >= 0)
        rc = commit(r);
    free(v);
    return rc < 0 ? BERTH_ERROR : 0;
}

int evict_run(metastore_t *db, const gc_options_t *o, gc_stats_t *st, int64_t now)
{
    if (!evict_enabled(o->mirrors, o->nmirrors))
        return 0;
    run_t r = {.db = db, .o = o, .st = st};
    const char *err = NULL;
    int rc = o->dry_run ? 0 : db_begin(db, 0, &err); /* the temporary table is the connection's own */
    if (rc == 0 && (rc = classify(db, o)) == 0 && !o->dry_run)
        rc = db_commit(db, &err);
    if (rc != 0 && !o->dry_run)
        db_rollback(db);
    for (size_t i = 0; rc == 0 && i < o->nmirrors; ++i) {
        if (o->stop != NULL && __atomic_load_n(o->stop, __ATOMIC_ACQUIRE))
            break;
        r.mirror = (int)i;
        rc = mirror_evict(&r, now);
    }
    free(r.members);
    free(r.blobs);
    if (rc != 0)
        log_error("gc: mirror cache eviction stopped on an error; the collection goes on");
    return rc;
}
