#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/db.h"
#include "store/metastore.h"
#include "util/log.h"
#include "util/status.h"
#include "util/time.h"

/* Statements of this module (store/db.h prepares each once per connection). */
enum {
    Q_BLOB_GET,
    Q_MANIFEST_BY_TAG,
    Q_MANIFEST_BY_DIGEST,
    Q_REPO_ID,
    Q_REPO_INSERT,
    Q_TAGS,
    Q_CATALOG,
    Q_BLOB_INSERT,
    Q_BLOB_SIZE,
    Q_REPO_BLOB_INSERT,
    Q_HAS_REPO_BLOB,
    Q_HAS_MANIFEST,
    Q_MANIFEST_INSERT,
    Q_MANIFEST_ID,
    Q_REF_INSERT,
    Q_TAG_UPSERT,
    Q_MANIFEST_DELETE,
    Q_TAG_DELETE,
    Q_BLOB_UNLINK,
    Q_BLOB_REPOS,
    Q_REFERRERS,
    Q_REFERRERS_TYPE,
    Q_REPO_ORIGIN,
    Q_TAG_CHECKED,
    Q_TAG_PULLED,
    Q_MANIFEST_PULLED,
    Q_REPO_HOSTED,
    Q_TAG_TARGET,
    Q__COUNT
};

