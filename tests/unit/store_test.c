/* The storage layer without a server: blob files, upload sessions (also across a "restart"), metadata. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include "store/blobstore.h"
#include "store/metastore.h"
#include "store/upload.h"
#include "util/status.h"
#include "tap.h"

static char root[256];

/* The entries of <root>/uploads, as "name/" for a folder and "name" for a file, sorted, into buf. */
static const char *uploads_dir(char *buf, size_t len)
{
    char dir[BLOBSTORE_PATH_MAX];
    struct dirent **e;
    snprintf(dir, sizeof(dir), "%s/uploads", root);
    int n = scandir(dir, &e, NULL, alphasort);
    buf[0] = '\0';
    for (int i = 0; i < n; ++i) {
        if (e[i]->d_name[0] != '.')
            snprintf(buf + strlen(buf), len - strlen(buf), "%s%s%s", buf[0] ? " " : "", e[i]->d_name,
                     e[i]->d_type == DT_DIR ? "/" : "");
        free(e[i]);
    }
    if (n >= 0)
        free(e);
    return buf;
}

/* Write `text` to <root>/uploads/<rel>. */
static int put_file(const char *rel, const char *text)
{
    char path[BLOBSTORE_PATH_MAX];
    snprintf(path, sizeof(path), "%s/uploads/%s", root, rel);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fputs(text, f);
    return fclose(f);
}

/* Set the mtime of <root>/uploads/<rel> to `age` seconds ago. */
static int backdate(const char *rel, long age)
{
    char path[BLOBSTORE_PATH_MAX];
    struct timeval tv[2];
    gettimeofday(&tv[0], NULL);
    tv[0].tv_sec -= age;
    tv[1] = tv[0];
    snprintf(path, sizeof(path), "%s/uploads/%s", root, rel);
    return utimes(path, tv);
}

