#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "store/blobstore.h"
#include "store/db.h"
#include "store/fsck.h"
#include "store/gc.h"
#include "store/upload.h"
#include "util/log.h"
#include "util/status.h"

#define PAGE 256 /* rows read per short read transaction */

enum {
    Q_QUICK_CHECK,
    Q_INTEGRITY_CHECK,
    Q_FOREIGN_KEYS,
    Q_LINKS,
    Q_TAGS,
    Q_TAG_COUNT,
    Q_MANIFESTS,
    Q_REFS,
    Q_CHILDREN,
    Q_BLOBS,
    Q_BLOB_ROW,
    Q_BLOB_LINKS,
    Q__COUNT
};

static db_query_t queries[Q__COUNT] = {
    [Q_QUICK_CHECK] = {"PRAGMA quick_check"},
    [Q_INTEGRITY_CHECK] = {"PRAGMA integrity_check"},
    /* rows whose parent is gone (tags and links have checks of their own, with better messages) */
    [Q_FOREIGN_KEYS] = {"SELECT \"table\", parent, count(*) FROM pragma_foreign_key_check "
                        "WHERE \"table\" NOT IN ('tag', 'repository_blob') GROUP BY 1, 2 ORDER BY 1, 2"},
    [Q_LINKS] = {"SELECT r.name, rb.digest FROM repository_blob rb JOIN repository r ON r.id = rb.repository_id "
                 "WHERE NOT EXISTS (SELECT 1 FROM blob b WHERE b.digest = rb.digest) ORDER BY r.name, rb.digest"},
    [Q_TAGS] = {"SELECT r.name, t.name FROM tag t JOIN repository r ON r.id = t.repository_id "
                "LEFT JOIN manifest m ON m.id = t.manifest_id "
                "WHERE m.id IS NULL OR m.repository_id != t.repository_id ORDER BY r.name, t.name"},
    [Q_TAG_COUNT] = {"SELECT count(*) FROM tag"},
    [Q_MANIFESTS] = {"SELECT m.id, r.name, m.digest, m.size, length(m.content), CASE WHEN ?3 THEN m.content END "
                     "FROM manifest m JOIN repository r ON r.id = m.repository_id WHERE m.id > ?1 "
                     "ORDER BY m.id LIMIT ?2"},
    /* a pushed manifest's config and layers: linked to its repository, with the size its descriptor gives */
    [Q_REFS] = {"SELECT r.name, m.digest, mr.kind, mr.digest, mr.size, b.size, rb.digest IS NOT NULL "
                "FROM manifest_ref mr JOIN manifest m ON m.id = mr.manifest_id "
                "JOIN repository r ON r.id = m.repository_id "
                "LEFT JOIN repository_blob rb ON rb.repository_id = m.repository_id AND rb.digest = mr.digest "
                "LEFT JOIN blob b ON b.digest = mr.digest "
                "WHERE mr.kind != 2 AND mr.foreign_layer = 0 AND r.mirror = 0 "
                "AND (rb.digest IS NULL OR b.size IS NULL OR b.size != mr.size) ORDER BY r.name, m.digest"},
    /* an index's manifests: stored in its repository, with the size its descriptor gives */
    [Q_CHILDREN] = {"SELECT r.name, m.digest, mr.digest, mr.size, c.size FROM manifest_ref mr "
                    "JOIN manifest m ON m.id = mr.manifest_id JOIN repository r ON r.id = m.repository_id "
                    "LEFT JOIN manifest c ON c.repository_id = m.repository_id AND c.digest = mr.digest "
                    "WHERE mr.kind = 2 AND r.mirror = 0 AND (c.id IS NULL OR c.size != mr.size) "
                    "ORDER BY r.name, m.digest"},
    [Q_BLOBS] = {"SELECT digest, size FROM blob WHERE digest > ?1 ORDER BY digest LIMIT ?2"},
    [Q_BLOB_ROW] = {"SELECT 1 FROM blob WHERE digest = ?1"},
    [Q_BLOB_LINKS] = {"SELECT count(*) FROM repository_blob WHERE digest = ?1"},
};