static db_query_t queries[Q__COUNT] = {
    [Q_TAG_TARGET] = {"SELECT m.digest, m.media_type, m.size FROM repository r JOIN tag t ON t.repository_id = r.id "
                      "JOIN manifest m ON m.id = t.manifest_id WHERE r.name = ?1 AND t.name = ?2"},
    [Q_BLOB_GET] = {"SELECT b.size FROM repository r JOIN repository_blob rb ON rb.repository_id = r.id "
                    "JOIN blob b ON b.digest = rb.digest WHERE r.name = ?1 AND rb.digest = ?2"},
    [Q_MANIFEST_BY_TAG] = {"SELECT m.digest, m.media_type, m.content, m.pulled_at, t.checked_at FROM repository r "
                           "JOIN tag t ON t.repository_id = r.id "
                           "JOIN manifest m ON m.id = t.manifest_id WHERE r.name = ?1 AND t.name = ?2"},
    [Q_MANIFEST_BY_DIGEST] = {"SELECT m.digest, m.media_type, m.content, m.pulled_at FROM repository r "
                              "JOIN manifest m ON m.repository_id = r.id WHERE r.name = ?1 AND m.digest = ?2"},
    [Q_REPO_ID] = {"SELECT id FROM repository WHERE name = ?1"},
    [Q_REPO_INSERT] = {"INSERT INTO repository(name, created_at, public, mirror) VALUES (?1, ?2, ?3, ?4)"},
    [Q_TAGS] = {"SELECT t.name FROM tag t WHERE t.repository_id = ?1 AND t.name > ?2 ORDER BY t.name LIMIT ?3"},
    [Q_CATALOG] = {"SELECT name FROM repository WHERE name > ?1 ORDER BY name LIMIT ?2"},
    [Q_BLOB_SIZE] = {"SELECT size FROM blob WHERE digest = ?1"},
    [Q_BLOB_INSERT] = {"INSERT INTO blob(digest, size, created_at) VALUES (?1, ?2, ?3) ON CONFLICT(digest) DO NOTHING"},
    /* a blob pushed (or mounted) again restarts its link's grace: the manifest that needs it is on its way */
    [Q_REPO_BLOB_INSERT] = {"INSERT INTO repository_blob(repository_id, digest, created_at) VALUES (?1, ?2, ?3) "
                            "ON CONFLICT DO UPDATE SET created_at = excluded.created_at"},
    [Q_HAS_REPO_BLOB] = {"SELECT b.size FROM repository_blob rb JOIN blob b ON b.digest = rb.digest "
                         "WHERE rb.repository_id = ?1 AND rb.digest = ?2"},
    [Q_HAS_MANIFEST] = {"SELECT size FROM manifest WHERE repository_id = ?1 AND digest = ?2"},
    [Q_MANIFEST_INSERT] =
        {"INSERT INTO manifest(repository_id, digest, media_type, size, content, artifact_type, subject, "
         "annotations, created_at, pulled_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
         "ON CONFLICT(repository_id, digest) DO NOTHING"},
    [Q_MANIFEST_ID] = {"SELECT id FROM manifest WHERE repository_id = ?1 AND digest = ?2"},
    [Q_REF_INSERT] = {"INSERT INTO manifest_ref(manifest_id, kind, digest, size, media_type, foreign_layer) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)"},
    [Q_TAG_UPSERT] =
        {"INSERT INTO tag(repository_id, name, manifest_id, updated_at, checked_at) VALUES (?1, ?2, ?3, ?4, ?5) "
         "ON CONFLICT(repository_id, name) DO UPDATE SET manifest_id = excluded.manifest_id, "
         "updated_at = CASE WHEN manifest_id = excluded.manifest_id THEN updated_at ELSE excluded.updated_at END, "
         "checked_at = excluded.checked_at"},
    [Q_MANIFEST_DELETE] = {"DELETE FROM manifest WHERE repository_id = (SELECT id FROM repository WHERE name = ?1) "
                           "AND digest = ?2"},
    [Q_TAG_DELETE] =
        {"DELETE FROM tag WHERE repository_id = (SELECT id FROM repository WHERE name = ?1) AND name = ?2"},
    [Q_BLOB_UNLINK] = {"DELETE FROM repository_blob WHERE repository_id = (SELECT id FROM repository WHERE name = ?1) "
                       "AND digest = ?2"},
    [Q_BLOB_REPOS] = {"SELECT r.name, b.size FROM blob b JOIN repository_blob rb ON rb.digest = b.digest "
                      "JOIN repository r ON r.id = rb.repository_id WHERE b.digest = ?1 ORDER BY r.name LIMIT ?2"},
    [Q_REFERRERS] =
        {"SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations FROM repository r "
         "JOIN manifest m ON m.repository_id = r.id WHERE r.name = ?1 AND m.subject = ?2 ORDER BY m.digest"},
    [Q_REFERRERS_TYPE] = {"SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations FROM repository r "
                          "JOIN manifest m ON m.repository_id = r.id WHERE r.name = ?1 AND m.subject = ?2 "
                          "AND m.artifact_type = ?3 ORDER BY m.digest"},
    [Q_REPO_ORIGIN] = {"SELECT mirror FROM repository WHERE name = ?1"},
    [Q_TAG_CHECKED] =
        {"UPDATE tag SET checked_at = ?3 WHERE repository_id = (SELECT id FROM repository WHERE name = ?1) "
         "AND name = ?2"},
    /* a revalidated tag was pulled */
    [Q_TAG_PULLED] =
        {"UPDATE manifest SET pulled_at = ?3 WHERE id = (SELECT t.manifest_id FROM tag t JOIN repository r "
         "ON r.id = t.repository_id WHERE r.name = ?1 AND t.name = ?2) AND pulled_at < ?3"},
    [Q_MANIFEST_PULLED] = {"UPDATE manifest SET pulled_at = ?3 WHERE repository_id = (SELECT id FROM repository WHERE "
                           "name = ?1 AND mirror = 1) AND digest = ?2 AND pulled_at < ?3"},
    [Q_REPO_HOSTED] = {"UPDATE repository SET mirror = 0 WHERE name = ?1 AND mirror = 1"},
};

int metastore_new_repos_public;

static sqlite3_stmt *stmt(metastore_t *m, int q)
{
    return db_stmt(m, &queries[q]);
}

metastore_t *metastore_open(const char *path, int migrate)
{
    return db_open(path, migrate);
}

void metastore_close(metastore_t *m)
{
    db_close(m);
}