/* One file per session, named by its id and its repository's key; an older berth's session folders still work. */
static void test_upload_files(blobstore_t *bs)
{
    uploads_t u;
    upload_t *up;
    char uuid[UPLOAD_UUID_LEN + 1], uuid2[UPLOAD_UUID_LEN + 1], uuid3[UPLOAD_UUID_LEN + 1], want[256], list[1024],
        path[BLOBSTORE_PATH_MAX];
    digest_t d, key;
    uint64_t size = 0, off = 0;

    uploads_init(&u, root);
    digest_compute(&key, DIGEST_SHA256, "lib/alpine", 10);
    ok(upload_create(&u, "lib/alpine", DIGEST_SHA256, uuid) == 0, "create a session");
    snprintf(want, sizeof(want), "%s.%.32s", uuid, digest_hex(&key));
    ok(strcmp(uploads_dir(list, sizeof(list)), want) == 0, "it is one file, uploads/<uuid>.<key>, no folder: %s", list);
    ok(upload_file_name_valid(want), "its name is a session file's name");
    ok(!upload_file_name_valid(uuid) && !upload_file_name_valid("x") && !upload_file_name_valid(".") &&
           !upload_file_name_valid("01234567-89ab-4cde-8f01-23456789abcd.0123456789abcdef0123456789ABCDEF") &&
           !upload_file_name_valid("01234567-89ab-4cde-8f01-23456789abcd.0123456789abcdef0123456789abcdef0") &&
           !upload_file_name_valid("01234567-89ab-4cde-8f01-23456789abcd/0123456789abcdef0123456789abcdef"),
       "nothing else is");
    ok(upload_acquire(&u, uuid, "lib/alpine", &up) == 0 && upload_append(up, "one file", 8) == 0, "a chunk into it");
    digest_compute(&d, DIGEST_SHA256, "one file", 8);
    ok(upload_finish(&u, up, &d, bs, &size, NULL) == 0 && size == 8, "finish it");
    ok(strcmp(uploads_dir(list, sizeof(list)), "") == 0, "its file became the blob: uploads/ is empty (%s)", list);
    blobstore_path(bs, &d, path, sizeof(path));
    ok(tap_file_equals(path, "one file", 8), "the blob file holds the bytes");

    /* a session folder of an older berth, found after an upgrade */
    snprintf(uuid2, sizeof(uuid2), "%s", "01234567-89ab-4cde-8f01-23456789abcd");
    snprintf(path, sizeof(path), "%s/uploads/%s", root, uuid2);
    ok(mkdir(path, 0755) == 0 &&
           put_file("01234567-89ab-4cde-8f01-23456789abcd/info", "lib/alpine\nsha256\n1\n") == 0 &&
           put_file("01234567-89ab-4cde-8f01-23456789abcd/data", "old ") == 0,
       "an older berth's session folder (info and data)");
    uploads_dispose(&u);
    uploads_init(&u, root);
    ok(upload_peek(&u, uuid2, "other/repo", &off) == BERTH_ENOTFOUND, "another repository does not see it");
    ok(upload_peek(&u, uuid2, "lib/alpine", &off) == 0 && off == 4, "its repository resumes it at offset 4");
    ok(upload_acquire(&u, uuid2, "lib/alpine", &up) == 0 && upload_append(up, "folder", 6) == 0, "append to it");
    digest_compute(&d, DIGEST_SHA256, "old folder", 10);
    ok(upload_finish(&u, up, &d, bs, &size, NULL) == 0 && size == 10, "finish it");
    ok(strcmp(uploads_dir(list, sizeof(list)), "") == 0, "its folder is gone (%s)", list);
    blobstore_path(bs, &d, path, sizeof(path));
    ok(tap_file_equals(path, "old folder", 10), "the blob file holds the bytes");

    /* expiry: by the time the data was last written, never a busy session, files and folders alike */
    ok(upload_create(&u, "lib/alpine", DIGEST_SHA256, uuid) == 0 &&
           upload_create(&u, "lib/alpine", DIGEST_SHA256, uuid3) == 0,
       "two sessions");
    snprintf(path, sizeof(path), "%s.%.32s", uuid, digest_hex(&key));
    ok(backdate(path, 100) == 0, "the first idle for 100 s");
    ok(upload_acquire(&u, uuid3, "lib/alpine", &up) == 0, "the second busy");
    snprintf(path, sizeof(path), "%s.%.32s", uuid3, digest_hex(&key));
    backdate(path, 100);
    snprintf(path, sizeof(path), "%s/uploads/%s", root, uuid2);
    ok(mkdir(path, 0755) == 0 &&
           put_file("01234567-89ab-4cde-8f01-23456789abcd/info", "lib/alpine\nsha256\n1\n") == 0 &&
           put_file("01234567-89ab-4cde-8f01-23456789abcd/data", "old") == 0 &&
           backdate("01234567-89ab-4cde-8f01-23456789abcd/data", 100) == 0,
       "and an older berth's folder idle for 100 s");
    ok(put_file("notes", "not a session") == 0 && backdate("notes", 100) == 0, "and a stray file");
    ok(uploads_expire(&u, 50000) == 2, "expiry after 50 s removes the idle session and the folder");
    snprintf(path, sizeof(path), "%s.%.32s notes", uuid3, digest_hex(&key));
    ok(strcmp(uploads_dir(list, sizeof(list)), path) == 0, "the busy one and the stray file stay: %s", list);
    ok(upload_peek(&u, uuid, "lib/alpine", &off) == BERTH_ENOTFOUND, "the expired session is unknown");
    upload_cancel(&u, up);
    ok(uploads_expire(&u, 50000) == 0 && strcmp(uploads_dir(list, sizeof(list)), "notes") == 0,
       "a cancelled session's file is gone: %s", list);
    snprintf(path, sizeof(path), "%s/uploads/notes", root);
    unlink(path);
    uploads_dispose(&u);
}

