/*
 * Backups and restores (store/backup.h). The database copy uses SQLite's online backup API directly (this file and
 * db.c are the only ones that open a connection of their own).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <sqlite3.h>
#include <zstd.h>
#include "oci/digest.h"
#include "store/backup.h"
#include "store/blobstore.h"
#include "store/db.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/secret.h"
#include "util/tar.h"
#include "util/time.h"

#define M_META "berth-backup.json"
#define M_INDEX "berth-blobs.txt"
#define M_DB "berth.db"
#define M_KEY "keys/token.pem"
#define IO_BUF (4u << 20)
#define META_MAX (1u << 20)
#define REPORT_MS 250

static void errf(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t len, const char *fmt, ...)
{
    if (err[0] != '\0') /* the first error is the one to tell */
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

/* ---- a map from digest strings to sizes ---- */

typedef struct {
    char *key;
    uint64_t size;
} slot_t;

typedef struct {
    slot_t *slots;
    size_t cap, n;
} dmap_t;

static slot_t *dmap_find(const dmap_t *m, const char *key)
{
    if (m->cap == 0)
        return NULL;
    size_t i = (size_t)hash_fnv(HASH_FNV_INIT, key, strlen(key)) & (m->cap - 1);
    while (m->slots[i].key != NULL && strcmp(m->slots[i].key, key) != 0)
        i = (i + 1) & (m->cap - 1);
    return &m->slots[i];
}

/* 1 added, 0 there already (its size left), -1 out of memory. */
static int dmap_add(dmap_t *m, const char *key, uint64_t size)
{
    if ((m->n + 1) * 2 > m->cap) {
        dmap_t bigger = {calloc(m->cap ? m->cap * 2 : 1024, sizeof(slot_t)), m->cap ? m->cap * 2 : 1024, m->n};
        if (bigger.slots == NULL)
            return -1;
        for (size_t i = 0; i < m->cap; ++i)
            if (m->slots[i].key != NULL)
                *dmap_find(&bigger, m->slots[i].key) = m->slots[i];
        free(m->slots);
        *m = bigger;
    }
    slot_t *s = dmap_find(m, key);
    if (s->key != NULL)
        return 0;
    if ((s->key = strdup(key)) == NULL)
        return -1;
    s->size = size;
    m->n++;
    return 1;
}

static const slot_t *dmap_get(const dmap_t *m, const char *key)
{
    const slot_t *s = dmap_find(m, key);
    return s != NULL && s->key != NULL ? s : NULL;
}