int metastore_schema_version(metastore_t *m)
{
    return db_schema_version(m);
}

int metastore_begin(metastore_t *m, int write, const char **err)
{
    return db_begin(m, write, err);
}

int metastore_commit(metastore_t *m, const char **err)
{
    return db_commit(m, err);
}

void metastore_rollback(metastore_t *m)
{
    db_rollback(m);
}

int metastore_ping(metastore_t *m)
{
    return db_schema_version(m) > 0 ? 0 : -1;
}

/*
 * The read cache (store/db.h): a loop's connection remembers the manifests, blob sizes and repository origins it
 * read, so that the hot path of a pull (manifest by tag, HEAD blob) costs no SQLite query, and none of its file
 * locking, while nothing is written. A client never reads back older data than it wrote: the writer moves the
 * generation before it answers.
 */
void metastore_enable_cache(metastore_t *m)
{
    db_enable_cache(m);
}

uint64_t metastore_generation(metastore_t *m)
{
    return db_generation(m);
}

int metastore_blob_get(metastore_t *m, const char *repo, const digest_t *d, uint64_t *size)
{
    uint64_t gen;
    cache_t *c = db_cache(m, &gen);
    cache_key_t k = {0};
    const cache_value_t *hit;
    if (c != NULL) {
        k = cache_key('b', repo, d->str);
        if ((hit = cache_get(c, gen, &k)) != NULL) {
            *size = (uint64_t)hit->num[0];
            return 0;
        }
    }
    sqlite3_stmt *s = stmt(m, Q_BLOB_GET);
    if (s == NULL)
        return BERTH_ERROR;
    db_bind_text(s, 1, repo);
    db_bind_text(s, 2, d->str);
    int rc = db_step(m, s);
    if (rc == 1) {
        cache_value_t *v;
        *size = (uint64_t)sqlite3_column_int64(s, 0);
        if (c != NULL && (v = cache_put(c, gen, &k, NULL, 0)) != NULL)
            v->num[0] = (int64_t)*size;
        rc = 0;
    } else if (rc == 0) {
        rc = BERTH_ENOTFOUND;
    }
    db_done(m, s);
    return rc;
}

/* A cached manifest is one block: the digest, the media type with its NUL, the content at num[2]; num[0] is
 * checked_at, num[1] the content's size, num[3] pulled_at. */
static void manifest_lend(const cache_value_t *v, metastore_manifest_t *out)
{
    char *p = v->data;
    memcpy(&out->digest, p, sizeof(digest_t));
    out->media_type = p + sizeof(digest_t);
    out->content = p + v->num[2];
    out->size = (size_t)v->num[1];
    out->checked_at = v->num[0];
    out->pulled_at = v->num[3];
    out->lent = 1;
}

/* The manifest in the row `s` is at (digest, media type, content, pulled_at[, checked_at]). */
static int manifest_read(sqlite3_stmt *s, int by_tag, metastore_manifest_t *out)
{
    const char *dg = (const char *)sqlite3_column_text(s, 0);
    if (digest_parse(&out->digest, dg, strlen(dg)) != DIGEST_OK) {
        log_error("database holds a bad digest: %s", dg);
        return BERTH_ERROR;
    }
    out->pulled_at = sqlite3_column_int64(s, 3);
    out->checked_at = by_tag ? sqlite3_column_int64(s, 4) : 0;
    out->size = (size_t)sqlite3_column_bytes(s, 2);
    out->lent = 0;
    return 0;
}

