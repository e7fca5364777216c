/*
 * `berth backup FILE [--since PREVIOUS]` and `berth restore FILE...` (store/backup.h does the work): the archive is
 * written to FILE.part and renamed to FILE once complete and fsynced ("-": standard output); progress on the terminal
 * (standard error, when it is one). Exit 0 on success, 1 on failure (the message says why), 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli/cli_int.h"
#include "store/backup.h"
#include "store/blobstore.h"
#include "util/time.h"

typedef struct {
    const char *what;
    double t0;
} progress_t;

static void human(uint64_t n, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        ++u;
    }
    snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

/* "\r<what>: 1.2 GiB of 3.4 GiB (35%), 250.0 MiB/s, 0:12 left" on the terminal */
static void show(void *ctx, const backup_progress_t *p)
{
    progress_t *pr = ctx;
    double el = time_mono_s() - pr->t0, rate = el > 0 ? (double)p->done / el : 0;
    char done[32], total[32], speed[32], eta[32] = "";
    human(p->done, done, sizeof(done));
    human((uint64_t)rate, speed, sizeof(speed));
    if (p->total > 0 && !p->final && rate > 0) {
        uint64_t s = (uint64_t)((double)(p->total > p->done ? p->total - p->done : 0) / rate);
        snprintf(eta, sizeof(eta), ", %llu:%02llu left", (unsigned long long)(s / 60), (unsigned long long)(s % 60));
    }
    if (p->total > 0) {
        human(p->total, total, sizeof(total));
        fprintf(stderr, "\r%s: %s of %s (%.0f%%), %s/s%s\033[K", pr->what, done, total,
                100.0 * (double)p->done / (double)p->total, speed, eta);
    } else {
        fprintf(stderr, "\r%s: %s, %s/s\033[K", pr->what, done, speed);
    }
    if (p->final)
        fputc('\n', stderr);
    fflush(stderr);
}

