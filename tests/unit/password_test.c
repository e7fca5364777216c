/* Unit tests for src/auth/password.c: yescrypt hashing, bcrypt import, htpasswd lines, random secrets. */
#include <crypt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "auth/password.h"
#include "util/secret.h"
#include "tap.h"

/* Published bcrypt vectors (Openwall crypt_blowfish's test suite): an implementation other than the one tested. */
static const struct {
    const char *hash, *password;
} bcrypt_vectors[] = {
    {"$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U"},
    {"$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK", "U*U*"},
    {"$2a$05$XXXXXXXXXXXXXXXXXXXXXOAcXxm9kjPGEMsLznoKqmqw7tc8WCx4a", "U*U*U"},
    {"$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui",
     "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789chars after 72 are ignored"},
    {"$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy", ""},
    /* $2b$ and $2y$ (what `htpasswd -B` writes) give the same hash for 7-bit passwords */
    {"$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U"},
    {"$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U"},
    /* made with Python's crypt module (METHOD_BLOWFISH, rounds=32) */
    {"$2b$05$T0Z15DoJr3/i6BtRhPk3tuQRCeOyzSV3k6j4XzWrbMHAfmeJUS4OC", "berth-secret"},
};

static void test_hash(void)
{
    char *h1 = password_hash("correct horse"), *h2 = password_hash("correct horse"), *empty = password_hash("");

    ok(h1 != NULL && strncmp(h1, "$y$", 3) == 0, "hash is yescrypt: %s", h1 != NULL ? h1 : "(null)");
    ok(password_verify("correct horse", h1) == 1, "round trip");
    ok(password_verify("correct horsE", h1) == 0, "wrong password");
    ok(password_verify("correct horse ", h1) == 0, "password with a trailing space");
    ok(password_verify("", h1) == 0, "empty password against a real hash");
    ok(h2 != NULL && strcmp(h1, h2) != 0 && password_verify("correct horse", h2) == 1, "fresh salt each time");
    ok(password_hash_supported(h1) == 1, "own hashes are supported");
    ok(empty != NULL && password_verify("", empty) == 1 && password_verify("x", empty) == 0, "empty password hashes");
    ok(password_hash(NULL) == NULL, "NULL password");

    /* a damaged stored hash never matches */
    {
        char *bad = strdup(h1);
        size_t len = strlen(bad);
        bad[len - 1] = bad[len - 1] == 'a' ? 'b' : 'a';
        ok(password_verify("correct horse", bad) == 0, "last character changed");
        bad[len - 1] = '\0';
        ok(password_verify("correct horse", bad) == 0, "last character cut");
        free(bad);
        if (asprintf(&bad, "%sx", h1) < 0)
            abort();
        ok(password_verify("correct horse", bad) == 0, "a character appended");
        free(bad);
        bad = strndup(h1, (size_t)(strrchr(h1, '$') - h1 + 1)); /* the setting alone */
        ok(password_verify("correct horse", bad) == 0, "setting without the hash");
        free(bad);
    }
    ok(password_verify("x", NULL) == 0 && password_verify("x", "") == 0 && password_verify(NULL, h1) == 0,
       "NULL and empty inputs");
    ok(password_verify("x", "*0") == 0 && password_verify("x", "*") == 0, "failure tokens never match");
    ok(password_verify("x", "$apr1$abc$def") == 0, "unknown scheme never matches");
    free(h1);
    free(h2);
    free(empty);
}

static void test_bcrypt(void)
{
    for (size_t i = 0; i < sizeof(bcrypt_vectors) / sizeof(bcrypt_vectors[0]); ++i) {
        ok(password_verify(bcrypt_vectors[i].password, bcrypt_vectors[i].hash) == 1, "bcrypt vector %zu verifies", i);
        ok(password_verify("wrong", bcrypt_vectors[i].hash) == 0, "bcrypt vector %zu refuses a wrong password", i);
        ok(password_hash_supported(bcrypt_vectors[i].hash) == 1, "bcrypt vector %zu is supported", i);
    }
    ok(password_verify("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
                       bcrypt_vectors[3].hash) == 1,
       "bcrypt ignores bytes after the 72nd (a limit of the scheme)");

    /* `htpasswd -B` itself, when apache2-utils is installed */
    if (system("command -v htpasswd >/dev/null 2>&1") == 0) {
        FILE *p = popen("htpasswd -nbB carol 'p4ss w0rd'", "r");
        char line[256] = "", *user = NULL, *hash = NULL;
        if (p != NULL) {
            if (fgets(line, sizeof(line), p) == NULL)
                line[0] = '\0';
            pclose(p);
        }
        ok(password_htpasswd_line(line, &user, &hash) == 0 && strcmp(user, "carol") == 0 &&
               strncmp(hash, "$2y$", 4) == 0,
           "htpasswd -B line parses");
        ok(password_verify("p4ss w0rd", hash) == 1 && password_verify("p4ss", hash) == 0, "htpasswd -B hash verifies");
        free(user);
        free(hash);
    } else {
        printf("# htpasswd not installed: relying on the embedded vectors\n");
    }
}