/* Copy the row's media type and content: into one cached block lent to *out, or into malloc'd strings of its own. */
static void manifest_copy(sqlite3_stmt *s, cache_t *c, uint64_t gen, const cache_key_t *k, metastore_manifest_t *out)
{
    const char *mt = (const char *)sqlite3_column_text(s, 1);
    size_t mtlen = strlen(mt) + 1, off = sizeof(digest_t) + mtlen;
    if (c != NULL && off + out->size <= DB_CACHE_DATA_MAX) {
        char *p = malloc(off + out->size);
        cache_value_t *v;
        memcpy(p, &out->digest, sizeof(digest_t));
        memcpy(p + sizeof(digest_t), mt, mtlen);
        memcpy(p + off, sqlite3_column_blob(s, 2), out->size);
        if ((v = cache_put(c, gen, k, p, off + out->size)) != NULL) {
            v->num[0] = out->checked_at;
            v->num[1] = (int64_t)out->size;
            v->num[2] = (int64_t)off;
            v->num[3] = out->pulled_at;
            manifest_lend(v, out);
            return;
        }
        free(p);
    }
    out->media_type = strdup(mt);
    out->content = malloc(out->size ? out->size : 1);
    memcpy(out->content, sqlite3_column_blob(s, 2), out->size);
}

int metastore_manifest_get(metastore_t *m, const char *repo, const char *tag, const digest_t *d,
                           metastore_manifest_t *out)
{
    int q = tag ? Q_MANIFEST_BY_TAG : Q_MANIFEST_BY_DIGEST;
    const char *ref = tag ? tag : d->str;
    uint64_t gen;
    cache_t *c = db_cache(m, &gen);
    cache_key_t k = {0};
    const cache_value_t *hit;
    if (c != NULL) {
        k = cache_key(tag ? 't' : 'd', repo, ref);
        if ((hit = cache_get(c, gen, &k)) != NULL) {
            manifest_lend(hit, out); /* valid until the next call on this connection */
            return 0;
        }
    }
    sqlite3_stmt *s = stmt(m, q);
    if (s == NULL)
        return BERTH_ERROR;
    db_bind_text(s, 1, repo);
    db_bind_text(s, 2, ref);
    int rc = db_step(m, s);
    if (rc == 1 && (rc = manifest_read(s, tag != NULL, out)) == 0)
        manifest_copy(s, c, gen, &k, out);
    else if (rc == 0)
        rc = BERTH_ENOTFOUND;
    db_done(m, s);
    return rc;
}

void metastore_manifest_dispose(metastore_manifest_t *mf)
{
    if (!mf->lent) {
        free(mf->media_type);
        free(mf->content);
    }
    mf->media_type = NULL;
    mf->content = NULL;
}

int metastore_tag_target(metastore_t *m, const char *repo, const char *tag, digest_t *d, char *media_type, size_t mtlen,
                         int64_t *size)
{
    sqlite3_stmt *s = stmt(m, Q_TAG_TARGET);
    if (s == NULL)
        return BERTH_ERROR;
    db_bind_text(s, 1, repo);
    db_bind_text(s, 2, tag);
    int rc = db_step(m, s);
    if (rc == 1) {
        const char *str = (const char *)sqlite3_column_text(s, 0);
        rc = digest_parse(d, str, strlen(str)) == DIGEST_OK ? 0 : BERTH_ERROR;
        if (media_type != NULL)
            snprintf(media_type, mtlen, "%s", (const char *)sqlite3_column_text(s, 1));
        if (size != NULL)
            *size = sqlite3_column_int64(s, 2);
    } else if (rc == 0) {
        rc = BERTH_ENOTFOUND;
    }
    db_done(m, s);
    return rc;
}

static int repo_id(metastore_t *m, const char *repo, int64_t *id)
{
    sqlite3_stmt *s = stmt(m, Q_REPO_ID);
    if (s == NULL)
        return BERTH_ERROR;
    db_bind_text(s, 1, repo);
    int rc = db_step(m, s);
    if (rc == 1) {
        *id = sqlite3_column_int64(s, 0);
        rc = 0;
    } else if (rc == 0) {
        rc = BERTH_ENOTFOUND;
    }
    db_done(m, s);
    return rc;
}

