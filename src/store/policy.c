#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include "oci/name.h"
#include "store/db.h"
#include "store/policy.h"
#include "util/log.h"
#include "util/status.h"
#include "util/time.h"

typedef struct {
    char *repos;      /* repository pattern */
    pcre2_code *tags; /* NULL: every tag */
} immutable_t;

typedef struct {
    char *repos;
    pcre2_code *tags, *keep; /* NULL: every tag / none */
    long keep_last;          /* -1: not set */
    int64_t keep_within_s;   /* 0: not set */
} retention_t;

struct policy {
    immutable_t *imm;
    size_t nimm;
    retention_t *ret;
    size_t nret;
};

static db_query_t q_tag_target = {"SELECT m.digest FROM repository r JOIN tag t ON t.repository_id = r.id "
                                  "JOIN manifest m ON m.id = t.manifest_id WHERE r.name = ?1 AND t.name = ?2",
                                  0};
static db_query_t q_manifest_tags = {"SELECT t.name FROM repository r JOIN manifest m ON m.repository_id = r.id "
                                     "JOIN tag t ON t.manifest_id = m.id WHERE r.name = ?1 AND m.digest = ?2",
                                     0};
static db_query_t q_repos = {"SELECT id, name FROM repository WHERE mirror = 0 AND name > ?1 ORDER BY name LIMIT 256",
                             0};
static db_query_t q_repo_tags = {"SELECT t.name, t.updated_at, m.digest FROM tag t JOIN manifest m ON m.id = "
                                 "t.manifest_id WHERE t.repository_id = ?1 ORDER BY t.updated_at DESC, t.name",
                                 0};
static db_query_t q_tag_remove = {"DELETE FROM tag WHERE repository_id = ?1 AND name = ?2", 0};

int policy_pattern_covers(const char *p, const char *repo)
{
    size_t len = strlen(p);
    if (len == 1 && p[0] == '*')
        return 1;
    if (len > 2 && p[len - 2] == '/' && p[len - 1] == '*')
        return strncmp(repo, p, len - 1) == 0 && repo[len - 1] != '\0';
    return strcmp(repo, p) == 0;
}

static pcre2_code *compile(const char *re)
{
    int code;
    PCRE2_SIZE at;
    if (re == NULL)
        return NULL;
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, 0, &code, &at, NULL);
    if (c == NULL)
        log_error("policy: pattern %s does not compile", re);
    return c;
}