static void test_other_schemes(void)
{
    char *salt = crypt_gensalt_ra("$5$", 0, NULL, 0), *h;
    void *data = NULL;
    int size = 0;

    h = strdup(crypt_ra("pw", salt, &data, &size));
    ok(password_verify("pw", h) == 1 && password_verify("pX", h) == 0, "sha256crypt verifies (libcrypt knows it)");
    ok(password_hash_supported(h) == 0, "but it is not supported for storage");
    free(h);
    free(salt);
    free(data);
}

static void test_supported(void)
{
    static const char *no[] = {
        NULL,
        "",
        "$apr1$Kr3bCqd5$X0yEk4Lz3l1UZX1aWDM6l/",
        "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
        "abJnggxhB/yWI",
        "$1$abc$defdefdefdefdefdefdefd",
        "$6$saltsalt$abc",
        "$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
        "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOe",
        "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeWW",
        "$2y$03$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
        "$2y$32$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
        "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOe:",
        "$2y$5$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeWx",
        "$y$j9T$/uIzfczIWNxpUsDmMEymf0",
        "$y$j9T$/uIzfczIWNxpUsDmMEymf0$",
        "$y$j9T$/uIzfczIWNxpUsDmMEymf0$KfK6wpMufpcnUx4ym0ylhh5Ykv1vqrodqXpkQiZh.CB:x",
        "$y$j9T$/uIzfczIWNxpUsDmMEymf0$KfK6wpMufpcnUx4ym0ylhh5Ykv1vqrodqXpkQiZh.CB$x",
        "$gy$j9T$/uIzfczIWNxpUsDmMEymf0$KfK6wpMufpcnUx4ym0ylhh5Ykv1vqrodqXpkQiZh.CB",
    };
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); ++i)
        ok(password_hash_supported(no[i]) == 0, "not supported: %s", no[i] != NULL ? no[i] : "NULL");
    ok(password_hash_supported("$y$j9T$/uIzfczIWNxpUsDmMEymf0$KfK6wpMufpcnUx4ym0ylhh5Ykv1vqrodqXpkQiZh.CB") == 1,
       "yescrypt supported");
    ok(password_verify("pw", "$y$j9T$/uIzfczIWNxpUsDmMEymf0$KfK6wpMufpcnUx4ym0ylhh5Ykv1vqrodqXpkQiZh.CB") == 1,
       "a yescrypt hash made earlier still verifies");
}

static int line(const char *l, int want, const char *wuser, const char *whash)
{
    char *user = (char *)1, *hash = (char *)1;
    int r = password_htpasswd_line(l, &user, &hash), good;

    if (want == 0)
        good = r == 0 && user != NULL && hash != NULL && strcmp(user, wuser) == 0 && strcmp(hash, whash) == 0;
    else
        good = r == want && user == NULL && hash == NULL;
    if (r == 0) {
        free(user);
        free(hash);
    }
    return good;
}