typedef struct {
    const char *root;
    const fsck_options_t *o;
    fsck_stats_t *st;
    db_t *db;
    struct timespec now;
    unsigned quarantined; /* names used under tmp/ */
} fsck_t;

static sqlite3_stmt *stmt(fsck_t *f, int q)
{
    return db_stmt(f->db, &queries[q]);
}

static const char *text(sqlite3_stmt *s, int col)
{
    const char *t = (const char *)sqlite3_column_text(s, col);
    return t ? t : "";
}

static void report(fsck_t *f, fsck_class_t cls, const char *kind, const char *subject, int removed, const char *fmt,
                   ...) __attribute__((format(printf, 6, 7)));
static void report(fsck_t *f, fsck_class_t cls, const char *kind, const char *subject, int removed, const char *fmt,
                   ...)
{
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    if (cls == FSCK_ERROR)
        f->st->errors++;
    else if (cls == FSCK_ORPHAN)
        f->st->orphans++;
    else
        f->st->pending++;
    if (removed)
        f->st->removed++;
    fsck_finding_t fd = {cls, kind, subject, detail, removed};
    if (f->o->report != NULL)
        f->o->report(f->o->ctx, &fd);
}

/* ---- hashing files ---- */

int fsck_hash_file(const char *path, digest_algo_t algo, size_t chunk, fsck_pace_fn pace, void *ctx, digest_t *out,
                   uint64_t *size)
{
    int direct = 1, rc = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
    if (fd < 0 && errno == EINVAL) { /* the file system has no O_DIRECT (tmpfs) */
        direct = 0;
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0)
        return errno == ENOENT ? BERTH_ENOTFOUND : BERTH_ERROR;
    chunk = chunk < 4096 ? 4096 : chunk & ~(size_t)4095;
    void *buf = NULL;
    if (posix_memalign(&buf, 4096, chunk) != 0) {
        close(fd);
        errno = ENOMEM;
        return BERTH_ERROR;
    }
    digest_hasher_t *h = digest_hasher_new(algo);
    uint64_t total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, chunk);
        if (n < 0 && errno == EINTR)
            continue;
        /* O_DIRECT refused at read time, or a short read left the offset unaligned: go on through the cache */
        if (direct && (n < 0 ? errno == EINVAL : (size_t)n < chunk)) {
            int fl = fcntl(fd, F_GETFL);
            if (fl >= 0 && fcntl(fd, F_SETFL, fl & ~O_DIRECT) == 0)
                direct = 0;
            if (n < 0 && direct == 0)
                continue;
        }
        if (n < 0) {
            rc = BERTH_ERROR;
            break;
        }
        if (n == 0)
            break;
        digest_hasher_update(h, buf, (size_t)n);
        total += (uint64_t)n;
        if (pace != NULL && pace(ctx, (uint64_t)n) != 0) {
            rc = BERTH_EBUSY;
            break;
        }
    }
    int e = errno;
    if (rc == 0)
        digest_hasher_final(h, out);
    digest_hasher_free(h);
    free(buf);
    close(fd);
    *size = total;
    errno = e;
    return rc;
}

/* ---- ages ---- */

/* Milliseconds since the file last changed: its data (mtime) or its name or mode (ctime: rename() sets it). */
static uint64_t age_ms(const fsck_t *f, const struct stat *st)
{
    struct timespec t = st->st_mtim;
    if (st->st_ctim.tv_sec > t.tv_sec || (st->st_ctim.tv_sec == t.tv_sec && st->st_ctim.tv_nsec > t.tv_nsec))
        t = st->st_ctim;
    int64_t ms = (int64_t)(f->now.tv_sec - t.tv_sec) * 1000 + (f->now.tv_nsec - t.tv_nsec) / 1000000;
    return ms > 0 ? (uint64_t)ms : 0;
}

/* "3d", "5h", "12m", "40s": roughly, for messages. */
static const char *age_str(uint64_t ms, char *buf, size_t len)
{
    uint64_t s = ms / 1000;
    if (s >= 2 * 86400)
        snprintf(buf, len, "%llud", (unsigned long long)(s / 86400));
    else if (s >= 2 * 3600)
        snprintf(buf, len, "%lluh", (unsigned long long)(s / 3600));
    else if (s >= 2 * 60)
        snprintf(buf, len, "%llum", (unsigned long long)(s / 60));
    else
        snprintf(buf, len, "%llus", (unsigned long long)s);
    return buf;
}