static void test_uploads(blobstore_t *bs)
{
    uploads_t u;
    upload_t *up;
    char uuid[UPLOAD_UUID_LEN + 1], path[BLOBSTORE_PATH_MAX];
    digest_t d, wrong;
    uint64_t size = 0, off = 99;

    uploads_init(&u, root);
    ok(upload_create(&u, "lib/alpine", DIGEST_SHA256, uuid) == 0, "create an upload session");
    ok(upload_uuid_valid(uuid, strlen(uuid)), "its id is a well-formed uuid: %s", uuid);
    ok(!upload_uuid_valid("../../etc/passwd-aaaaaaaaaaaaaaaaaaaa", 36), "a path is not an upload id");
    ok(upload_acquire(&u, uuid, "other/repo", &up) == BERTH_ENOTFOUND, "another repository cannot use the session");
    ok(upload_acquire(&u, uuid, "lib/alpine", &up) == 0, "acquire it");
    ok(upload_acquire(&u, uuid, "lib/alpine", &up) == BERTH_EBUSY, "a second acquire finds it busy");
    ok(upload_append(up, "hello ", 6) == 0 && up->offset == 6, "append a chunk");
    upload_release(&u, up);
    uploads_dispose(&u);

    /* a restart: the session comes back from disk and is re-hashed when it finishes */
    uploads_init(&u, root);
    ok(upload_peek(&u, uuid, "lib/alpine", &off) == 0 && off == 6, "after a restart the session is at offset 6");
    ok(upload_acquire(&u, uuid, "lib/alpine", &up) == 0 && up->hasher == NULL, "reloaded session needs a re-hash");
    ok(upload_append(up, "world", 5) == 0 && up->offset == 11, "append the rest");
    upload_release(&u, up);
    ok(upload_acquire(&u, uuid, "lib/alpine", &up) == 0, "acquire again");
    digest_compute(&wrong, DIGEST_SHA256, "hello there", 11);
    ok(upload_finish(&u, up, &wrong, bs, &size, NULL) == BERTH_EDIGEST, "a wrong digest is refused");
    blobstore_path(bs, &wrong, path, sizeof(path));
    ok(access(path, F_OK) != 0, "and no blob file appears for it");
    ok(upload_peek(&u, uuid, "lib/alpine", &off) == BERTH_ENOTFOUND, "and the session is gone");

    ok(upload_create(&u, "lib/alpine", DIGEST_SHA256, uuid) == 0 && upload_acquire(&u, uuid, "lib/alpine", &up) == 0,
       "new session");
    upload_append(up, "hello world", 11);
    ok(upload_truncate(up, 5) == 0 && up->offset == 5 && up->hasher == NULL, "truncate drops the running hash");
    upload_append(up, " world", 6);
    digest_compute(&d, DIGEST_SHA512, "hello world", 11);
    ok(upload_finish(&u, up, &d, bs, &size, NULL) == 0 && size == 11, "finish with sha512 (re-hashed)");
    blobstore_path(bs, &d, path, sizeof(path));
    ok(tap_file_equals(path, "hello world", 11), "the blob file holds the bytes: %s", path);
    uploads_dispose(&u);
}

static void names(void *ctx, const char *name)
{
    strcat(ctx, name);
    strcat(ctx, ",");
}

static int link_two(metastore_t *m, void *arg)
{
    digest_t *d = arg;
    return metastore_blob_link(m, "a/x", &d[0], 3) || metastore_blob_link(m, "a/x", &d[1], 4);
}

typedef struct {
    const char *repo, *tag, *body;
    digest_t digest;
    metastore_bad_ref_t bad;
    manifest_t *mf;
} put_args_t;

static int put(metastore_t *m, void *arg)
{
    put_args_t *a = arg;
    return metastore_manifest_put(m, a->repo, &a->digest, a->mf, a->body, strlen(a->body), &a->tag, 1, 0, &a->bad);
}