int cli_backup(cli_t *c, int argc, char **argv)
{
    const char *since = NULL, *threads = NULL, *level = NULL;
    char *pos[1], part[4096], err[8192 + 512];
    int help = 0, n, fd;
    backup_options_t o = {0};
    backup_stats_t st;
    progress_t pr = {"backup", time_mono_s()};
    const cli_opt_t opts[] = {{"--since", &since, NULL},
                              {"--threads", &threads, NULL},
                              {"--level", &level, NULL},
                              {"--help", NULL, &help},
                              {NULL}};
    if (cli_args(argc, argv, opts, pos, 0, 1, &n) != 0)
        return CLI_USAGE;
    if (help) {
        printf("usage: berth backup FILE.tar.zst [--since PREVIOUS.tar.zst] [--threads N] [--level N]\n"
               "Writes a consistent backup of %s/ (also while berth serve runs and clients push): the database at one\n"
               "instant and every blob it names, as a tar stream through zstd (--threads workers, default one per\n"
               "CPU; --level, default 3). --since: only the blobs PREVIOUS does not hold (an incremental backup).\n"
               "FILE - writes to standard output. Restore with berth restore. See docs/operations.md.\n",
               c->cfg->storage_root);
        return CLI_OK;
    }
    if (n != 1)
        return cli_usage_error("backup: which file? (- for standard output)");
    if (threads != NULL && ((o.threads = atoi(threads)) < 1 || o.threads > 256))
        return cli_usage_error("invalid --threads %s: 1 to 256", threads);
    if (level != NULL && ((o.level = atoi(level)) < 1 || o.level > 19))
        return cli_usage_error("invalid --level %s: 1 to 19", level);
    o.since = since;
    if (isatty(STDERR_FILENO)) {
        o.progress = show;
        o.ctx = &pr;
    }
    const char *file = pos[0];
    int to_stdout = strcmp(file, "-") == 0;
    if (to_stdout) {
        if (isatty(STDOUT_FILENO))
            return cli_fail("backup: standard output is a terminal: redirect it to a file or a pipe");
        fd = STDOUT_FILENO;
    } else {
        struct stat sb;
        if (lstat(file, &sb) == 0)
            return cli_fail("backup: %s exists: give a new name (a backup never overwrites a file)", file);
        if (snprintf(part, sizeof(part), "%s.part", file) >= (int)sizeof(part))
            return cli_fail("backup: the name %s is too long", file);
        if ((fd = open(part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
            return cli_fail("backup: cannot create %s: %s", part, strerror(errno));
    }
    int rc = backup_write(c->cfg->storage_root, fd, &o, &st, err, sizeof(err));
    if (rc == 0 && !to_stdout && fsync(fd) != 0) {
        snprintf(err, sizeof(err), "cannot write %s: %s", part, strerror(errno));
        rc = -1;
    }
    if (!to_stdout && close(fd) != 0 && rc == 0) {
        snprintf(err, sizeof(err), "cannot write %s: %s", part, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && !to_stdout) {
        char dir[4096];
        const char *slash = strrchr(file, '/');
        snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - file + (slash == file)) : 1, slash ? file : ".");
        if (rename(part, file) != 0 || fsync_dir(dir) != 0) {
            snprintf(err, sizeof(err), "cannot rename %s to %s: %s", part, file, strerror(errno));
            rc = -1;
        }
    }
    if (rc != 0) {
        if (o.progress != NULL)
            fputc('\n', stderr);
        if (!to_stdout)
            unlink(part);
        return cli_fail("backup: %s%s", err, to_stdout ? "" : "; no archive written");
    }
    fprintf(stderr,
            "berth: backup %s (%s%s) of %s: %llu of %llu blobs (%llu of %llu bytes), database %llu bytes; archive %llu "
            "bytes in %.1f s (database copied in %.3f s)\n",
            st.id, st.previous[0] ? "incremental on " : "full", st.previous, c->cfg->storage_root,
            (unsigned long long)st.held, (unsigned long long)st.blobs, (unsigned long long)st.held_bytes,
            (unsigned long long)st.blob_bytes, (unsigned long long)st.db_bytes, (unsigned long long)st.out_bytes,
            st.seconds, st.snapshot_s);
    return CLI_OK;
}

int cli_restore(cli_t *c, int argc, char **argv)
{
    int help = 0, n;
    char err[1024];
    char **pos = calloc((size_t)argc + 1, sizeof(*pos));
    restore_options_t o = {0};
    restore_stats_t st;
    progress_t pr = {"restore", time_mono_s()};
    const cli_opt_t opts[] = {{"--help", NULL, &help}, {NULL}};
    if (cli_args(argc, argv, opts, pos, 0, argc, &n) != 0) {
        free(pos);
        return CLI_USAGE;
    }
    if (help) {
        printf(
            "usage: berth restore FULL.tar.zst [INCREMENTAL.tar.zst...]\n"
            "Restores backups into %s/, which must be empty or missing (storage.root, BERTH_STORAGE_ROOT):\n"
            "a full backup, then the incremental ones built on it, in order; - reads one archive from standard\n"
            "input. Every blob's digest is checked; on any failure the root is left empty. See docs/operations.md.\n",
            c->cfg->storage_root);
        free(pos);
        return CLI_OK;
    }
    if (n < 1) {
        free(pos);
        return cli_usage_error("restore: which archives? (a full backup, then its incremental ones)");
    }
    if (isatty(STDERR_FILENO)) {
        o.progress = show;
        o.ctx = &pr;
    }
    int rc = restore_run(c->cfg->storage_root, pos, n, &o, &st, err, sizeof(err));
    free(pos);
    if (rc != 0) {
        if (o.progress != NULL)
            fputc('\n', stderr);
        return cli_fail("restore: %s", err);
    }
    fprintf(stderr, "berth: restored backup %s (%llu archives) into %s: %llu blobs (%llu bytes) verified, in %.1f s\n",
            st.id, (unsigned long long)st.archives, c->cfg->storage_root, (unsigned long long)st.blobs,
            (unsigned long long)st.blob_bytes, st.seconds);
    return CLI_OK;
}