/* ---- the database ---- */

static int check_database(fsck_t *f)
{
    sqlite3_stmt *s = stmt(f, f->o->verify ? Q_INTEGRITY_CHECK : Q_QUICK_CHECK);
    int rc;
    if (s == NULL)
        return BERTH_ERROR;
    while ((rc = db_step(f->db, s)) == 1)
        if (strcmp(text(s, 0), "ok") != 0)
            report(f, FSCK_ERROR, "database", "berth.db", 0, "%s", text(s, 0));
    db_done(f->db, s);
    if (rc < 0 || (s = stmt(f, Q_FOREIGN_KEYS)) == NULL)
        return BERTH_ERROR;
    while ((rc = db_step(f->db, s)) == 1)
        report(f, FSCK_ERROR, "database", text(s, 0), 0, "%lld rows refer to a %s row that does not exist",
               (long long)sqlite3_column_int64(s, 2), text(s, 1));
    db_done(f->db, s);
    return rc < 0 ? BERTH_ERROR : 0;
}

static int check_links(fsck_t *f)
{
    sqlite3_stmt *s = stmt(f, Q_LINKS);
    char subject[600];
    int rc;
    if (s == NULL)
        return BERTH_ERROR;
    while ((rc = db_step(f->db, s)) == 1) {
        snprintf(subject, sizeof(subject), "%s@%s", text(s, 0), text(s, 1));
        report(f, FSCK_ERROR, "link", subject, 0, "the repository links a blob the database does not record");
    }
    db_done(f->db, s);
    return rc < 0 ? BERTH_ERROR : 0;
}

static int check_tags(fsck_t *f)
{
    sqlite3_stmt *s = stmt(f, Q_TAG_COUNT);
    char subject[600];
    int rc;
    if (s == NULL)
        return BERTH_ERROR;
    if ((rc = db_step(f->db, s)) == 1)
        f->st->tags = (uint64_t)sqlite3_column_int64(s, 0);
    db_done(f->db, s);
    if (rc < 0 || (s = stmt(f, Q_TAGS)) == NULL)
        return BERTH_ERROR;
    while ((rc = db_step(f->db, s)) == 1) {
        snprintf(subject, sizeof(subject), "%s:%s", text(s, 0), text(s, 1));
        report(f, FSCK_ERROR, "tag", subject, 0, "points at no manifest of its repository");
    }
    db_done(f->db, s);
    return rc < 0 ? BERTH_ERROR : 0;
}

/* Every manifest's bytes against its size (and digest), a page of rows per read transaction. */
static int check_manifests(fsck_t *f)
{
    int64_t last = 0;
    char subject[600];
    for (;;) {
        sqlite3_stmt *s = stmt(f, Q_MANIFESTS);
        int rc, n = 0;
        if (s == NULL)
            return BERTH_ERROR;
        sqlite3_bind_int64(s, 1, last);
        sqlite3_bind_int(s, 2, PAGE);
        sqlite3_bind_int(s, 3, f->o->verify);
        while ((rc = db_step(f->db, s)) == 1) {
            digest_t d, got;
            const char *ds = text(s, 2);
            last = sqlite3_column_int64(s, 0);
            ++n;
            f->st->manifests++;
            snprintf(subject, sizeof(subject), "%s@%s", text(s, 1), ds);
            int64_t size = sqlite3_column_int64(s, 3), len = sqlite3_column_int64(s, 4);
            if (digest_parse(&d, ds, strlen(ds)) != DIGEST_OK) {
                report(f, FSCK_ERROR, "manifest", subject, 0, "not a digest berth knows");
                continue;
            }
            if (size != len) {
                report(f, FSCK_ERROR, "manifest", subject, 0, "%lld bytes stored, the database says %lld",
                       (long long)len, (long long)size);
                continue;
            }
            if (!f->o->verify)
                continue;
            digest_compute(&got, d.algo, sqlite3_column_blob(s, 5), (size_t)len);
            if (!digest_equal(&got, &d))
                report(f, FSCK_ERROR, "manifest", subject, 0, "its stored bytes hash to %s", got.str);
        }
        db_done(f->db, s);
        if (rc < 0)
            return BERTH_ERROR;
        if (n < PAGE)
            return 0;
    }
}