static int list_names(metastore_t *m, sqlite3_stmt *s, metastore_name_cb cb, void *ctx)
{
    int n = 0, rc;
    while ((rc = db_step(m, s)) == 1) {
        cb(ctx, (const char *)sqlite3_column_text(s, 0));
        ++n;
    }
    db_done(m, s);
    return rc < 0 ? rc : n;
}

int metastore_tags_list(metastore_t *m, const char *repo, const char *last, long limit, metastore_name_cb cb, void *ctx)
{
    int64_t id;
    int rc = repo_id(m, repo, &id);
    if (rc != 0)
        return rc;
    sqlite3_stmt *s = stmt(m, Q_TAGS);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, id);
    db_bind_text(s, 2, last ? last : "");
    sqlite3_bind_int64(s, 3, limit);
    return list_names(m, s, cb, ctx);
}

int metastore_catalog(metastore_t *m, const char *last, long limit, metastore_name_cb cb, void *ctx)
{
    sqlite3_stmt *s = stmt(m, Q_CATALOG);
    if (s == NULL)
        return BERTH_ERROR;
    db_bind_text(s, 1, last ? last : "");
    sqlite3_bind_int64(s, 2, limit);
    return list_names(m, s, cb, ctx);
}

/* The id of `repo`, creating it (pushed here, or by a mirror: then public whatever the mode) if absent. */
static int repo_ensure(metastore_t *m, const char *repo, int mirror, int64_t *id)
{
    int rc = repo_id(m, repo, id);
    if (rc != BERTH_ENOTFOUND)
        return rc;
    sqlite3_stmt *s = stmt(m, Q_REPO_INSERT);
    if (s == NULL)
        return BERTH_ERROR;
    db_bind_text(s, 1, repo);
    sqlite3_bind_int64(s, 2, time_now_s());
    sqlite3_bind_int(s, 3, mirror || metastore_new_repos_public);
    sqlite3_bind_int(s, 4, mirror);
    if (db_run(m, s) != 0)
        return BERTH_ERROR;
    *id = db_last_id(m);
    return 0;
}

static int blob_link(metastore_t *m, const char *repo, int mirror, const digest_t *d, uint64_t size)
{
    int64_t id, now = time_now_s();
    if (repo_ensure(m, repo, mirror, &id) != 0)
        return BERTH_ERROR;
    sqlite3_stmt *s = stmt(m, Q_BLOB_INSERT);
    if (s == NULL)
        return BERTH_ERROR;
    db_bind_text(s, 1, d->str);
    sqlite3_bind_int64(s, 2, (int64_t)size);
    sqlite3_bind_int64(s, 3, now);
    if (db_run(m, s) != 0)
        return BERTH_ERROR;
    if ((s = stmt(m, Q_REPO_BLOB_INSERT)) == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, id);
    db_bind_text(s, 2, d->str);
    sqlite3_bind_int64(s, 3, now);
    return db_run(m, s) != 0 ? BERTH_ERROR : 0;
}

int metastore_blob_link(metastore_t *m, const char *repo, const digest_t *d, uint64_t size)
{
    return blob_link(m, repo, 0, d, size);
}

int metastore_blob_mount(metastore_t *m, const char *repo, const digest_t *d)
{
    sqlite3_stmt *s = stmt(m, Q_BLOB_SIZE);
    if (s == NULL)
        return BERTH_ERROR;
    db_bind_text(s, 1, d->str);
    int rc = db_step(m, s);
    int64_t size = rc == 1 ? sqlite3_column_int64(s, 0) : 0;
    db_done(m, s);
    if (rc != 1) /* collected since the caller saw it in a repository */
        return rc == 0 ? BERTH_ENOTFOUND : rc;
    return blob_link(m, repo, 0, d, (uint64_t)size);
}

int metastore_mirror_blob_link(metastore_t *m, const char *repo, const digest_t *d, uint64_t size)
{
    return blob_link(m, repo, 1, d, size);
}