static void test_metastore(void)
{
    char path[300], list[256] = "";
    digest_t d[2];
    uint64_t size;
    snprintf(path, sizeof(path), "%s/berth.db", root);
    metastore_t *m = metastore_open(path, 1);
    ok(m != NULL && metastore_schema_version(m) >= 1, "open and migrate");
    metastore_close(m);
    m = metastore_open(path, 1);
    ok(m != NULL && metastore_ping(m) == 0, "migrating twice is harmless");
    metastore_writer_t *w = metastore_writer_start(path);
    digest_compute(&d[0], DIGEST_SHA256, "cfg", 3);
    digest_compute(&d[1], DIGEST_SHA256, "layr", 4);
    ok(metastore_write(w, link_two, d) == 0, "link two blobs to a/x");
    ok(metastore_blob_get(m, "a/x", &d[1], &size) == 0 && size == 4, "the reader sees the committed blob");
    ok(metastore_blob_get(m, "b/y", &d[1], &size) == BERTH_ENOTFOUND, "but not from another repository");

    char body[1024], err[256];
    snprintf(body, sizeof(body),
             "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\",\"config\":{\"mediaType\":\"application/"
             "vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":3},\"layers\":[{\"mediaType\":\"application/"
             "vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":4}]}",
             d[0].str, d[1].str);
    put_args_t a = {"a/x", "v1", body};
    ok(manifest_parse(&a.mf, NULL, 0, body, strlen(body), err, sizeof(err)) == MANIFEST_OK, "parse a manifest");
    digest_compute(&a.digest, DIGEST_SHA256, body, strlen(body));
    ok(metastore_write(w, put, &a) == 0, "store it tagged v1");
    a.tag = "latest";
    ok(metastore_write(w, put, &a) == 0, "and tag it latest");
    a.repo = "b/y";
    ok(metastore_write(w, put, &a) == BERTH_EMISSING && digest_equal(&a.bad.digest, &d[0]) && a.bad.stored == -1,
       "in another repository its blobs are missing");
    {
        char wrong[1024];
        snprintf(
            wrong, sizeof(wrong),
            "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\",\"config\":{\"mediaType\":\"application/"
            "vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":3},\"layers\":[{\"mediaType\":\"application/"
            "vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":5}]}",
            d[0].str, d[1].str);
        put_args_t b = {"a/x", "wrong", wrong};
        ok(manifest_parse(&b.mf, NULL, 0, wrong, strlen(wrong), err, sizeof(err)) == MANIFEST_OK, "parse it");
        digest_compute(&b.digest, DIGEST_SHA256, wrong, strlen(wrong));
        ok(metastore_write(w, put, &b) == BERTH_ESIZE && digest_equal(&b.bad.digest, &d[1]) && b.bad.size == 5 &&
               b.bad.stored == 4,
           "a manifest whose layer descriptor says 5 bytes for a blob of 4 is refused");
        metastore_manifest_t none;
        ok(metastore_manifest_get(m, "a/x", "wrong", NULL, &none) == BERTH_ENOTFOUND, "and nothing of it is stored");
        manifest_free(b.mf);
    }
    metastore_manifest_t got;
    ok(metastore_manifest_get(m, "a/x", "latest", NULL, &got) == 0 && got.size == strlen(body) &&
           memcmp(got.content, body, got.size) == 0 && digest_equal(&got.digest, &a.digest),
       "get by tag returns the exact bytes");
    metastore_manifest_dispose(&got);
    ok(metastore_manifest_get(m, "a/x", NULL, &a.digest, &got) == 0 && strcmp(got.media_type, MT_OCI_MANIFEST) == 0,
       "get by digest, with the media type");
    metastore_manifest_dispose(&got);
    ok(metastore_manifest_get(m, "b/y", "v1", NULL, &got) == BERTH_ENOTFOUND, "b/y has no v1");
    ok(metastore_tags_list(m, "a/x", NULL, -1, names, list) == 2 && strcmp(list, "latest,v1,") == 0, "tags sorted: %s",
       list);
    list[0] = '\0';
    ok(metastore_tags_list(m, "a/x", "latest", 1, names, list) == 1 && strcmp(list, "v1,") == 0, "tags after last");
    ok(metastore_tags_list(m, "nope", NULL, -1, names, list) == BERTH_ENOTFOUND, "unknown repository");
    list[0] = '\0';
    ok(metastore_catalog(m, NULL, -1, names, list) == 1 && strcmp(list, "a/x,") == 0,
       "catalog: the refused push to b/y left no repository behind: %s", list);
    manifest_free(a.mf);
    metastore_writer_stop(w);
    metastore_close(m);
}

/* Writes `text` to <root>/src/<name> (a source store's file, as docker-registry's `data`). */
static void put_src(const char *name, const char *text)
{
    char path[BLOBSTORE_PATH_MAX];
    snprintf(path, sizeof(path), "%s/src/%s", root, name);
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
}

/* Files under <root>/tmp (berth import's temporary files while it adopts). */
static int tmp_files(void)
{
    char dir[BLOBSTORE_PATH_MAX];
    struct dirent **e;
    snprintf(dir, sizeof(dir), "%s/tmp", root);
    int n = scandir(dir, &e, NULL, NULL), files = 0;
    for (int i = 0; i < n; ++i) {
        files += e[i]->d_name[0] != '.';
        free(e[i]);
    }
    if (n >= 0)
        free(e);
    return files;
}