static int check_references(fsck_t *f)
{
    static const char *const kinds[] = {"config", "layer"};
    sqlite3_stmt *s = stmt(f, Q_REFS);
    char subject[600];
    int rc;
    if (s == NULL)
        return BERTH_ERROR;
    while ((rc = db_step(f->db, s)) == 1) {
        int kind = sqlite3_column_int(s, 2);
        const char *k = kind >= 0 && kind < 2 ? kinds[kind] : "blob";
        snprintf(subject, sizeof(subject), "%s@%s", text(s, 0), text(s, 1));
        if (!sqlite3_column_int(s, 6) && f->o->sparse)
            continue; /* absent from the repository, as a sparse manifest may have it */
        if (!sqlite3_column_int(s, 6))
            report(f, FSCK_ERROR, "reference", subject, 0, "its %s %s is not linked to the repository", k, text(s, 3));
        else if (sqlite3_column_type(s, 5) != SQLITE_NULL)
            report(f, FSCK_ERROR, "reference", subject, 0, "its %s %s has %lld bytes, the manifest says %lld", k,
                   text(s, 3), (long long)sqlite3_column_int64(s, 5), (long long)sqlite3_column_int64(s, 4));
        /* (linked, but no blob row: a "link" finding already) */
    }
    db_done(f->db, s);
    if (rc < 0 || (s = stmt(f, Q_CHILDREN)) == NULL)
        return BERTH_ERROR;
    while ((rc = db_step(f->db, s)) == 1) {
        snprintf(subject, sizeof(subject), "%s@%s", text(s, 0), text(s, 1));
        if (sqlite3_column_type(s, 4) == SQLITE_NULL && f->o->sparse)
            continue;
        if (sqlite3_column_type(s, 4) == SQLITE_NULL)
            report(f, FSCK_ERROR, "reference", subject, 0, "its manifest %s is not in the repository", text(s, 2));
        else
            report(f, FSCK_ERROR, "reference", subject, 0, "its manifest %s has %lld bytes, the index says %lld",
                   text(s, 2), (long long)sqlite3_column_int64(s, 4), (long long)sqlite3_column_int64(s, 3));
    }
    db_done(f->db, s);
    return rc < 0 ? BERTH_ERROR : 0;
}

/* ---- blob files the database records ---- */

/* 1 if the database records blob `digest`, 0 if not, BERTH_ERROR. */
static int blob_row(fsck_t *f, const char *digest)
{
    sqlite3_stmt *s = stmt(f, Q_BLOB_ROW);
    if (s == NULL)
        return BERTH_ERROR;
    db_bind_text(s, 1, digest);
    int rc = db_step(f->db, s);
    db_done(f->db, s);
    return rc;
}

static long long blob_links(fsck_t *f, const char *digest)
{
    sqlite3_stmt *s = stmt(f, Q_BLOB_LINKS);
    long long n = -1;
    if (s == NULL)
        return -1;
    db_bind_text(s, 1, digest);
    if (db_step(f->db, s) == 1)
        n = sqlite3_column_int64(s, 0);
    db_done(f->db, s);
    return n;
}

static void check_blob(fsck_t *f, const char *ds, int64_t size)
{
    blobstore_t bs = {(char *)f->root};
    char path[BLOBSTORE_PATH_MAX];
    const char *rel;
    digest_t d, got;
    struct stat st;
    uint64_t n;
    if (digest_parse(&d, ds, strlen(ds)) != DIGEST_OK) {
        report(f, FSCK_ERROR, "database", ds, 0, "a blob row whose digest berth does not know");
        return;
    }
    blobstore_path(&bs, &d, path, sizeof(path));
    rel = path + strlen(f->root) + 1;
    f->st->blobs++;
    f->st->blob_bytes += (uint64_t)size;
    int exists = lstat(path, &st) == 0;
    if (!exists || !S_ISREG(st.st_mode)) {
        const char *why = exists ? "not a file" : strerror(errno);
        report(f, FSCK_ERROR, "missing", d.str, 0, "%s: %s (linked to %lld repositories)", rel, why,
               blob_links(f, d.str));
        return;
    }
    if ((uint64_t)st.st_size != (uint64_t)size) {
        report(f, FSCK_ERROR, "size", d.str, 0, "%s: %llu bytes, the database says %lld", rel,
               (unsigned long long)st.st_size, (long long)size);
        return;
    }
    if (!f->o->verify)
        return;
    int rc = fsck_hash_file(path, d.algo, 1 << 20, NULL, NULL, &got, &n);
    f->st->bytes_hashed += n;
    if (rc != 0)
        report(f, FSCK_ERROR, "missing", d.str, 0, "%s: cannot read: %s", rel, strerror(errno));
    else if (!digest_equal(&got, &d))
        report(f, FSCK_ERROR, "digest", d.str, 0, "%s: its bytes hash to %s", rel, got.str);
}