/* 1 if the statement q with (id, digest) returns a row, 0 if not, BERTH_ERROR. */
/* 1 with the object's size in *size, 0 if it is not there */
static int exists(metastore_t *m, int q, int64_t id, const char *digest, int64_t *size)
{
    sqlite3_stmt *s = stmt(m, q);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, id);
    db_bind_text(s, 2, digest);
    int rc = db_step(m, s);
    if (rc == 1)
        *size = sqlite3_column_int64(s, 0);
    db_done(m, s);
    return rc;
}

/* The manifest's row id: inserted with its references, or the one already there (a push of the same bytes). */
static int manifest_row(metastore_t *m, int64_t rid, const digest_t *d, const manifest_t *mf, const void *body,
                        size_t len, int64_t now, int64_t pulled_at, int64_t *mid)
{
    sqlite3_stmt *s = stmt(m, Q_MANIFEST_INSERT);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, rid);
    db_bind_text(s, 2, d->str);
    db_bind_text(s, 3, mf->media_type);
    sqlite3_bind_int64(s, 4, (int64_t)len);
    sqlite3_bind_blob(s, 5, body, (int)len, SQLITE_STATIC);
    db_bind_text(s, 6, mf->artifact_type);
    db_bind_text(s, 7, mf->has_subject ? mf->subject.str : NULL);
    db_bind_text(s, 8, mf->annotations_json);
    sqlite3_bind_int64(s, 9, now);
    sqlite3_bind_int64(s, 10, pulled_at);
    if (db_run(m, s) != 0)
        return BERTH_ERROR;
    if (db_changes(m) == 1) {
        *mid = db_last_id(m);
        for (size_t i = 0; i < mf->nrefs; ++i) {
            const manifest_ref_t *r = &mf->refs[i];
            if ((s = stmt(m, Q_REF_INSERT)) == NULL)
                return BERTH_ERROR;
            sqlite3_bind_int64(s, 1, *mid);
            sqlite3_bind_int(s, 2, r->kind);
            db_bind_text(s, 3, r->digest.str);
            sqlite3_bind_int64(s, 4, r->size);
            db_bind_text(s, 5, r->media_type);
            sqlite3_bind_int(s, 6, r->foreign);
            if (db_run(m, s) != 0)
                return BERTH_ERROR;
        }
        return 0;
    }
    if ((s = stmt(m, Q_MANIFEST_ID)) == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, rid);
    db_bind_text(s, 2, d->str);
    int rc = db_step(m, s);
    if (rc == 1)
        *mid = sqlite3_column_int64(s, 0);
    else if (rc == 0)
        rc = db_step_error(m, s); /* inserted or there: it cannot be missing */
    db_done(m, s);
    return rc == 1 ? 0 : rc;
}

/* A push checks that everything the manifest references is here; a mirror (checked_at != 0: when the upstream
 * served it) stores what the upstream serves and fetches the rest when asked for it. */
static int manifest_put(metastore_t *m, const char *repo, const digest_t *d, const manifest_t *mf, const void *body,
                        size_t len, const char *const *tags, size_t ntags, int64_t checked_at, int sparse,
                        metastore_bad_ref_t *bad)
{
    int64_t rid, mid = 0, now = time_now_s();
    if (repo_ensure(m, repo, checked_at != 0, &rid) != 0)
        return BERTH_ERROR;
    for (size_t i = 0; i < mf->nrefs && checked_at == 0; ++i) {
        const manifest_ref_t *r = &mf->refs[i];
        if (r->foreign)
            continue;
        int64_t size = -1;
        int rc = exists(m, r->kind == REF_MANIFEST ? Q_HAS_MANIFEST : Q_HAS_REPO_BLOB, rid, r->digest.str, &size);
        if (rc < 0)
            return rc;
        if (rc == 0 && sparse)
            continue;
        if (rc == 0 || size != r->size) {
            *bad = (metastore_bad_ref_t){r->digest, r->size, size};
            return rc == 0 ? BERTH_EMISSING : BERTH_ESIZE;
        }
    }
    if (manifest_row(m, rid, d, mf, body, len, now, checked_at != 0 ? now : 0, &mid) != 0)
        return BERTH_ERROR;
    if (checked_at != 0 && metastore_manifest_pulled(m, repo, d, now) < 0) /* fetched again: pulled */
        return BERTH_ERROR;
    for (size_t i = 0; i < ntags; ++i) {
        sqlite3_stmt *s = stmt(m, Q_TAG_UPSERT);
        if (s == NULL)
            return BERTH_ERROR;
        sqlite3_bind_int64(s, 1, rid);
        db_bind_text(s, 2, tags[i]);
        sqlite3_bind_int64(s, 3, mid);
        sqlite3_bind_int64(s, 4, now);
        sqlite3_bind_int64(s, 5, checked_at);
        if (db_run(m, s) != 0)
            return BERTH_ERROR;
    }
    return 0;
}