/* blobstore_adopt: another store's file brought in linked or copied, verified, then finished (or cancelled). */
static void test_adopt(blobstore_t *bs)
{
    char src[BLOBSTORE_PATH_MAX], path[BLOBSTORE_PATH_MAX], shard[BLOBSTORE_PATH_MAX];
    const char *a = "layer adopted by a hard link", *b = "layer adopted by a copy";
    digest_t da, db, dc, got;
    blobstore_how_t how;
    blobstore_adopted_t ad;
    uint64_t size = 0;
    struct stat s1, s2;
    snprintf(src, sizeof(src), "%s/src", root);
    mkdir(src, 0755);
    int dir = open(src, O_RDONLY | O_DIRECTORY);
    digest_compute(&da, DIGEST_SHA256, a, strlen(a));
    digest_compute(&db, DIGEST_SHA256, b, strlen(b));

    put_src("a", a);
    ok(blobstore_adopt(bs, dir, "a", &da, 1, "t1", &how, &size, &got, &ad) == 0 && how == BLOBSTORE_LINKED &&
           size == strlen(a),
       "adopt on the same file system: a hard link, verified");
    ok(tmp_files() == 1 && !blobstore_has(bs, &da), "... waiting in tmp/, not in the store yet");
    ok(blobstore_adopt_finish(bs, &ad, shard) == 0 && blobstore_has(bs, &da) && tmp_files() == 0,
       "... finished: renamed into the store");
    blobstore_path(bs, &da, path, sizeof(path));
    snprintf(src, sizeof(src), "%s/src/a", root);
    ok(stat(path, &s1) == 0 && stat(src, &s2) == 0 && s1.st_ino == s2.st_ino, "... the same inode as the source");
    ok(strstr(path, shard) == path, "... its shard folder given for the caller to fsync: %s", shard);

    put_src("b", b);
    ok(blobstore_adopt(bs, dir, "b", &db, 0, "t2", &how, &size, &got, &ad) == 0 && how != BLOBSTORE_LINKED,
       "adopt without linking: reflinked or copied");
    ok(blobstore_adopt_finish(bs, &ad, shard) == 0, "... finished");
    blobstore_path(bs, &db, path, sizeof(path));
    snprintf(src, sizeof(src), "%s/src/b", root);
    ok(stat(path, &s1) == 0 && stat(src, &s2) == 0 && s1.st_ino != s2.st_ino && tap_file_equals(path, b, strlen(b)),
       "... a file of its own with the same bytes");

    put_src("c", "not what the digest says");
    digest_compute(&dc, DIGEST_SHA256, "x", 1);
    ok(blobstore_adopt(bs, dir, "c", &dc, 1, "t3", &how, &size, &got, &ad) == BERTH_EDIGEST &&
           strncmp(got.str, "sha256:", 7) == 0 && !digest_equal(&got, &dc),
       "content that does not hash to the digest: BERTH_EDIGEST, with what it hashes to");
    ok(tmp_files() == 0 && !blobstore_has(bs, &dc), "... nothing left, nothing in the store");
    ok(blobstore_adopt(bs, dir, "c", &dc, 0, "t3", &how, &size, &got, &ad) == BERTH_EDIGEST && tmp_files() == 0,
       "... also when copying");

    snprintf(src, sizeof(src), "%s/src/a", root);
    snprintf(path, sizeof(path), "%s/src/link", root);
    ok(symlink(src, path) == 0, "(a symbolic link to a file whose digest is known)");
    digest_t unused = da;
    errno = 0;
    ok(blobstore_adopt(bs, dir, "link", &unused, 1, "t4", &how, &size, &got, &ad) == BERTH_ERROR && errno == ELOOP &&
           tmp_files() == 0,
       "a symbolic link is refused (ELOOP), never followed");
    ok(blobstore_adopt(bs, dir, "absent", &da, 1, "t5", &how, &size, &got, &ad) == BERTH_ERROR && errno == ENOENT,
       "an absent file: BERTH_ERROR, ENOENT");

    ok(blobstore_adopt(bs, dir, "b", &db, 1, "t6", &how, &size, &got, &ad) == 0, "adopt again");
    blobstore_adopt_cancel(&ad);
    ok(tmp_files() == 0, "... cancelled: the temporary file is gone");
    close(dir);
}

int main(void)
{
    blobstore_t bs;
    if (tap_tmpdir(root, sizeof(root), "berth-store-test") != 0)
        return 2;
    ok(blobstore_init(&bs, root) == 0, "blobstore_init creates the layout");
    test_uploads(&bs);
    test_upload_files(&bs);
    test_adopt(&bs);
    test_metastore();
    blobstore_dispose(&bs);
    if (tap_rmtree(root) != 0)
        return 2;
    return tap_done();
}