static void test_htpasswd(void)
{
    const char *bc = "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
    const char *ys = "$y$j9T$/uIzfczIWNxpUsDmMEymf0$KfK6wpMufpcnUx4ym0ylhh5Ykv1vqrodqXpkQiZh.CB";
    char buf[256];

    snprintf(buf, sizeof(buf), "alice:%s\n", bc);
    ok(line(buf, 0, "alice", bc), "good bcrypt line");
    snprintf(buf, sizeof(buf), "alice:%s", bc);
    ok(line(buf, 0, "alice", bc), "good line without a newline");
    snprintf(buf, sizeof(buf), "alice:%s\r\n", bc);
    ok(line(buf, 0, "alice", bc), "CRLF line ending");
    snprintf(buf, sizeof(buf), "alice:%s  \t\n", bc);
    ok(line(buf, 0, "alice", bc), "trailing blanks");
    snprintf(buf, sizeof(buf), "bob:%s\n", ys);
    ok(line(buf, 0, "bob", ys), "good yescrypt line");
    snprintf(buf, sizeof(buf), "first.last@example.com:%s\n", bc);
    ok(line(buf, 0, "first.last@example.com", bc), "user with dots and @");
    ok(line("# a comment\n", 1, NULL, NULL), "comment skipped");
    ok(line("   # indented comment", 1, NULL, NULL), "indented comment skipped");
    ok(line("", 1, NULL, NULL), "empty line skipped");
    ok(line("\n", 1, NULL, NULL), "blank line skipped");
    ok(line("\r\n", 1, NULL, NULL), "CRLF blank line skipped");
    ok(line("  \t \n", 1, NULL, NULL), "whitespace-only line skipped");
    ok(line("no colon here\n", -1, NULL, NULL), "no colon: malformed");
    snprintf(buf, sizeof(buf), ":%s\n", bc);
    ok(line(buf, -1, NULL, NULL), "empty user: malformed");
    ok(line("carol:\n", -1, NULL, NULL), "empty hash: malformed");
    ok(line("carol:$apr1$Kr3bCqd5$X0yEk4Lz3l1UZX1aWDM6l/\n", -1, NULL, NULL), "MD5 $apr1$ refused");
    ok(line("carol:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", -1, NULL, NULL), "{SHA} refused");
    ok(line("carol:abJnggxhB/yWI\n", -1, NULL, NULL), "DES crypt refused");
    ok(line("carol:plaintext\n", -1, NULL, NULL), "plain text refused");
    snprintf(buf, sizeof(buf), "alice:%s:extra\n", bc);
    ok(line(buf, -1, NULL, NULL), "a third field: malformed");
}

static void test_secrets(void)
{
    static const size_t sizes[] = {0, 1, 2, 3, 16, 32, 33};
    static const size_t lens[] = {0, 2, 3, 4, 22, 43, 44};
    char *seen[100];
    int distinct = 1, charset = 1;

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); ++i) {
        char *s = secret_random(sizes[i]);
        ok(s != NULL && strlen(s) == lens[i], "%zu bytes -> %zu characters", sizes[i], lens[i]);
        free(s);
    }
    for (int i = 0; i < 100; ++i) {
        seen[i] = secret_random(32);
        charset &=
            strspn(seen[i], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == strlen(seen[i]);
        for (int j = 0; j < i; ++j)
            distinct &= strcmp(seen[i], seen[j]) != 0;
    }
    ok(charset, "base64url alphabet only, no padding");
    ok(distinct, "100 secrets, all distinct");
    for (int i = 0; i < 100; ++i)
        free(seen[i]);
}

static void test_equal(void)
{
    ok(secret_equal("abc", 3, "abc", 3) == 1, "equal");
    ok(secret_equal("abc", 3, "abd", 3) == 0, "last byte differs");
    ok(secret_equal("xbc", 3, "abc", 3) == 0, "first byte differs");
    ok(secret_equal("abc", 3, "abcd", 4) == 0, "prefix is not equal");
    ok(secret_equal("abcd", 4, "abc", 3) == 0, "longer is not equal");
    ok(secret_equal("", 0, "", 0) == 1, "empty equals empty");
    ok(secret_equal("a\0b", 3, "a\0c", 3) == 0, "bytes after a NUL count");
}

static void *hash_worker(void *arg)
{
    long good = 1;
    for (int i = 0; i < 3; ++i) {
        char pw[32], *h;
        snprintf(pw, sizeof(pw), "pw-%ld-%d", (long)(size_t)arg, i);
        h = password_hash(pw);
        good &= h != NULL && password_verify(pw, h) == 1 && password_verify("other", h) == 0;
        free(h);
    }
    return (void *)good;
}

static void test_threads(void)
{
    pthread_t t[4];
    long good = 1;

    for (size_t i = 0; i < 4; ++i)
        pthread_create(&t[i], NULL, hash_worker, (void *)i);
    for (int i = 0; i < 4; ++i) {
        void *r;
        pthread_join(t[i], &r);
        good &= (long)r;
    }
    ok(good, "hashing and verifying on 4 threads at once");
}

int main(void)
{
    test_hash();
    test_bcrypt();
    test_other_schemes();
    test_supported();
    test_htpasswd();
    test_secrets();
    test_equal();
    test_threads();
    return tap_done();
}