int metastore_manifest_put(metastore_t *m, const char *repo, const digest_t *d, const manifest_t *mf, const void *body,
                           size_t len, const char *const *tags, size_t ntags, int sparse, metastore_bad_ref_t *bad)
{
    return manifest_put(m, repo, d, mf, body, len, tags, ntags, 0, sparse, bad);
}

int metastore_mirror_manifest_put(metastore_t *m, const char *repo, const digest_t *d, const manifest_t *mf,
                                  const void *body, size_t len, const char *tag, int64_t checked_at)
{
    metastore_bad_ref_t unused;
    return manifest_put(m, repo, d, mf, body, len, &tag, tag != NULL, checked_at > 0 ? checked_at : 1, 0, &unused);
}

int metastore_tag_checked(metastore_t *m, const char *repo, const char *tag, int64_t checked_at)
{
    sqlite3_stmt *s = stmt(m, Q_TAG_CHECKED);
    if (s == NULL)
        return BERTH_ERROR;
    db_bind_text(s, 1, repo);
    db_bind_text(s, 2, tag);
    sqlite3_bind_int64(s, 3, checked_at);
    if (db_run(m, s) != 0)
        return BERTH_ERROR;
    if (db_changes(m) == 0)
        return BERTH_ENOTFOUND;
    if ((s = stmt(m, Q_TAG_PULLED)) == NULL)
        return BERTH_ERROR;
    db_bind_text(s, 1, repo);
    db_bind_text(s, 2, tag);
    sqlite3_bind_int64(s, 3, time_now_s());
    return db_run(m, s) != 0 ? BERTH_ERROR : 0;
}

int metastore_manifest_pulled(metastore_t *m, const char *repo, const digest_t *d, int64_t pulled_at)
{
    sqlite3_stmt *s = stmt(m, Q_MANIFEST_PULLED);
    if (s == NULL)
        return BERTH_ERROR;
    db_bind_text(s, 1, repo);
    db_bind_text(s, 2, d->str);
    sqlite3_bind_int64(s, 3, pulled_at);
    return db_run(m, s) != 0 ? BERTH_ERROR : db_changes(m);
}

/* Asked once or twice per request a mirror may serve: cached like the manifests (a repository not there too). */
int metastore_repo_origin(metastore_t *m, const char *repo)
{
    uint64_t gen;
    cache_t *c = db_cache(m, &gen);
    cache_key_t k = {0};
    const cache_value_t *hit;
    cache_value_t *v;
    if (c != NULL) {
        k = cache_key('o', repo, "");
        if ((hit = cache_get(c, gen, &k)) != NULL)
            return (int)hit->num[0];
    }
    sqlite3_stmt *s = stmt(m, Q_REPO_ORIGIN);
    if (s == NULL)
        return BERTH_ERROR;
    db_bind_text(s, 1, repo);
    int rc = db_step(m, s);
    rc = rc == 1 ? sqlite3_column_int(s, 0) != 0 : rc == 0 ? BERTH_ENOTFOUND : BERTH_ERROR;
    db_done(m, s);
    if (c != NULL && rc != BERTH_ERROR && (v = cache_put(c, gen, &k, NULL, 0)) != NULL)
        v->num[0] = rc;
    return rc;
}