/* Every blob row's file, a page of rows per read transaction (the files are checked outside it). */
static int check_blobs(fsck_t *f)
{
    char last[DIGEST_MAX_STR + 1] = "";
    struct {
        char digest[DIGEST_MAX_STR + 1];
        int64_t size;
    } *page = malloc(PAGE * sizeof(*page));
    for (;;) {
        sqlite3_stmt *s = stmt(f, Q_BLOBS);
        int rc, n = 0;
        if (s == NULL) {
            free(page);
            return BERTH_ERROR;
        }
        db_bind_text(s, 1, last);
        sqlite3_bind_int(s, 2, PAGE);
        while ((rc = db_step(f->db, s)) == 1 && n < PAGE) {
            snprintf(page[n].digest, sizeof(page[n].digest), "%s", text(s, 0));
            page[n++].size = sqlite3_column_int64(s, 1);
        }
        db_done(f->db, s);
        if (rc < 0) {
            free(page);
            return BERTH_ERROR;
        }
        for (int i = 0; i < n; ++i)
            check_blob(f, page[i].digest, page[i].size);
        if (n < PAGE) {
            free(page);
            return 0;
        }
        memcpy(last, page[n - 1].digest, sizeof(last));
    }
}

/* ---- what nothing references ---- */

/* Remove a file judged an orphan, unless it changed since (`judged`: what lstat said then). 1 if removed. */
static int remove_file(const char *path, const struct stat *judged)
{
    struct stat st;
    if (lstat(path, &st) != 0 || st.st_ino != judged->st_ino || st.st_dev != judged->st_dev ||
        st.st_ctim.tv_sec != judged->st_ctim.tv_sec || st.st_ctim.tv_nsec != judged->st_ctim.tv_nsec)
        return 0;
    return S_ISDIR(st.st_mode) ? rmdir(path) == 0 : unlink(path) == 0;
}

/*
 * Remove an orphan blob file. Under the database's write lock (no link can commit meanwhile) check again that no
 * row names it, then move it aside and make sure that what moved is the file judged: a push of the same digest may
 * have renamed its own file there in between (its row would follow), and that one goes back. 1 if removed.
 */
static int remove_blob(fsck_t *f, const char *path, const char *digest, const struct stat *judged)
{
    char aside[BLOBSTORE_PATH_MAX];
    const char *err;
    struct stat st;
    int removed = 0;
    int lock = blobstore_removal_begin(f->root); /* not while a backup reads blob files (store/blobstore.h) */
    if (lock < 0)
        return 0;
    if (db_begin(f->db, 1, &err) != 0) {
        log_warn("fsck: cannot lock the database to remove %s: %s", path, err);
        blobstore_unlock(lock);
        return 0;
    }
    if (blob_row(f, digest) == 0) {
        snprintf(aside, sizeof(aside), "%s/tmp/fsck.%ld.%u", f->root, (long)getpid(), f->quarantined++);
        if (rename(path, aside) == 0) {
            if (lstat(aside, &st) == 0 && st.st_ino == judged->st_ino && st.st_dev == judged->st_dev)
                removed = unlink(aside) == 0;
            else if (rename(aside, path) != 0)
                log_error("fsck: cannot put %s back from %s: %s", path, aside, strerror(errno));
        } else if (errno == EXDEV) { /* tmp/ on another file system: no way to move it aside */
            removed = remove_file(path, judged);
        }
    }
    db_rollback(f->db);
    blobstore_unlock(lock);
    return removed;
}