static void dmap_free(dmap_t *m)
{
    for (size_t i = 0; i < m->cap; ++i)
        free(m->slots[i].key);
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

/* ---- small helpers ---- */

static int write_all(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* "blobs/sha256/ab/ab…" for a digest */
static void blob_member(const digest_t *d, char *buf, size_t len)
{
    snprintf(buf, len, "blobs/%s/%.2s/%s", digest_algo_name(d->algo), digest_hex(d), digest_hex(d));
}

static void report(backup_progress_fn fn, void *ctx, backup_progress_t *p, uint64_t *next_ms, int final)
{
    if (fn == NULL)
        return;
    uint64_t now = time_mono_ms();
    if (!final && now < *next_ms)
        return;
    *next_ms = now + REPORT_MS;
    p->final = final;
    fn(ctx, p);
}

/* ---- writing an archive: tar through zstd ---- */

typedef struct {
    int fd;
    ZSTD_CCtx *cc;
    unsigned char *in, *out;
    size_t inlen, outcap;
    backup_progress_t p;
    backup_progress_fn progress;
    void *ctx;
    uint64_t next_ms;
    char *err;
    size_t errlen;
} aw_t;

static int aw_flush(aw_t *w, ZSTD_EndDirective end)
{
    ZSTD_inBuffer zin = {w->in, w->inlen, 0};
    for (;;) {
        ZSTD_outBuffer zo = {w->out, w->outcap, 0};
        size_t left = ZSTD_compressStream2(w->cc, &zo, &zin, end);
        if (ZSTD_isError(left)) {
            errf(w->err, w->errlen, "zstd: %s", ZSTD_getErrorName(left));
            return -1;
        }
        if (zo.pos > 0 && write_all(w->fd, w->out, zo.pos) != 0) {
            errf(w->err, w->errlen, "cannot write the archive: %s", strerror(errno));
            return -1;
        }
        w->p.out += zo.pos;
        if (end == ZSTD_e_end ? left == 0 : zin.pos == zin.size)
            break;
    }
    w->inlen = 0;
    report(w->progress, w->ctx, &w->p, &w->next_ms, 0);
    return 0;
}

static int aw_write(aw_t *w, const void *data, size_t n)
{
    const unsigned char *p = data;
    while (n > 0) {
        size_t k = IO_BUF - w->inlen < n ? IO_BUF - w->inlen : n;
        memcpy(w->in + w->inlen, p, k);
        w->inlen += k;
        p += k;
        n -= k;
        if (w->inlen == IO_BUF && aw_flush(w, ZSTD_e_continue) != 0)
            return -1;
    }
    return 0;
}

static int aw_header(aw_t *w, const char *name, uint64_t size, unsigned mode, int64_t mtime)
{
    tar_entry_t e = {.size = size, .mode = mode, .mtime = mtime, .type = '0'};
    unsigned char h[TAR_HEADER_MAX];
    snprintf(e.name, sizeof(e.name), "%s", name);
    size_t n = tar_header(&e, h);
    if (n == 0) {
        errf(w->err, w->errlen, "cannot name %s in a tar header", name);
        return -1;
    }
    return aw_write(w, h, n);
}

static int aw_pad(aw_t *w, uint64_t size)
{
    static const unsigned char zeros[TAR_BLOCK];
    return aw_write(w, zeros, tar_padding(size));
}

/* A member with the bytes in memory. */
static int aw_bytes(aw_t *w, const char *name, const void *data, size_t n, unsigned mode, int64_t mtime)
{
    if (aw_header(w, name, n, mode, mtime) != 0 || aw_write(w, data, n) != 0 || aw_pad(w, n) != 0)
        return -1;
    w->p.done += n;
    return 0;
}

/* A member read from `fd` (`size` bytes), straight into the compressor's input. */
static int aw_file(aw_t *w, const char *name, int fd, uint64_t size, unsigned mode, int64_t mtime)
{
    if (aw_header(w, name, size, mode, mtime) != 0)
        return -1;
    uint64_t left = size;
    while (left > 0) {
        size_t room = IO_BUF - w->inlen;
        ssize_t r = read(fd, w->in + w->inlen, room < left ? room : (size_t)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            errf(w->err, w->errlen, "cannot read %s: %s", name, r < 0 ? strerror(errno) : "it is shorter than it was");
            return -1;
        }
        w->inlen += (size_t)r;
        left -= (uint64_t)r;
        w->p.done += (uint64_t)r;
        if (w->inlen == IO_BUF && aw_flush(w, ZSTD_e_continue) != 0)
            return -1;
    }
    return aw_pad(w, size);
}

/* ---- reading an archive ---- */

typedef struct {
    int fd;
    const char *file; /* for messages */
    ZSTD_DCtx *dc;
    unsigned char *in, *out;
    size_t insize, outcap, opos, olen;
    ZSTD_inBuffer zin;
    int eof, out_full, frame_done;
    uint64_t read_in; /* compressed bytes read */
    char *err;
    size_t errlen;
} ar_t;

static int ar_open(ar_t *r, const char *file, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    r->file = file;
    r->err = err;
    r->errlen = errlen;
    r->fd = strcmp(file, "-") == 0 ? STDIN_FILENO : open(file, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        errf(err, errlen, "cannot open %s: %s", file, strerror(errno));
        return -1;
    }
    posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    r->insize = ZSTD_DStreamInSize() * 8;
    r->outcap = 1u << 20;
    r->dc = ZSTD_createDCtx();
    r->in = malloc(r->insize);
    r->out = malloc(r->outcap);
    r->frame_done = 1; /* an empty input is no zstd stream: caught by the first read */
    return 0;
}

static void ar_close(ar_t *r)
{
    if (r->fd > STDIN_FILENO)
        close(r->fd);
    ZSTD_freeDCtx(r->dc);
    free(r->in);
    free(r->out);
}

/* Decompressed bytes at hand: 1, 0 at the end of the input (after complete frames), -1 (reported). */
static int ar_fill(ar_t *r)
{
    while (r->opos == r->olen) {
        if (r->zin.pos == r->zin.size && !r->out_full) {
            if (r->eof)
                return 0;
            ssize_t n = read(r->fd, r->in, r->insize);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                errf(r->err, r->errlen, "cannot read %s: %s", r->file, strerror(errno));
                return -1;
            }
            if (n == 0) {
                r->eof = 1;
                if (!r->frame_done) {
                    errf(r->err, r->errlen, "%s is cut short (its zstd stream ends mid-frame)", r->file);
                    return -1;
                }
                return 0;
            }
            r->read_in += (uint64_t)n;
            r->zin = (ZSTD_inBuffer){r->in, (size_t)n, 0};
        }
        ZSTD_outBuffer zo = {r->out, r->outcap, 0};
        size_t ret = ZSTD_decompressStream(r->dc, &zo, &r->zin);
        if (ZSTD_isError(ret)) {
            errf(r->err, r->errlen, "%s is not a berth backup, or is damaged (zstd: %s)", r->file,
                 ZSTD_getErrorName(ret));
            return -1;
        }
        r->frame_done = ret == 0;
        r->out_full = zo.pos == zo.size;
        r->opos = 0;
        r->olen = zo.pos;
    }
    return 1;
}

/* Up to `max` bytes at *p (at least one): 0, or -1 (reported; the end of the input is an error here). */
static int ar_get(ar_t *r, const unsigned char **p, size_t max, size_t *got)
{
    int rc = ar_fill(r);
    if (rc <= 0) {
        if (rc == 0)
            errf(r->err, r->errlen, "%s is cut short (its tar stream ends mid-member)", r->file);
        return -1;
    }
    *got = r->olen - r->opos < max ? r->olen - r->opos : max;
    *p = r->out + r->opos;
    r->opos += *got;
    return 0;
}

static int ar_read(ar_t *r, void *dst, size_t n)
{
    unsigned char *d = dst;
    while (n > 0) {
        const unsigned char *p;
        size_t got;
        if (ar_get(r, &p, n, &got) != 0)
            return -1;
        memcpy(d, p, got);
        d += got;
        n -= got;
    }
    return 0;
}

static int ar_skip(ar_t *r, uint64_t n)
{
    while (n > 0) {
        const unsigned char *p;
        size_t got;
        if (ar_get(r, &p, n > SIZE_MAX ? SIZE_MAX : (size_t)n, &got) != 0)
            return -1;
        n -= got;
    }
    return 0;
}

/* The next member's header (pax and GNU long-name headers applied, global ones skipped): 1, 0 at the end of the
 * archive, -1 (reported). */
static int ar_next(ar_t *r, tar_entry_t *e)
{
    char over[TAR_NAME_MAX + 1] = "";
    uint64_t over_size = UINT64_MAX;
    unsigned char blk[TAR_BLOCK];
    for (;;) {
        int rc = ar_fill(r);
        if (rc == 0) {
            errf(r->err, r->errlen, "%s is cut short (no end-of-archive marker)", r->file);
            return -1;
        }
        if (rc < 0 || ar_read(r, blk, sizeof(blk)) != 0)
            return -1;
        rc = tar_parse(blk, e);
        if (rc == TAR_ZERO)
            return 0;
        if (rc == TAR_BAD) {
            errf(r->err, r->errlen, "%s: a damaged tar header", r->file);
            return -1;
        }
        if (e->type == 'x' || e->type == 'L' || e->type == 'g') {
            if (e->size > TAR_PAX_MAX) {
                errf(r->err, r->errlen, "%s: an extended tar header of %llu bytes", r->file,
                     (unsigned long long)e->size);
                return -1;
            }
            char *data = malloc((size_t)e->size + 1);
            if (ar_read(r, data, (size_t)e->size) != 0 || ar_skip(r, tar_padding(e->size)) != 0) {
                free(data);
                return -1;
            }
            data[e->size] = '\0';
            tar_entry_t x = {.size = UINT64_MAX};
            rc = 0;
            if (e->type == 'x')
                rc = tar_pax_apply(data, (size_t)e->size, &x);
            else if (e->type == 'L')
                snprintf(x.name, sizeof(x.name), "%s", data);
            free(data);
            if (rc != 0) {
                errf(r->err, r->errlen, "%s: a malformed pax header", r->file);
                return -1;
            }
            if (x.name[0])
                snprintf(over, sizeof(over), "%s", x.name);
            if (x.size != UINT64_MAX)
                over_size = x.size;
            continue;
        }
        if (over[0]) {
            snprintf(e->name, sizeof(e->name), "%s", over);
            if (strncmp(e->name, "./", 2) == 0)
                memmove(e->name, e->name + 2, strlen(e->name + 2) + 1);
        }
        if (over_size != UINT64_MAX)
            e->size = over_size;
        return 1;
    }
}

/* Read what follows the end-of-archive marker to the end of the input (so that zstd checks its checksums and sees a
 * complete frame): 0 or -1. */
static int ar_drain(ar_t *r)
{
    int rc;
    while ((rc = ar_fill(r)) == 1)
        r->opos = r->olen;
    return rc;
}

/* An index line "digest size": 0, or -1. */
static int index_line(const char *line, size_t len, digest_t *d, uint64_t *size)
{
    const char *sp = memchr(line, ' ', len);
    if (sp == NULL || digest_parse(d, line, (size_t)(sp - line)) != DIGEST_OK || sp + 1 == line + len)
        return -1;
    uint64_t v = 0;
    for (const char *p = sp + 1; p < line + len; ++p) {
        if (*p < '0' || *p > '9' || v > UINT64_MAX / 10 - 1)
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *size = v;
    return 0;
}

/*
 * The head of an archive: its description (parsed into *meta, the caller's to json_decref) and its blob list (into
 * `index` when given, else skipped). 0, or -1 (reported).
 */
static int ar_head(ar_t *r, json_t **meta, dmap_t *index)
{
    tar_entry_t e;
    *meta = NULL;
    int rc = ar_next(r, &e);
    if (rc <= 0 || strcmp(e.name, M_META) != 0 || e.size > META_MAX) {
        char why[512];
        snprintf(why, sizeof(why), "%s", r->err); /* zstd's or tar's complaint, if any */
        r->err[0] = '\0';
        errf(r->err, r->errlen, "%s is not a berth backup (it does not begin with %s%s%s)", r->file, M_META,
             why[0] ? ": " : "", why);
        return -1;
    }
    char *text = malloc((size_t)e.size + 1);
    if (ar_read(r, text, (size_t)e.size) != 0 || ar_skip(r, tar_padding(e.size)) != 0) {
        free(text);
        return -1;
    }
    text[e.size] = '\0';
    json_error_t je;
    json_t *m = json_loads(text, 0, &je);
    free(text);
    json_t *fmt = json_object_get(m, "format"), *ver = json_object_get(m, "version"), *id = json_object_get(m, "id"),
           *prev = json_object_get(m, "previous");
    if (m == NULL || !json_is_string(fmt) || strcmp(json_string_value(fmt), "berth-backup") != 0 ||
        !json_is_integer(ver) || !json_is_string(id) || strlen(json_string_value(id)) >= 32 ||
        !(json_is_null(prev) || (json_is_string(prev) && strlen(json_string_value(prev)) < 32))) {
        json_decref(m);
        errf(r->err, r->errlen, "%s is not a berth backup (%s is not what berth writes)", r->file, M_META);
        return -1;
    }
    if (json_integer_value(ver) != BACKUP_FORMAT_VERSION) {
        errf(r->err, r->errlen, "%s is a backup of format version %lld; this berth reads version %d", r->file,
             (long long)json_integer_value(ver), BACKUP_FORMAT_VERSION);
        json_decref(m);
        return -1;
    }
    *meta = m;
    rc = ar_next(r, &e);
    if (rc <= 0 || strcmp(e.name, M_INDEX) != 0) {
        errf(r->err, r->errlen, "%s is not a berth backup (its second member should be %s)", r->file, M_INDEX);
        return -1;
    }
    if (index == NULL)
        return ar_skip(r, e.size + tar_padding(e.size));
    char line[DIGEST_MAX_STR + 32];
    size_t len = 0;
    for (uint64_t left = e.size; left > 0;) {
        const unsigned char *p;
        size_t got;
        if (ar_get(r, &p, left, &got) != 0)
            return -1;
        left -= got;
        for (size_t i = 0; i < got; ++i) {
            if (p[i] != '\n') {
                if (len + 1 >= sizeof(line))
                    goto Bad;
                line[len++] = (char)p[i];
                continue;
            }
            digest_t d;
            uint64_t size;
            if (index_line(line, len, &d, &size) != 0)
                goto Bad;
            if (dmap_add(index, d.str, size) < 0) {
                errf(r->err, r->errlen, "out of memory");
                return -1;
            }
            len = 0;
        }
    }
    if (len != 0)
        goto Bad;
    return ar_skip(r, tar_padding(e.size));
Bad:
    errf(r->err, r->errlen, "%s: a malformed line in %s", r->file, M_INDEX);
    return -1;
}

/* ---- backup ---- */

typedef struct {
    char *digest;
    uint64_t size;
} blob_t;

/* Copy the database at `src` into the new file `dst` at one instant (one step: one read transaction); then list the
 * copy's blobs into *blobs (sorted by digest) and its schema version. 0, or -1 (reported). */
static int snapshot(const char *src_path, const char *dst_path, blob_t **blobs, size_t *nblobs, int *schema, char *err,
                    size_t errlen)
{
    db_t *src = db_open(src_path, 0);
    sqlite3 *dst = NULL;
    sqlite3_stmt *s = NULL;
    int rc = -1;
    *blobs = NULL;
    *nblobs = 0;
    if (src == NULL) {
        errf(err, errlen, "cannot open the database %s (see above)", src_path);
        return -1;
    }
    if (sqlite3_open_v2(dst_path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        errf(err, errlen, "cannot create %s: %s", dst_path, dst ? sqlite3_errmsg(dst) : "out of memory");
        goto Exit;
    }
    for (int tries = 0;; ++tries) {
        sqlite3_backup *b = sqlite3_backup_init(dst, "main", db_handle(src), "main");
        if (b == NULL) {
            errf(err, errlen, "cannot copy the database: %s", sqlite3_errmsg(dst));
            goto Exit;
        }
        int step = sqlite3_backup_step(b, -1);
        sqlite3_backup_finish(b);
        if (step == SQLITE_DONE)
            break;
        if ((step != SQLITE_BUSY && step != SQLITE_LOCKED) || tries >= 300) {
            errf(err, errlen, "cannot copy the database: %s", sqlite3_errstr(step));
            goto Exit;
        }
        usleep(100 * 1000);
    }
    /* the copy stands alone: no -wal file beside it, wherever it goes */
    if (sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) != SQLITE_OK)
        goto Sql;
    *schema = 0;
    if (sqlite3_prepare_v2(dst, "SELECT max(version) FROM schema_version", -1, &s, NULL) != SQLITE_OK)
        goto Sql;
    if (sqlite3_step(s) == SQLITE_ROW)
        *schema = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    if (sqlite3_prepare_v2(dst, "SELECT digest, size FROM blob ORDER BY digest", -1, &s, NULL) != SQLITE_OK)
        goto Sql;
    size_t cap = 0;
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        if (*nblobs == cap) {
            cap = cap ? cap * 2 : 1024;
            *blobs = realloc(*blobs, cap * sizeof(**blobs));
        }
        const char *d = (const char *)sqlite3_column_text(s, 0);
        (*blobs)[*nblobs].digest = strdup(d ? d : "");
        (*blobs)[(*nblobs)++].size = (uint64_t)sqlite3_column_int64(s, 1);
    }
    sqlite3_finalize(s);
    s = NULL;
    if (step != SQLITE_DONE)
        goto Sql;
    rc = 0;
    goto Exit;
Sql:
    errf(err, errlen, "cannot read the database copy: %s", sqlite3_errmsg(dst));
    sqlite3_finalize(s);
Exit:
    if (dst != NULL)
        sqlite3_close(dst);
    db_close(src);
    return rc;
}

static char *meta_json(const backup_stats_t *st, int schema, uint64_t db_bytes)
{
    char created[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    json_t *m = json_pack(
        "{s:s, s:i, s:s, s:s, s:s?, s:s, s:I, s:i, s:I, s:I, s:I, s:I, s:I}", "format", "berth-backup", "version",
        BACKUP_FORMAT_VERSION, "id", st->id, "kind", st->previous[0] ? "incremental" : "full", "previous",
        st->previous[0] ? st->previous : NULL, "berth", PACKAGE_VERSION, "created_unix", (json_int_t)now, "schema",
        schema, "blobs", (json_int_t)st->blobs, "blob_bytes", (json_int_t)st->blob_bytes, "held_blobs",
        (json_int_t)st->held, "held_bytes", (json_int_t)st->held_bytes, "db_bytes", (json_int_t)db_bytes);
    if (m == NULL)
        return NULL;
    json_object_set_new(m, "created", json_string(created));
    char *s = json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(m);
    return s;
}

int backup_write(const char *root, int fd, const backup_options_t *o, backup_stats_t *st, char *err, size_t errlen)
{
    char dbpath[BLOBSTORE_PATH_MAX], tmp[BLOBSTORE_PATH_MAX], path[BLOBSTORE_PATH_MAX + 16];
    dmap_t prev = {0};
    blob_t *blobs = NULL;
    size_t nblobs = 0;
    int lock = -1, dbfd = -1, schema = 0, rc = -1;
    char *meta = NULL;
    aw_t w = {0};
    double t0 = time_mono_s();
    struct stat sb;
    err[0] = '\0';
    memset(st, 0, sizeof(*st));

    snprintf(dbpath, sizeof(dbpath), "%s/berth.db", root);
    if (stat(dbpath, &sb) != 0) {
        errf(err, errlen, "no database at %s: %s (is %s a storage root?)", dbpath, strerror(errno), root);
        return -1;
    }
    if (o->since != NULL) {
        ar_t r;
        json_t *m = NULL;
        if (ar_open(&r, o->since, err, errlen) != 0)
            return -1;
        int hrc = ar_head(&r, &m, &prev);
        ar_close(&r);
        if (hrc != 0) {
            json_decref(m);
            goto Exit;
        }
        snprintf(st->previous, sizeof(st->previous), "%s", json_string_value(json_object_get(m, "id")));
        json_decref(m);
    }
    char *id = secret_random(12);
    snprintf(st->id, sizeof(st->id), "%s", id ? id : "");
    free(id);

    /* the blob files first, then the snapshot: every file the snapshot names stays until the backup has read it */
    if ((lock = blobstore_hold(root)) < 0) {
        errf(err, errlen, "cannot lock %s/" BLOBSTORE_LOCK ": %s", root, strerror(errno));
        goto Exit;
    }
    snprintf(path, sizeof(path), "%s/tmp", root);
    snprintf(tmp, sizeof(tmp), "%s/tmp/backup.%ld.%s.db", root, (long)getpid(), st->id);
    if (mkdir_p(path) != 0) {
        errf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        goto Exit;
    }
    double ts = time_mono_s();
    int src = snapshot(dbpath, tmp, &blobs, &nblobs, &schema, err, errlen);
    st->snapshot_s = time_mono_s() - ts;
    if (src == 0 && (dbfd = open(tmp, O_RDONLY | O_CLOEXEC)) < 0)
        errf(err, errlen, "cannot open %s: %s", tmp, strerror(errno));
    unlink(tmp); /* open or not: it lives on as dbfd */
    snprintf(path, sizeof(path), "%s-journal", tmp);
    unlink(path);
    if (src != 0 || dbfd < 0 || fstat(dbfd, &sb) != 0)
        goto Exit;
    st->db_bytes = (uint64_t)sb.st_size;

    /* what this archive holds */
    size_t index_len = 0;
    for (size_t i = 0; i < nblobs; ++i) {
        digest_t d;
        if (digest_parse(&d, blobs[i].digest, strlen(blobs[i].digest)) != DIGEST_OK) {
            errf(err, errlen, "the database names a blob %s that is no digest", blobs[i].digest);
            goto Exit;
        }
        index_len += (size_t)snprintf(NULL, 0, "%s %llu\n", blobs[i].digest, (unsigned long long)blobs[i].size);
        st->blobs++;
        st->blob_bytes += blobs[i].size;
        if (dmap_get(&prev, blobs[i].digest) != NULL) {
            blobs[i].size |= 1ULL << 63; /* marked: the previous backup has it */
            continue;
        }
        st->held++;
        st->held_bytes += blobs[i].size;
    }
    if ((meta = meta_json(st, schema, st->db_bytes)) == NULL) {
        errf(err, errlen, "out of memory");
        goto Exit;
    }

    w.fd = fd;
    w.err = err;
    w.errlen = errlen;
    w.progress = o->progress;
    w.ctx = o->ctx;
    w.p.total = strlen(meta) + index_len + st->db_bytes + st->held_bytes;
    w.cc = ZSTD_createCCtx();
    w.in = malloc(IO_BUF);
    w.outcap = ZSTD_CStreamOutSize() * 4;
    w.out = malloc(w.outcap);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = o->threads > 0 ? o->threads : ncpu > 0 ? (int)ncpu : 1;
    ZSTD_CCtx_setParameter(w.cc, ZSTD_c_compressionLevel, o->level ? o->level : 3);
    ZSTD_CCtx_setParameter(w.cc, ZSTD_c_checksumFlag, 1);
    if (threads > 1 && ZSTD_isError(ZSTD_CCtx_setParameter(w.cc, ZSTD_c_nbWorkers, threads)))
        log_warn("backup: this libzstd compresses on one thread");
    int64_t now = (int64_t)time(NULL);
    if (aw_bytes(&w, M_META, meta, strlen(meta), 0644, now) != 0 || aw_header(&w, M_INDEX, index_len, 0644, now) != 0)
        goto Exit;
    for (size_t i = 0; i < nblobs; ++i) {
        char line[DIGEST_MAX_STR + 32];
        int n = snprintf(line, sizeof(line), "%s %llu\n", blobs[i].digest,
                         (unsigned long long)(blobs[i].size & ~(1ULL << 63)));
        if (aw_write(&w, line, (size_t)n) != 0)
            goto Exit;
    }
    w.p.done += index_len;
    if (aw_pad(&w, index_len) != 0 || aw_file(&w, M_DB, dbfd, st->db_bytes, 0600, now) != 0)
        goto Exit;
    snprintf(path, sizeof(path), "%s/" M_KEY, root);
    int kfd = open(path, O_RDONLY | O_CLOEXEC);
    if (kfd >= 0) {
        int krc = fstat(kfd, &sb) == 0 ? aw_file(&w, M_KEY, kfd, (uint64_t)sb.st_size, 0600, sb.st_mtime) : -1;
        close(kfd);
        if (krc != 0) {
            errf(err, errlen, "cannot read %s", path);
            goto Exit;
        }
    }
    blobstore_t bs = {.root = (char *)root};
    for (size_t i = 0; i < nblobs; ++i) {
        if (blobs[i].size >> 63)
            continue;
        digest_t d;
        uint64_t size;
        digest_parse(&d, blobs[i].digest, strlen(blobs[i].digest));
        int bfd = blobstore_open(&bs, &d, &size);
        if (bfd < 0) {
            blobstore_path(&bs, &d, path, sizeof(path));
            errf(err, errlen, "cannot open blob %s (%s): %s; berth fsck tells what else is wrong", d.str, path,
                 strerror(errno));
            goto Exit;
        }
        if (size != blobs[i].size) {
            close(bfd);
            errf(err, errlen, "blob %s is %llu bytes on disk, the database says %llu: berth fsck tells more", d.str,
                 (unsigned long long)size, (unsigned long long)blobs[i].size);
            goto Exit;
        }
        posix_fadvise(bfd, 0, 0, POSIX_FADV_SEQUENTIAL);
        fstat(bfd, &sb);
        blob_member(&d, path, sizeof(path));
        int frc = aw_file(&w, path, bfd, size, 0644, sb.st_mtime);
        close(bfd);
        if (frc != 0)
            goto Exit;
    }
    blobstore_unlock(lock); /* every blob read: the collector may remove files again */
    lock = -1;
    static const unsigned char end[2 * TAR_BLOCK];
    if (aw_write(&w, end, sizeof(end)) != 0 || aw_flush(&w, ZSTD_e_end) != 0)
        goto Exit;
    st->out_bytes = w.p.out;
    report(w.progress, w.ctx, &w.p, &w.next_ms, 1);
    rc = 0;
Exit:
    st->seconds = time_mono_s() - t0;
    blobstore_unlock(lock);
    if (dbfd >= 0)
        close(dbfd);
    for (size_t i = 0; i < nblobs; ++i)
        free(blobs[i].digest);
    free(blobs);
    free(meta);
    dmap_free(&prev);
    ZSTD_freeCCtx(w.cc);
    free(w.in);
    free(w.out);
    return rc;
}

/* ---- restore ---- */

typedef struct {
    const char *root;
    char *err;
    size_t errlen;
    dmap_t written; /* blobs written, with their sizes */
    dmap_t need;    /* the last archive's blob list */
    unsigned char shards[2][256];
    int have_db;
    backup_progress_t p;
    uint64_t base; /* compressed bytes of the archives before this one */
    uint64_t next_ms;
    const restore_options_t *o;
    restore_stats_t *st;
} restore_t;

/*
 * Write `size` bytes of the archive to the new file `path` (mode `mode`); hashed into `h` when given. With `sync` the
 * file is fsynced; without, only its write-back is started, and restore_run makes it durable with the others at once
 * (syncfs) before the database that names it appears: one fsync per small blob would cost a journal commit each.
 */
static int write_member(restore_t *rs, ar_t *r, const char *path, uint64_t size, unsigned mode, digest_hasher_t *h,
                        int sync)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        errf(rs->err, rs->errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    for (uint64_t left = size; left > 0;) {
        const unsigned char *p;
        size_t got;
        if (ar_get(r, &p, left > SIZE_MAX ? SIZE_MAX : (size_t)left, &got) != 0)
            goto Error;
        if (h != NULL)
            digest_hasher_update(h, p, got);
        if (write_all(fd, p, got) != 0) {
            errf(rs->err, rs->errlen, "cannot write %s: %s", path, strerror(errno));
            goto Error;
        }
        left -= got;
        rs->p.done = rs->base + r->read_in;
        report(rs->o->progress, rs->o->ctx, &rs->p, &rs->next_ms, 0);
    }
    if (!sync)
        sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    if ((sync && fsync(fd) != 0) || close(fd) != 0) {
        errf(rs->err, rs->errlen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return ar_skip(r, tar_padding(size));
Error:
    close(fd);
    return -1;
}

/* A blob member "blobs/<algo>/<xx>/<hex>": written and verified unless an earlier archive had it. */
static int restore_blob(restore_t *rs, ar_t *r, const tar_entry_t *e)
{
    char tmp[BLOBSTORE_PATH_MAX], dir[BLOBSTORE_PATH_MAX], ds[DIGEST_MAX_STR + 1];
    const char *a = e->name + 6, *slash = strchr(a, '/');
    digest_t d;
    if (slash == NULL || strlen(slash) < 4 || slash[3] != '/' || (size_t)(slash - a) > 6 ||
        snprintf(ds, sizeof(ds), "%.*s:%s", (int)(slash - a), a, slash + 4) >= (int)sizeof(ds) ||
        digest_parse(&d, ds, strlen(ds)) != DIGEST_OK || strncmp(slash + 1, digest_hex(&d), 2) != 0 || e->type != '0') {
        errf(rs->err, rs->errlen, "%s: a member %s that is no blob berth stores", r->file, e->name);
        return -1;
    }
    if (dmap_get(&rs->written, d.str) != NULL) /* held by an earlier archive of the chain too */
        return ar_skip(r, e->size + tar_padding(e->size));
    snprintf(tmp, sizeof(tmp), "%s/tmp/restore.%ld.blob", rs->root, (long)getpid());
    digest_hasher_t *h = digest_hasher_new(d.algo);
    int rc = write_member(rs, r, tmp, e->size, 0644, h, 0);
    digest_t got;
    digest_hasher_final(h, &got);
    digest_hasher_free(h);
    if (rc != 0)
        return -1;
    if (!digest_equal(&got, &d)) {
        errf(rs->err, rs->errlen, "%s: blob %s is damaged: its %llu bytes hash to %s", r->file, d.str,
             (unsigned long long)e->size, got.str);
        return -1;
    }
    snprintf(dir, sizeof(dir), "%s/blobs/%s/%.2s", rs->root, digest_algo_name(d.algo), digest_hex(&d));
    blobstore_t bs = {.root = (char *)rs->root};
    char dst[BLOBSTORE_PATH_MAX];
    blobstore_path(&bs, &d, dst, sizeof(dst));
    unsigned shard = (unsigned)strtoul((char[3]){digest_hex(&d)[0], digest_hex(&d)[1], 0}, NULL, 16) & 0xff;
    unsigned char *made = &rs->shards[d.algo == DIGEST_SHA512][shard];
    /* a plain mkdir: the folder's entry is made durable with the rest before the database appears */
    if ((!*made && mkdir(dir, 0755) != 0 && errno != EEXIST) || rename(tmp, dst) != 0) {
        errf(rs->err, rs->errlen, "cannot put blob %s in place at %s: %s", d.str, dst, strerror(errno));
        return -1;
    }
    *made = 1;
    if (dmap_add(&rs->written, d.str, e->size) < 0) {
        errf(rs->err, rs->errlen, "out of memory");
        return -1;
    }
    rs->st->blobs++;
    rs->st->blob_bytes += e->size;
    return 0;
}

/* One archive of the chain (index `i` of `n`; `prev_id`: the id of the one before it, updated). */
static int restore_one(restore_t *rs, const char *file, int i, int n, char *prev_id)
{
    ar_t r;
    json_t *meta = NULL;
    tar_entry_t e;
    int last = i == n - 1, rc = -1;
    char path[BLOBSTORE_PATH_MAX];
    if (ar_open(&r, file, rs->err, rs->errlen) != 0)
        return -1;
    if (ar_head(&r, &meta, last ? &rs->need : NULL) != 0)
        goto Exit;
    const char *id = json_string_value(json_object_get(meta, "id"));
    const char *prev = json_string_value(json_object_get(meta, "previous")); /* NULL for a full backup */
    if (i == 0 && prev != NULL) {
        errf(rs->err, rs->errlen,
             "%s is an incremental backup (it builds on backup %s): give the full backup first, then each incremental "
             "one in order",
             file, prev);
        goto Exit;
    }
    if (i > 0 && (prev == NULL || strcmp(prev, prev_id) != 0)) {
        errf(rs->err, rs->errlen, "%s %s%s, not on the archive before it (backup %s): give the archives in order", file,
             prev ? "builds on backup " : "is a full backup", prev ? prev : "", prev_id);
        goto Exit;
    }
    int known = 0;
    for (const db_migration_t *mg = db_migrations; mg->sql != NULL; ++mg)
        known = mg->version > known ? mg->version : known;
    json_int_t schema = json_integer_value(json_object_get(meta, "schema"));
    if (last && schema > known) {
        errf(rs->err, rs->errlen,
             "%s holds a database of schema version %lld, made by a newer berth; this one knows up to %d: restore it "
             "with that berth",
             file, (long long)schema, known);
        goto Exit;
    }
    snprintf(prev_id, 32, "%s", id);
    if (last)
        snprintf(rs->st->id, sizeof(rs->st->id), "%s", id);
    int found_db = 0;
    while ((rc = ar_next(&r, &e)) == 1) {
        rc = -1;
        if (e.type == '5') /* a folder (an archive re-packed by hand) */
            continue;
        if (strcmp(e.name, M_DB) == 0 && e.type == '0' && !found_db) {
            found_db = 1;
            if (!last) {
                if (ar_skip(&r, e.size + tar_padding(e.size)) != 0)
                    goto Exit;
                continue;
            }
            snprintf(path, sizeof(path), "%s/tmp/restore.db", rs->root);
            if (write_member(rs, &r, path, e.size, 0600, NULL, 1) != 0)
                goto Exit;
            rs->have_db = 1;
        } else if (strcmp(e.name, M_KEY) == 0 && e.type == '0') {
            snprintf(path, sizeof(path), "%s/keys", rs->root);
            if (mkdir(path, 0700) != 0 && errno != EEXIST) { /* as berth makes it (auth/token.c) */
                errf(rs->err, rs->errlen, "cannot create %s: %s", path, strerror(errno));
                goto Exit;
            }
            snprintf(path, sizeof(path), "%s/" M_KEY, rs->root);
            unlink(path); /* an earlier archive's */
            if (write_member(rs, &r, path, e.size, 0600, NULL, 1) != 0)
                goto Exit;
        } else if (strncmp(e.name, "blobs/", 6) == 0) {
            if (restore_blob(rs, &r, &e) != 0)
                goto Exit;
        } else {
            errf(rs->err, rs->errlen, "%s: an unexpected member %s (a berth backup holds %s, %s, %s, %s and blobs/)",
                 file, e.name, M_META, M_INDEX, M_DB, M_KEY);
            goto Exit;
        }
    }
    if (rc < 0 || ar_drain(&r) != 0)
        goto Exit;
    if (!found_db) {
        errf(rs->err, rs->errlen, "%s holds no %s", file, M_DB);
        goto Exit;
    }
    rs->base += r.read_in;
    rs->st->archives++;
    rc = 0;
Exit:
    json_decref(meta);
    ar_close(&r);
    return rc;
}

/* The restored database agrees with the last archive's blob list, and SQLite finds it sound. 0, or -1. */
static int check_db(restore_t *rs, const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int rc = -1;
    uint64_t n = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        goto Sql;
    if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &s, NULL) != SQLITE_OK || sqlite3_step(s) != SQLITE_ROW)
        goto Sql;
    if (strcmp((const char *)sqlite3_column_text(s, 0), "ok") != 0) {
        errf(rs->err, rs->errlen, "the backup's database is damaged: %s", (const char *)sqlite3_column_text(s, 0));
        goto Exit;
    }
    sqlite3_finalize(s);
    if (sqlite3_prepare_v2(db, "SELECT digest, size FROM blob", -1, &s, NULL) != SQLITE_OK)
        goto Sql;
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(s, 0);
        const slot_t *w = dmap_get(&rs->need, d ? d : "");
        if (w == NULL || w->size != (uint64_t)sqlite3_column_int64(s, 1)) {
            errf(rs->err, rs->errlen, "the backup's database names blob %s, which its %s does not list", d, M_INDEX);
            goto Exit;
        }
        ++n;
    }
    if (step != SQLITE_DONE)
        goto Sql;
    if (n != rs->need.n) {
        errf(rs->err, rs->errlen, "the backup's %s lists %zu blobs, its database %llu", M_INDEX, rs->need.n,
             (unsigned long long)n);
        goto Exit;
    }
    rc = 0;
    goto Exit;
Sql:
    errf(rs->err, rs->errlen, "cannot read the backup's database: %s", db ? sqlite3_errmsg(db) : "out of memory");
Exit:
    sqlite3_finalize(s);
    sqlite3_close(db);
    return rc;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    if (ftw->level > 0 && remove(path) != 0)
        log_warn("restore: cannot remove %s: %s", path, strerror(errno));
    return 0;
}

/* Everything under `root` (which was empty): what a failed restore wrote. */
static void empty_root(const char *root)
{
    nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int restore_run(const char *root, char *const *files, int nfiles, const restore_options_t *o, restore_stats_t *st,
                char *err, size_t errlen)
{
    static const char *const dirs[] = {"blobs/sha256", "blobs/sha512", "uploads", "tmp"};
    char path[BLOBSTORE_PATH_MAX], dbtmp[BLOBSTORE_PATH_MAX];
    struct stat sb;
    double t0 = time_mono_s();
    restore_t rs = {.root = root, .err = err, .errlen = errlen, .o = o, .st = st};
    int created = 0, rc = -1;
    err[0] = '\0';
    memset(st, 0, sizeof(*st));
    for (int i = 0; i < nfiles; ++i) {
        if (strcmp(files[i], "-") == 0 && nfiles > 1) {
            errf(err, errlen, "standard input (-) is an archive only when it is the only one");
            return -1;
        }
        if (strcmp(files[i], "-") != 0 && stat(files[i], &sb) != 0) {
            errf(err, errlen, "cannot read %s: %s", files[i], strerror(errno));
            return -1;
        }
        if (strcmp(files[i], "-") != 0 && S_ISREG(sb.st_mode))
            rs.p.total += (uint64_t)sb.st_size;
    }
    if (stat(root, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode)) {
            errf(err, errlen, "%s is not a folder", root);
            return -1;
        }
        DIR *dp = opendir(root);
        struct dirent *de;
        if (dp == NULL) {
            errf(err, errlen, "cannot read %s: %s", root, strerror(errno));
            return -1;
        }
        while ((de = readdir(dp)) != NULL && (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0))
            ;
        if (de != NULL) {
            errf(err, errlen,
                 "%s is not empty (it holds %s): berth restore writes only into an empty or new storage root", root,
                 de->d_name);
            closedir(dp);
            return -1;
        }
        closedir(dp);
    } else if (errno == ENOENT) {
        if (mkdir_p(root) != 0) {
            errf(err, errlen, "cannot create %s: %s", root, strerror(errno));
            return -1;
        }
        created = 1;
    } else {
        errf(err, errlen, "cannot use %s: %s", root, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); ++i) {
        snprintf(path, sizeof(path), "%s/%s", root, dirs[i]);
        if (mkdir_p(path) != 0) {
            errf(err, errlen, "cannot create %s: %s", path, strerror(errno));
            goto Exit;
        }
    }
    char prev_id[32] = "";
    for (int i = 0; i < nfiles; ++i)
        if (restore_one(&rs, files[i], i, nfiles, prev_id) != 0)
            goto Exit;
    /* every blob of the last snapshot is here, and nothing else */
    for (size_t i = 0; i < rs.need.cap; ++i) {
        const slot_t *n = &rs.need.slots[i];
        if (n->key == NULL)
            continue;
        const slot_t *w = dmap_get(&rs.written, n->key);
        if (w == NULL) {
            errf(err, errlen,
                 "blob %s of the last backup is in none of the archives given: give the full backup and every "
                 "incremental one up to the last, in order",
                 n->key);
            goto Exit;
        }
        if (w->size != n->size) {
            errf(err, errlen, "blob %s is %llu bytes in the archive, its backup's list says %llu", n->key,
                 (unsigned long long)w->size, (unsigned long long)n->size);
            goto Exit;
        }
    }
    blobstore_t bs = {.root = (char *)root};
    for (size_t i = 0; i < rs.written.cap; ++i) {
        const slot_t *w = &rs.written.slots[i];
        digest_t d;
        if (w->key == NULL || dmap_get(&rs.need, w->key) != NULL || digest_parse(&d, w->key, strlen(w->key)) != 0)
            continue;
        blobstore_path(&bs, &d, path, sizeof(path)); /* an earlier snapshot's, gone by the last one */
        unlink(path);
        rs.st->blobs--;
        rs.st->blob_bytes -= w->size;
    }
    /* the blobs' data (written without fsync), their names and every folder made durable before the database that
     * names them appears: one syncfs of the root's file system (it reports write-back errors since Linux 5.8) costs
     * one journal commit where an fsync of each file and folder would cost one each */
    int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0 || syncfs(rootfd) != 0) {
        errf(err, errlen, "cannot sync the file system of %s: %s", root, strerror(errno));
        if (rootfd >= 0)
            close(rootfd);
        goto Exit;
    }
    close(rootfd);
    snprintf(dbtmp, sizeof(dbtmp), "%s/tmp/restore.db", root);
    if (check_db(&rs, dbtmp) != 0)
        goto Exit;
    snprintf(path, sizeof(path), "%s/berth.db", root);
    if (rename(dbtmp, path) != 0 || fsync_dir(root) != 0) {
        errf(err, errlen, "cannot put the database in place at %s: %s", path, strerror(errno));
        goto Exit;
    }
    rs.p.done = rs.p.total ? rs.p.total : rs.base;
    report(o->progress, o->ctx, &rs.p, &rs.next_ms, 1);
    rc = 0;
Exit:
    if (rc != 0) {
        empty_root(root);
        if (created)
            rmdir(root);
        size_t len = strlen(err);
        snprintf(err + len, errlen - len, "; nothing was restored (%s %s)", root,
                 created ? "is removed again" : "is left empty");
    }
    st->seconds = time_mono_s() - t0;
    dmap_free(&rs.written);
    dmap_free(&rs.need);
    return rc;
}