int metastore_repo_hosted(metastore_t *m, const char *repo)
{
    sqlite3_stmt *s = stmt(m, Q_REPO_HOSTED);
    if (s == NULL)
        return BERTH_ERROR;
    db_bind_text(s, 1, repo);
    return db_run(m, s) != 0 ? BERTH_ERROR : db_changes(m);
}

/* Run a DELETE of (repo, key): 0 if it removed a row, BERTH_ENOTFOUND if none. */
static int delete_one(metastore_t *m, int q, const char *repo, const char *key)
{
    sqlite3_stmt *s = stmt(m, q);
    if (s == NULL)
        return BERTH_ERROR;
    db_bind_text(s, 1, repo);
    db_bind_text(s, 2, key);
    if (db_run(m, s) != 0)
        return BERTH_ERROR;
    return db_changes(m) > 0 ? 0 : BERTH_ENOTFOUND;
}

int metastore_manifest_delete(metastore_t *m, const char *repo, const digest_t *d)
{
    return delete_one(m, Q_MANIFEST_DELETE, repo, d->str);
}

int metastore_tag_delete(metastore_t *m, const char *repo, const char *tag)
{
    return delete_one(m, Q_TAG_DELETE, repo, tag);
}

int metastore_blob_unlink(metastore_t *m, const char *repo, const digest_t *d)
{
    return delete_one(m, Q_BLOB_UNLINK, repo, d->str);
}

int metastore_blob_repos(metastore_t *m, const digest_t *d, long limit, uint64_t *size,
                         void (*cb)(void *ctx, const char *repo), void *ctx)
{
    sqlite3_stmt *s = stmt(m, Q_BLOB_REPOS);
    if (s == NULL)
        return BERTH_ERROR;
    db_bind_text(s, 1, d->str);
    sqlite3_bind_int64(s, 2, limit);
    int n = 0, rc;
    while ((rc = db_step(m, s)) == 1) {
        *size = (uint64_t)sqlite3_column_int64(s, 1);
        cb(ctx, (const char *)sqlite3_column_text(s, 0));
        ++n;
    }
    db_done(m, s);
    return rc < 0 ? rc : n;
}

int metastore_referrers(metastore_t *m, const char *repo, const digest_t *subject, const char *artifact_type,
                        void (*cb)(void *ctx, const metastore_referrer_t *r), void *ctx)
{
    sqlite3_stmt *s = stmt(m, artifact_type ? Q_REFERRERS_TYPE : Q_REFERRERS);
    if (s == NULL)
        return BERTH_ERROR;
    db_bind_text(s, 1, repo);
    db_bind_text(s, 2, subject->str);
    if (artifact_type)
        db_bind_text(s, 3, artifact_type);
    int n = 0, rc;
    while ((rc = db_step(m, s)) == 1) {
        metastore_referrer_t r = {
            (const char *)sqlite3_column_text(s, 0),
            (const char *)sqlite3_column_text(s, 1),
            (const char *)sqlite3_column_text(s, 3),
            (const char *)sqlite3_column_text(s, 4),
            sqlite3_column_int64(s, 2),
        };
        cb(ctx, &r);
        ++n;
    }
    db_done(m, s);
    return rc < 0 ? rc : n;
}

/* ---- the writer thread (store/db.h) ---- */

metastore_writer_t *metastore_writer_start(const char *path)
{
    return db_writer_start(path);
}

int metastore_write(metastore_writer_t *w, metastore_write_fn fn, void *arg)
{
    return db_write(w, fn, arg);
}

int metastore_write_synced(metastore_writer_t *w, metastore_write_fn fn, void *arg, const char *dir)
{
    return db_write_synced(w, fn, arg, dir);
}

void metastore_writer_stop(metastore_writer_t *w)
{
    db_writer_stop(w);
}