/* A file or folder nothing references at `path`: an orphan of `kind`, or pending while young. */
static void orphan(fsck_t *f, const char *kind, const char *path, const struct stat *st, const char *why)
{
    const char *rel = path + strlen(f->root) + 1;
    char age[32];
    uint64_t ms = age_ms(f, st);
    age_str(ms, age, sizeof(age));
    if (ms < f->o->grace_ms) {
        report(f, FSCK_PENDING, kind, rel, 0, "%s, changed %s ago: left alone", why, age);
        return;
    }
    if (S_ISDIR(st->st_mode)) { /* never a tree berth does not know: only an empty folder goes */
        int removed = f->o->repair && remove_file(path, st);
        report(f, FSCK_ORPHAN, kind, rel, removed, "%s, a folder%s", why,
               removed        ? ""
               : f->o->repair ? " (not empty: remove it by hand)"
                              : "");
        return;
    }
    report(f, FSCK_ORPHAN, kind, rel, f->o->repair && remove_file(path, st), "%s, changed %s ago", why, age);
}

/* lstat `dir`/`name` into *st and the path into `path`: 0, or -1 (gone meanwhile, or too long a path). */
static int entry(const char *dir, const char *name, char *path, size_t len, struct stat *st)
{
    if (snprintf(path, len, "%s/%s", dir, name) >= (int)len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return lstat(path, st);
}

static int is_hex(const char *s, size_t len)
{
    for (size_t i = 0; i < len; ++i)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[len] == '\0';
}

static void orphan_blob(fsck_t *f, const char *path, const digest_t *d, const struct stat *st)
{
    const char *rel = path + strlen(f->root) + 1;
    char age[32], bytes[200] = "";
    digest_t got;
    uint64_t ms = age_ms(f, st), n;
    age_str(ms, age, sizeof(age));
    if (f->o->verify) {
        int rc = fsck_hash_file(path, d->algo, 1 << 20, NULL, NULL, &got, &n);
        f->st->bytes_hashed += n;
        if (rc == 0 && !digest_equal(&got, d))
            snprintf(bytes, sizeof(bytes), ", and its bytes hash to %s", got.str);
    }
    if (ms < f->o->grace_ms) {
        report(f, FSCK_PENDING, "blob", rel, 0, "no database row names it yet%s, changed %s ago: left alone", bytes,
               age);
        return;
    }
    int removed = f->o->repair && remove_blob(f, path, d->str, st);
    if (f->o->repair && !removed && blob_row(f, d->str) == 1)
        return; /* linked meanwhile: it is no orphan */
    report(f, FSCK_ORPHAN, "blob", rel, removed, "no database row names it (%llu bytes%s), changed %s ago",
           (unsigned long long)st->st_size, bytes, age);
}

/* blobs/<algo>/<xx>/: files named by their digest; anything else is stray */
static int walk_shard(fsck_t *f, const char *dir, digest_algo_t algo, const char *shard)
{
    char path[BLOBSTORE_PATH_MAX], ds[DIGEST_MAX_STR + 1];
    struct stat st;
    struct dirent *e;
    DIR *dp = opendir(dir);
    size_t hexlen = digest_algo_hexlen(algo);
    digest_t d;
    if (dp == NULL)
        return errno == ENOENT ? 0 : BERTH_ERROR;
    while ((e = readdir(dp)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            entry(dir, e->d_name, path, sizeof(path), &st) != 0)
            continue;
        if (!S_ISREG(st.st_mode) || !is_hex(e->d_name, hexlen) || strncmp(e->d_name, shard, 2) != 0) {
            orphan(f, "stray", path, &st, "not a blob file");
            continue;
        }
        if (snprintf(ds, sizeof(ds), "%s:%s", digest_algo_name(algo), e->d_name) >= (int)sizeof(ds) ||
            digest_parse(&d, ds, strlen(ds)) != DIGEST_OK)
            continue;
        int rc = blob_row(f, ds);
        if (rc < 0) {
            closedir(dp);
            return BERTH_ERROR;
        }
        if (rc == 0)
            orphan_blob(f, path, &d, &st);
    }
    closedir(dp);
    return 0;
}

static int walk_algo(fsck_t *f, const char *dir, digest_algo_t algo)
{
    char path[BLOBSTORE_PATH_MAX];
    struct stat st;
    struct dirent *e;
    int rc = 0;
    DIR *dp = opendir(dir);
    if (dp == NULL)
        return errno == ENOENT ? 0 : BERTH_ERROR;
    while (rc == 0 && (e = readdir(dp)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            entry(dir, e->d_name, path, sizeof(path), &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode) && is_hex(e->d_name, 2))
            rc = walk_shard(f, path, algo, e->d_name);
        else
            orphan(f, "stray", path, &st, "not in the blob store's layout (<algorithm>/<xx>/<digest>)");
    }
    closedir(dp);
    return rc;
}

static int walk_blobs(fsck_t *f)
{
    char dir[BLOBSTORE_PATH_MAX], path[BLOBSTORE_PATH_MAX];
    struct stat st;
    struct dirent *e;
    int rc = 0;
    snprintf(dir, sizeof(dir), "%s/blobs", f->root);
    DIR *dp = opendir(dir);
    if (dp == NULL)
        return errno == ENOENT ? 0 : BERTH_ERROR;
    while (rc == 0 && (e = readdir(dp)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            entry(dir, e->d_name, path, sizeof(path), &st) != 0)
            continue;
        int algo = digest_algo_from_name(e->d_name, strlen(e->d_name));
        if (algo >= 0 && S_ISDIR(st.st_mode))
            rc = walk_algo(f, path, (digest_algo_t)algo);
        else
            orphan(f, "stray", path, &st, "not in the blob store's layout (<algorithm>/<xx>/<digest>)");
    }
    closedir(dp);
    return rc;
}

/* <root>/tmp: request bodies and mirror downloads while they last; whatever stays after a crash */
static int walk_tmp(fsck_t *f)
{
    char dir[BLOBSTORE_PATH_MAX], path[BLOBSTORE_PATH_MAX];
    struct stat st;
    struct dirent *e;
    snprintf(dir, sizeof(dir), "%s/tmp", f->root);
    DIR *dp = opendir(dir);
    if (dp == NULL)
        return errno == ENOENT ? 0 : BERTH_ERROR;
    while ((e = readdir(dp)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            entry(dir, e->d_name, path, sizeof(path), &st) != 0)
            continue;
        orphan(f, "temp", path, &st, "a temporary file");
    }
    closedir(dp);
    return 0;
}

/* One upload session's file: in progress, or expired (idle since its data was last written, as the server's expiry). */
static void check_session_file(fsck_t *f, const char *path, const struct stat *st)
{
    char age[32], ttl[32];
    struct stat m = *st;
    m.st_ctim = m.st_mtim;
    uint64_t idle = age_ms(f, &m);
    if (idle <= f->o->upload_ttl_ms || idle < f->o->grace_ms) {
        f->st->uploads++;
        return;
    }
    report(f, FSCK_ORPHAN, "upload", path + strlen(f->root) + 1, f->o->repair && remove_file(path, st),
           "expired: idle for %s (storage.upload_ttl %s)", age_str(idle, age, sizeof(age)),
           age_str(f->o->upload_ttl_ms, ttl, sizeof(ttl)));
}

/* An older berth's upload session folder: in progress, expired, or incomplete (a crash between its steps). */
static void check_session(fsck_t *f, const char *path, const struct stat *dst)
{
    char info[BLOBSTORE_PATH_MAX], data[BLOBSTORE_PATH_MAX], age[32], ttl[32];
    struct stat ist, ast, newest = *dst;
    int has_info = entry(path, "info", info, sizeof(info), &ist) == 0 && S_ISREG(ist.st_mode);
    int has_data = entry(path, "data", data, sizeof(data), &ast) == 0 && S_ISREG(ast.st_mode);
    const char *rel = path + strlen(f->root) + 1;
    if (has_info && has_data) {
        /* as the server's own expiry: idle since the data was last written */
        struct stat m = ast;
        m.st_ctim = m.st_mtim;
        uint64_t idle = age_ms(f, &m);
        if (idle <= f->o->upload_ttl_ms || idle < f->o->grace_ms) {
            f->st->uploads++;
            return;
        }
        int removed = 0;
        if (f->o->repair && remove_file(data, &ast) && remove_file(info, &ist))
            removed = rmdir(path) == 0;
        report(f, FSCK_ORPHAN, "upload", rel, removed, "expired: idle for %s (storage.upload_ttl %s)",
               age_str(idle, age, sizeof(age)), age_str(f->o->upload_ttl_ms, ttl, sizeof(ttl)));
        return;
    }
    /* the newest change of the folder and what is in it */
    if (has_info && age_ms(f, &ist) < age_ms(f, &newest))
        newest = ist;
    if (has_data && age_ms(f, &ast) < age_ms(f, &newest))
        newest = ast;
    uint64_t ms = age_ms(f, &newest);
    const char *why = has_info   ? "an upload session without its data file"
                      : has_data ? "an upload session without its info file"
                                 : "an empty upload session";
    age_str(ms, age, sizeof(age));
    if (ms < f->o->grace_ms) {
        report(f, FSCK_PENDING, "upload", rel, 0, "%s, changed %s ago: left alone", why, age);
        return;
    }
    int removed = 0;
    if (f->o->repair && (!has_info || remove_file(info, &ist)) && (!has_data || remove_file(data, &ast)))
        removed = rmdir(path) == 0;
    report(f, FSCK_ORPHAN, "upload", rel, removed, "%s, changed %s ago", why, age);
}

static int walk_uploads(fsck_t *f)
{
    char dir[BLOBSTORE_PATH_MAX], path[BLOBSTORE_PATH_MAX];
    struct stat st;
    struct dirent *e;
    snprintf(dir, sizeof(dir), "%s/uploads", f->root);
    DIR *dp = opendir(dir);
    if (dp == NULL)
        return errno == ENOENT ? 0 : BERTH_ERROR;
    while ((e = readdir(dp)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            entry(dir, e->d_name, path, sizeof(path), &st) != 0)
            continue;
        if (S_ISREG(st.st_mode) && upload_file_name_valid(e->d_name))
            check_session_file(f, path, &st);
        else if (S_ISDIR(st.st_mode) && upload_uuid_valid(e->d_name, strlen(e->d_name)))
            check_session(f, path, &st);
        else
            orphan(f, "stray", path, &st, "not an upload session");
    }
    closedir(dp);
    return 0;
}

int fsck_run(const char *root, const fsck_options_t *o, fsck_stats_t *st)
{
    char path[BLOBSTORE_PATH_MAX];
    struct stat dbst;
    fsck_t f = {root, o, st, NULL, {0, 0}, 0};
    memset(st, 0, sizeof(*st));
    if (snprintf(path, sizeof(path), "%s/berth.db", root) >= (int)sizeof(path) || stat(path, &dbst) != 0) {
        log_error("fsck: no database at %s: %s", path, strerror(errno));
        return BERTH_ERROR;
    }
    if ((f.db = db_open(path, 0)) == NULL)
        return BERTH_ERROR;
    int latest = 0;
    for (const db_migration_t *mg = db_migrations; mg->sql; ++mg)
        latest = mg->version;
    int rc = BERTH_ERROR, v = db_schema_version(f.db);
    if (v != latest) {
        log_error("fsck: the database is at schema version %d, this berth's is %d: start berth serve on it once", v,
                  latest);
        goto Exit;
    }
    clock_gettime(CLOCK_REALTIME, &f.now);
    /* the files of blobs a stopped garbage collection removed go first: they would be orphans */
    if (o->repair && gc_recover(f.db, root) != 0)
        goto Exit;
    if (check_database(&f) != 0 || check_links(&f) != 0 || check_tags(&f) != 0 || check_manifests(&f) != 0 ||
        check_references(&f) != 0 || check_blobs(&f) != 0)
        goto Exit;
    if (walk_blobs(&f) != 0 || walk_tmp(&f) != 0 || walk_uploads(&f) != 0) {
        log_error("fsck: cannot read the folders of %s: %s", root, strerror(errno));
        goto Exit;
    }
    rc = 0;
Exit:
    db_close(f.db);
    return rc;
}