/* Whether `s` matches `re` (anywhere, as grep would: anchor with ^ and $); a NULL `re` matches everything. */
static int matches(const pcre2_code *re, const char *s)
{
    if (re == NULL)
        return 1;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (md == NULL)
        abort();
    int rc = pcre2_match(re, (PCRE2_SPTR)s, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

policy_t *policy_new(const config_t *cfg)
{
    policy_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->imm = calloc(cfg->nimmutable + 1, sizeof(*p->imm));
    p->ret = calloc(cfg->nretention + 1, sizeof(*p->ret));
    if (p->imm == NULL || p->ret == NULL)
        goto Failed;
    for (size_t i = 0; i < cfg->nimmutable; ++i, ++p->nimm) {
        const config_immutable_t *c = &cfg->immutable[i];
        immutable_t *r = &p->imm[i];
        if ((r->repos = strdup(c->repositories)) == NULL || (c->tags != NULL && (r->tags = compile(c->tags)) == NULL))
            goto Failed;
    }
    for (size_t i = 0; i < cfg->nretention; ++i, ++p->nret) {
        const config_retention_t *c = &cfg->retention[i];
        retention_t *r = &p->ret[i];
        r->keep_last = c->keep_last;
        r->keep_within_s = (int64_t)(c->keep_within_ms / 1000);
        if ((r->repos = strdup(c->repositories)) == NULL || (c->tags != NULL && (r->tags = compile(c->tags)) == NULL) ||
            (c->keep_tags != NULL && (r->keep = compile(c->keep_tags)) == NULL))
            goto Failed;
    }
    return p;
Failed:
    policy_free(p);
    return NULL;
}

void policy_free(policy_t *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i <= p->nimm && p->imm != NULL; ++i) {
        free(p->imm[i].repos);
        pcre2_code_free(p->imm[i].tags);
    }
    for (size_t i = 0; i <= p->nret && p->ret != NULL; ++i) {
        free(p->ret[i].repos);
        pcre2_code_free(p->ret[i].tags);
        pcre2_code_free(p->ret[i].keep);
    }
    free(p->imm);
    free(p->ret);
    free(p);
}

int policy_has_retention(const policy_t *p)
{
    return p != NULL && p->nret > 0;
}

int policy_tag_immutable(const policy_t *p, const char *repo, const char *tag)
{
    for (size_t i = 0; p != NULL && i < p->nimm; ++i)
        if (policy_pattern_covers(p->imm[i].repos, repo) && matches(p->imm[i].tags, tag))
            return 1;
    return 0;
}

/* The digest tag `tag` of `repo` points at, into `out`: 1, 0 if there is no such tag, BERTH_ERROR. */
static int tag_target(db_t *db, const char *repo, const char *tag, char *out)
{
    sqlite3_stmt *s = db_stmt(db, &q_tag_target);
    if (s == NULL)
        return BERTH_ERROR;
    db_bind_text(s, 1, repo);
    db_bind_text(s, 2, tag);
    int rc = db_step(db, s);
    if (rc == 1)
        snprintf(out, DIGEST_MAX_STR + 1, "%s", (const char *)sqlite3_column_text(s, 0));
    db_done(db, s);
    return rc;
}

int policy_check_push(const policy_t *p, metastore_t *m, const char *repo, const digest_t *d, const char *const *tags,
                      size_t ntags, const char **denied)
{
    char cur[DIGEST_MAX_STR + 1];
    for (size_t i = 0; i < ntags; ++i) {
        if (!policy_tag_immutable(p, repo, tags[i]))
            continue;
        int rc = tag_target(m, repo, tags[i], cur);
        if (rc < 0)
            return rc;
        if (rc == 1 && strcmp(cur, d->str) != 0) {
            *denied = tags[i];
            return BERTH_EDENIED;
        }
    }
    return 0;
}

int policy_check_delete(const policy_t *p, metastore_t *m, const char *repo, const char *tag, const digest_t *d,
                        int admin, char *denied)
{
    if (admin || p == NULL || p->nimm == 0)
        return 0;
    if (tag != NULL) {
        char cur[DIGEST_MAX_STR + 1];
        if (!policy_tag_immutable(p, repo, tag))
            return 0;
        int rc = tag_target(m, repo, tag, cur); /* a tag that is not there is answered "unknown" */
        if (rc <= 0)
            return rc;
        snprintf(denied, TAG_MAX_LEN + 1, "%s", tag);
        return BERTH_EDENIED;
    }
    sqlite3_stmt *s = db_stmt(m, &q_manifest_tags);
    if (s == NULL)
        return BERTH_ERROR;
    db_bind_text(s, 1, repo);
    db_bind_text(s, 2, d->str);
    int rc;
    while ((rc = db_step(m, s)) == 1) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        if (policy_tag_immutable(p, repo, t)) {
            snprintf(denied, TAG_MAX_LEN + 1, "%s", t);
            rc = BERTH_EDENIED;
            break;
        }
    }
    db_done(m, s);
    return rc;
}

/* ---- retention ---- */

typedef struct {
    char name[TAG_MAX_LEN + 1];
    char digest[DIGEST_MAX_STR + 1];
    int64_t pushed;
} tag_row_t;

/* The first rule covering `repo`, or NULL. */
static const retention_t *rule_for(const policy_t *p, const char *repo, int *index)
{
    for (size_t i = 0; i < p->nret; ++i)
        if (policy_pattern_covers(p->ret[i].repos, repo)) {
            *index = (int)i;
            return &p->ret[i];
        }
    return NULL;
}

int policy_retention_rule(const policy_t *p, const char *repo)
{
    int index;
    return p != NULL && rule_for(p, repo, &index) != NULL ? index : -1;
}

