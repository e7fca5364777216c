/*
 * Runs a fuzz target's LLVMFuzzerTestOneInput over files, without libFuzzer, so that `make check` replays the seed
 * corpora (and any crash reproducer) under the ordinary build. Arguments are files or directories; a directory's
 * regular files are replayed in name order (not recursively). Output is TAP; with no arguments, one empty input.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Read `path` into an exact-size heap buffer, so that ASan catches a target reading past the end. */
static int read_file(const char *path, uint8_t **out, size_t *outlen)
{
    FILE *fp;
    uint8_t *buf = NULL, *nbuf;
    size_t len = 0, cap = 0, n;

    if ((fp = fopen(path, "rb")) == NULL)
        return -1;
    for (;;) {
        if (len == cap) {
            cap = cap != 0 ? cap * 2 : 4096;
            if ((nbuf = realloc(buf, cap)) == NULL)
                goto Error;
            buf = nbuf;
        }
        if ((n = fread(buf + len, 1, cap - len, fp)) == 0)
            break;
        len += n;
    }
    if (ferror(fp))
        goto Error;
    fclose(fp);
    if ((*out = malloc(len != 0 ? len : 1)) == NULL) {
        free(buf);
        return -1;
    }
    memcpy(*out, buf, len);
    free(buf);
    *outlen = len;
    return 0;

Error:
    free(buf);
    fclose(fp);
    return -1;
}

static int replay_file(const char *path, int *n)
{
    uint8_t *data;
    size_t len;

    if (read_file(path, &data, &len) != 0) {
        printf("not ok %d - replay %s: %s\n", ++*n, path, strerror(errno));
        return -1;
    }
    fflush(stdout); /* a crash in the target should not swallow earlier results */
    LLVMFuzzerTestOneInput(data, len);
    free(data);
    printf("ok %d - replay %s\n", ++*n, path);
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_dir(const char *dir, int *n)
{
    DIR *d;
    struct dirent *ent;
    char **paths = NULL, **npaths;
    size_t count = 0;
    int ret = 0;

    if ((d = opendir(dir)) == NULL) {
        printf("not ok %d - replay %s: %s\n", ++*n, dir, strerror(errno));
        return -1;
    }
    while ((ent = readdir(d)) != NULL) {
        struct stat st;
        char *path;
        if (ent->d_name[0] == '.')
            continue;
        if (asprintf(&path, "%s/%s", dir, ent->d_name) < 0)
            abort();
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(path);
            continue;
        }
        if ((npaths = realloc(paths, (count + 1) * sizeof(*paths))) == NULL)
            abort();
        paths = npaths;
        paths[count++] = path;
    }
    closedir(d);
    if (count != 0)
        qsort(paths, count, sizeof(*paths), cmp_names);
    for (size_t i = 0; i < count; ++i) {
        if (replay_file(paths[i], n) != 0)
            ret = -1;
        free(paths[i]);
    }
    free(paths);
    return ret;
}

int main(int argc, char **argv)
{
    int n = 0, failed = 0;

    if (argc < 2) {
        LLVMFuzzerTestOneInput((const uint8_t *)"", 0);
        printf("ok %d - replay (empty input)\n", ++n);
    }
    for (int i = 1; i < argc; ++i) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
            failed |= replay_dir(argv[i], &n) != 0;
        else
            failed |= replay_file(argv[i], &n) != 0;
    }
    printf("1..%d\n", n);
    return failed ? 1 : 0;
}