/* One repository, in one transaction of its own: judge its tags newest first, remove what the rule does not keep. */
static int apply(const policy_t *p, db_t *db, int64_t rid, const char *repo, const retention_t *rule, int index,
                 const retention_options_t *o, retention_stats_t *st, int64_t now)
{
    const char *err;
    tag_row_t *rows = NULL;
    size_t n = 0, cap = 0;
    int rc = db_begin(db, !o->dry_run, &err);
    if (rc != 0) {
        log_error("retention: %s: cannot begin a transaction: %s", repo, err);
        return BERTH_ERROR;
    }
    sqlite3_stmt *s = db_stmt(db, &q_repo_tags);
    if (s == NULL)
        goto Failed;
    sqlite3_bind_int64(s, 1, rid);
    while ((rc = db_step(db, s)) == 1) {
        if (n == cap) {
            tag_row_t *g = realloc(rows, (cap = cap ? 2 * cap : 64) * sizeof(*rows));
            if (g == NULL)
                abort();
            rows = g;
        }
        snprintf(rows[n].name, sizeof(rows[n].name), "%s", (const char *)sqlite3_column_text(s, 0));
        rows[n].pushed = sqlite3_column_int64(s, 1);
        snprintf(rows[n].digest, sizeof(rows[n].digest), "%s", (const char *)sqlite3_column_text(s, 2));
        ++n;
    }
    db_done(db, s);
    if (rc < 0)
        goto Failed;
    long judged = 0;
    for (size_t i = 0; i < n; ++i) {
        const tag_row_t *t = &rows[i];
        if (!matches(rule->tags, t->name))
            continue;
        ++st->examined;
        int keep = (rule->keep_last >= 0 && judged < rule->keep_last) ||
                   (rule->keep_within_s > 0 && t->pushed >= now - rule->keep_within_s) ||
                   (rule->keep != NULL && matches(rule->keep, t->name)) || policy_tag_immutable(p, repo, t->name);
        ++judged;
        if (keep)
            continue;
        if (!o->dry_run) {
            if ((s = db_stmt(db, &q_tag_remove)) == NULL)
                goto Failed;
            sqlite3_bind_int64(s, 1, rid);
            db_bind_text(s, 2, t->name);
            if (db_run(db, s) != 0)
                goto Failed;
        }
        ++st->removed;
        if (o->report != NULL) {
            retention_item_t it = {repo, t->name, t->digest, t->pushed, index};
            o->report(o->ctx, &it);
        }
    }
    free(rows);
    if (o->dry_run) {
        db_rollback(db);
        return 0;
    }
    if (db_commit(db, &err) != 0) {
        log_error("retention: %s: cannot commit: %s", repo, err);
        db_rollback(db);
        return BERTH_ERROR;
    }
    return 0;
Failed:
    free(rows);
    db_rollback(db);
    return BERTH_ERROR;
}

int retention_run(const policy_t *p, metastore_t *db, const retention_options_t *o, retention_stats_t *st)
{
    char last[NAME_MAX_LEN + 1] = "";
    struct {
        int64_t id;
        char name[NAME_MAX_LEN + 1];
    } *page = malloc(256 * sizeof(*page));
    int rc = 0;
    if (page == NULL)
        abort();
    if (!policy_has_retention(p))
        goto Exit;
    int64_t now = time_now_s();
    for (;;) {
        size_t n = 0;
        sqlite3_stmt *s = db_stmt(db, &q_repos);
        if (s == NULL) {
            rc = BERTH_ERROR;
            break;
        }
        db_bind_text(s, 1, last);
        while ((rc = db_step(db, s)) == 1) {
            page[n].id = sqlite3_column_int64(s, 0);
            snprintf(page[n].name, sizeof(page[n].name), "%s", (const char *)sqlite3_column_text(s, 1));
            ++n;
        }
        db_done(db, s);
        if (rc < 0 || n == 0)
            break;
        for (size_t i = 0; i < n && rc == 0; ++i) {
            int index;
            const retention_t *rule = rule_for(p, page[i].name, &index);
            if (rule == NULL)
                continue;
            ++st->repositories;
            rc = apply(p, db, page[i].id, page[i].name, rule, index, o, st, now);
        }
        if (rc != 0 || (o->stop != NULL && __atomic_load_n(o->stop, __ATOMIC_ACQUIRE)))
            break;
        memcpy(last, page[n - 1].name, sizeof(last));
    }
Exit:
    free(page);
    return rc < 0 ? BERTH_ERROR : 0;
}
