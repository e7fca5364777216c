/*
 * Accounts in SQLite.
 *
 * The reads of the request path (accounts_get, _get_by_id, _generation, _repo_facts, _token_check, _token_usable,
 * _refresh_check) keep their statements prepared on the connection: preparing costs 5 to 15 us a statement, more
 * than running it. metastore_t has no room for another module's statements, so they are found again with
 * sqlite3_next_stmt() by their SQL text (a connection is used by one thread at a time: no lock, nothing global).
 * metastore_close() finalizes every statement left on the connection, these included.
 * Everything else (administration) is prepared per call and finalized.
 *
 * Every write is atomic on its own: a savepoint inside the caller's transaction (the writer thread's, the CLI's
 * BEGIN IMMEDIATE), or its own BEGIN IMMEDIATE when there is none.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>
#include "oci/digest.h"
#include "oci/name.h"
#include "store/accounts.h"
#include "util/log.h"
#include "util/secret.h"
#include "util/status.h"

#define ACCOUNT_COLS "id, name, kind, password_hash, admin, disabled, generation"
#define TOKEN_COLS "t.id, t.account_id, t.name, t.scope, t.expires_at, t.revoked, t.created_at"
#define TOKEN_PREFIX "berth_"

/* ---- small helpers ---- */

static sqlite3_stmt *prepare(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        log_error("sqlite prepare: %s: %s", sql, sqlite3_errmsg(db));
        sqlite3_finalize(s);
        return NULL;
    }
    return s;
}

static int step_error(sqlite3 *db, sqlite3_stmt *s)
{
    log_error("sqlite: %s: %s", sqlite3_sql(s), sqlite3_errmsg(db));
    return BERTH_ERROR;
}

/* ---- the request path's statements, kept on the connection ---- */

enum {
    H_GENERATION,
    H_ACCOUNT_BY_NAME,
    H_ACCOUNT_BY_ID,
    H_FACTS,
    H_TOKEN,
    H_TOKEN_USABLE,
    H_REFRESH,
    H__COUNT
};

static const char *const hot_sql[H__COUNT] = {
    [H_GENERATION] = "SELECT value FROM auth_generation WHERE id = 1",
    [H_ACCOUNT_BY_NAME] = "SELECT " ACCOUNT_COLS " FROM account WHERE name = ?1",
    [H_ACCOUNT_BY_ID] = "SELECT " ACCOUNT_COLS " FROM account WHERE id = ?1",
    /* one statement (one read transaction) for accounts_repo_facts; rows (what, actions, pattern):
     *   0: the repository's visibility;
     *   1: namespace rights: the account's own namespace (7: every action), or an organisation's through its teams;
     *   2: grants to the account or its teams, with their pattern (matched in C, not with LIKE: '_' is a wildcard) */
    [H_FACTS] = "SELECT 0, public, NULL FROM repository WHERE name = ?1 "
                "UNION ALL SELECT 1, 7, NULL FROM account WHERE id = ?3 AND name = ?2 "
                "UNION ALL SELECT 1, t.permission, NULL FROM account o JOIN team t ON t.org_id = o.id "
                "JOIN team_member tm ON tm.team_id = t.id WHERE o.name = ?2 AND o.kind = 1 AND tm.account_id = ?3 "
                "UNION ALL SELECT 2, actions, pattern FROM repo_grant WHERE account_id = ?3 "
                "UNION ALL SELECT 2, g.actions, g.pattern FROM team_member tm JOIN repo_grant g ON g.team_id = tm.team_id "
                "WHERE tm.account_id = ?3",
    [H_TOKEN] = "SELECT " TOKEN_COLS ", t.secret_sha256, a.disabled FROM access_token t "
                "JOIN account a ON a.id = t.account_id WHERE t.id = ?1",
    [H_TOKEN_USABLE] = "SELECT 1 FROM access_token t JOIN account a ON a.id = t.account_id WHERE t.id = ?1 "
                       "AND t.revoked = 0 AND (t.expires_at = 0 OR t.expires_at > ?2) AND a.disabled = 0",
    /* looked up by the hash of a 256-bit secret: timing reveals nothing about a secret that matches */
    [H_REFRESH] = "SELECT r.account_id FROM refresh_token r JOIN account a ON a.id = r.account_id "
                  "WHERE r.secret_sha256 = ?1 AND r.expires_at > ?2 AND a.disabled = 0",
};

/* Statement q, ready to bind; *temp is set when it is a one-off to finalize (the kept one is in use further up). */
static sqlite3_stmt *hot(sqlite3 *db, int q, int *temp)
{
    sqlite3_stmt *s;
    int busy = 0;
    for (s = sqlite3_next_stmt(db, NULL); s != NULL; s = sqlite3_next_stmt(db, s)) {
        if (strcmp(sqlite3_sql(s), hot_sql[q]) != 0)
            continue;
        if (!sqlite3_stmt_busy(s)) {
            sqlite3_clear_bindings(s);
            *temp = 0;
            return s;
        }
        busy = 1;
    }
    if (sqlite3_prepare_v3(db, hot_sql[q], -1, busy ? 0 : SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
        log_error("sqlite prepare: %s: %s", hot_sql[q], sqlite3_errmsg(db));
        sqlite3_finalize(s);
        return NULL;
    }
    *temp = busy;
    return s;
}

/* Done with a hot statement: reset it (a statement left mid-way would hold its read transaction open). */
static void hot_done(sqlite3_stmt *s, int temp)
{
    if (temp)
        sqlite3_finalize(s);
    else
        sqlite3_reset(s);
}

/* Run a statement that returns no rows, then finalize it: 0, BERTH_EEXISTS (a unique constraint) or BERTH_ERROR. */
static int run_finalize(sqlite3 *db, sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE)
        rc = 0;
    else if (sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_UNIQUE ||
             sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_PRIMARYKEY)
        rc = BERTH_EEXISTS;
    else
        rc = step_error(db, s);
    sqlite3_finalize(s);
    return rc;
}

static int exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        log_error("sqlite: %s: %s", sql, err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        return BERTH_ERROR;
    }
    return 0;
}

/* A write's own transaction: a savepoint when the caller holds one, else BEGIN IMMEDIATE (never a deferred
 * transaction that would have to upgrade its lock, which fails at once instead of waiting when another
 * connection wrote in between). */
typedef struct {
    sqlite3 *db;
    int outer;
} wtx_t;

static int wtx_begin(wtx_t *t, metastore_t *m)
{
    t->db = metastore_db(m);
    t->outer = sqlite3_get_autocommit(t->db);
    return exec(t->db, t->outer ? "BEGIN IMMEDIATE" : "SAVEPOINT accounts");
}

/* Commit (rc >= 0) or roll back (rc < 0); returns rc, or BERTH_ERROR if the commit failed. */
static int wtx_end(wtx_t *t, int rc)
{
    if (t->outer) {
        if (rc >= 0 && exec(t->db, "COMMIT") == 0)
            return rc;
        exec(t->db, "ROLLBACK");
        return rc >= 0 ? BERTH_ERROR : rc;
    }
    if (rc < 0)
        exec(t->db, "ROLLBACK TO accounts");
    if (exec(t->db, "RELEASE accounts") != 0 && rc >= 0)
        rc = BERTH_ERROR;
    return rc;
}

static void sha256_hex(const char *s, char out[65])
{
    digest_t d;
    digest_compute(&d, DIGEST_SHA256, s, strlen(s));
    memcpy(out, digest_hex(&d), 64);
    out[64] = '\0';
}

static int bump_generation(sqlite3 *db)
{
    sqlite3_stmt *s = prepare(db, "UPDATE auth_generation SET value = value + 1 WHERE id = 1");
    return s ? run_finalize(db, s) : BERTH_ERROR;
}

static int bump_account(sqlite3 *db, int64_t id)
{
    sqlite3_stmt *s = prepare(db, "UPDATE account SET generation = generation + 1 WHERE id = ?1");
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, id);
    return run_finalize(db, s);
}

/* The id and kind of account `name`: 0, BERTH_ENOTFOUND, BERTH_ERROR. */
static int account_lookup(sqlite3 *db, const char *name, int64_t *id, int *kind)
{
    sqlite3_stmt *s = prepare(db, "SELECT id, kind FROM account WHERE name = ?1");
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(s, 0);
        *kind = sqlite3_column_int(s, 1);
        rc = 0;
    } else {
        rc = rc == SQLITE_DONE ? BERTH_ENOTFOUND : step_error(db, s);
    }
    sqlite3_finalize(s);
    return rc;
}

/* An account of one of the kinds in `kinds` (bit 1 << kind): its id, BERTH_ENOTFOUND (absent or another kind). */
static int account_of_kinds(sqlite3 *db, const char *name, unsigned kinds, int64_t *id)
{
    int kind, rc = account_lookup(db, name, id, &kind);
    if (rc == 0 && (kinds & (1u << kind)) == 0)
        rc = BERTH_ENOTFOUND;
    return rc;
}

#define KINDS_PERSON ((1u << ACCOUNT_USER) | (1u << ACCOUNT_ROBOT)) /* who can act: users and robots */

/* Team "org/team" (or separate names): its id, BERTH_ENOTFOUND, BERTH_ERROR. */
static int team_lookup(sqlite3 *db, const char *org, size_t orglen, const char *team, int64_t *id)
{
    sqlite3_stmt *s = prepare(db, "SELECT t.id FROM team t JOIN account o ON o.id = t.org_id "
                                  "WHERE o.name = ?1 AND o.kind = 1 AND t.name = ?2");
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_text(s, 1, org, (int)orglen, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, team, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(s, 0);
        rc = 0;
    } else {
        rc = rc == SQLITE_DONE ? BERTH_ENOTFOUND : step_error(db, s);
    }
    sqlite3_finalize(s);
    return rc;
}

/* ---- names, patterns, scopes ---- */

int accounts_name_valid(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    /* a single path component of the repository grammar: the repository one, without '/' */
    return len > 0 && len <= ACCOUNT_NAME_MAX && strchr(name, '/') == NULL && name_valid(name, len);
}

static int pattern_valid(const char *p, size_t len)
{
    if (len == 1 && p[0] == '*')
        return 1;
    if (len > 2 && p[len - 2] == '/' && p[len - 1] == '*')
        return len - 2 <= NAME_MAX_LEN && name_valid(p, len - 2);
    return len <= NAME_MAX_LEN && name_valid(p, len);
}

int accounts_pattern_valid(const char *pattern)
{
    return pattern != NULL && pattern_valid(pattern, strlen(pattern));
}

/* Whether pattern p (length len, valid) covers repository `repo`. */
static int pattern_covers(const char *p, size_t len, const char *repo)
{
    if (len == 1 && p[0] == '*')
        return 1;
    if (len > 2 && p[len - 2] == '/' && p[len - 1] == '*')
        return strncmp(repo, p, len - 1) == 0 && repo[len - 1] != '\0'; /* "ns/…": "ns/" and something after it */
    return strlen(repo) == len && memcmp(repo, p, len) == 0;
}

/* One scope entry "type:name:actions" split at its first and last colon. -1 if malformed. With `strict`, every
 * action must be known and at least one given. */
typedef struct {
    scope_type_t type;
    const char *name;
    size_t namelen;
    unsigned actions;
} scope_entry_t;

static int scope_entry_parse(scope_entry_t *e, const char *s, size_t len, int strict)
{
    const char *first = memchr(s, ':', len), *last = memrchr(s, ':', len), *a, *end = s + len;
    if (first == NULL || last == first)
        return -1;
    e->name = first + 1;
    e->namelen = (size_t)(last - first - 1);
    if ((size_t)(first - s) == 10 && memcmp(s, "repository", 10) == 0) {
        if (!pattern_valid(e->name, e->namelen))
            return -1;
        e->type = SCOPE_REPOSITORY;
    } else if ((size_t)(first - s) == 8 && memcmp(s, "registry", 8) == 0) {
        if (e->namelen != 7 || memcmp(e->name, "catalog", 7) != 0)
            return -1;
        e->type = SCOPE_REGISTRY;
    } else {
        return -1;
    }
    e->actions = 0;
    for (a = last + 1; a <= end;) {
        const char *comma = memchr(a, ',', (size_t)(end - a));
        const char *stop = comma ? comma : end;
        unsigned bit = scope_action_parse(a, (size_t)(stop - a));
        if (bit == 0 && strict)
            return -1;
        e->actions |= bit;
        a = stop + 1;
    }
    return strict && e->actions == 0 ? -1 : 0;
}

/* Call fn for each space-separated entry of `scope`; stops at the first nonzero return and returns it. */
static int scope_each(const char *scope, int (*fn)(void *ctx, const char *s, size_t len), void *ctx)
{
    const char *p = scope;
    while (*p) {
        while (*p == ' ')
            ++p;
        size_t len = strcspn(p, " ");
        if (len > 0) {
            int rc = fn(ctx, p, len);
            if (rc != 0)
                return rc;
        }
        p += len;
    }
    return 0;
}

static int scope_entry_strict(void *ctx, const char *s, size_t len)
{
    scope_entry_t e;
    ++*(int *)ctx;
    return scope_entry_parse(&e, s, len, 1) == 0 ? 0 : -1;
}

int accounts_scope_valid(const char *scope)
{
    int n = 0;
    if (scope == NULL || strlen(scope) >= sizeof(((access_token_t *)0)->scope))
        return 0;
    return scope_each(scope, scope_entry_strict, &n) == 0 && n > 0;
}

typedef struct {
    scope_type_t type;
    const char *repo;
    unsigned actions;
} scope_match_t;

static int scope_entry_match(void *ctx, const char *s, size_t len)
{
    scope_match_t *mt = ctx;
    scope_entry_t e;
    if (scope_entry_parse(&e, s, len, 0) != 0 || e.type != mt->type)
        return 0; /* invalid entries give nothing, as scope_parse_list skips them */
    if (e.type == SCOPE_REGISTRY || pattern_covers(e.name, e.namelen, mt->repo))
        mt->actions |= e.actions;
    return 0;
}

unsigned accounts_token_scope_actions(const access_token_t *t, scope_type_t type, const char *repo)
{
    scope_match_t mt = {type, repo, 0};
    if (type == SCOPE_REPOSITORY && repo == NULL)
        return 0;
    if (type == SCOPE_REGISTRY && repo != NULL && strcmp(repo, "catalog") != 0)
        return 0;
    scope_each(t->scope, scope_entry_match, &mt);
    return mt.actions & ACTION_ALL;
}

/* ---- accounts ---- */

void account_dispose(account_t *a)
{
    free(a->password_hash);
    a->password_hash = NULL;
}

static int account_get_by(metastore_t *m, int q, const char *name, int64_t id, account_t *out)
{
    sqlite3 *db = metastore_db(m);
    int temp;
    sqlite3_stmt *s = hot(db, q, &temp);
    if (s == NULL)
        return BERTH_ERROR;
    if (name)
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s);
    memset(out, 0, sizeof(*out));
    if (rc == SQLITE_ROW) {
        const char *h = (const char *)sqlite3_column_text(s, 3);
        out->id = sqlite3_column_int64(s, 0);
        snprintf(out->name, sizeof(out->name), "%s", (const char *)sqlite3_column_text(s, 1));
        out->kind = (account_kind_t)sqlite3_column_int(s, 2);
        out->password_hash = h ? strdup(h) : NULL;
        out->admin = sqlite3_column_int(s, 4);
        out->disabled = sqlite3_column_int(s, 5);
        out->generation = sqlite3_column_int64(s, 6);
        rc = 0;
    } else {
        rc = rc == SQLITE_DONE ? BERTH_ENOTFOUND : step_error(db, s);
    }
    hot_done(s, temp);
    return rc;
}

int accounts_get(metastore_t *m, const char *name, account_t *out)
{
    return account_get_by(m, H_ACCOUNT_BY_NAME, name, 0, out);
}

int accounts_get_by_id(metastore_t *m, int64_t id, account_t *out)
{
    return account_get_by(m, H_ACCOUNT_BY_ID, NULL, id, out);
}

int64_t accounts_generation(metastore_t *m)
{
    sqlite3 *db = metastore_db(m);
    int temp;
    sqlite3_stmt *s = hot(db, H_GENERATION, &temp);
    int64_t v = BERTH_ERROR;
    if (s == NULL)
        return BERTH_ERROR;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    else
        step_error(db, s);
    hot_done(s, temp);
    return v;
}

static int account_insert(sqlite3 *db, const char *name, account_kind_t kind, const char *hash, int admin)
{
    if (!accounts_name_valid(name)) {
        log_error("invalid account name");
        return BERTH_ERROR;
    }
    sqlite3_stmt *s = prepare(db, "INSERT INTO account(name, kind, password_hash, admin, created_at) VALUES (?1, ?2, ?3, ?4, ?5)");
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, kind);
    if (hash)
        sqlite3_bind_text(s, 3, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, admin ? 1 : 0);
    sqlite3_bind_int64(s, 5, (int64_t)time(NULL));
    return run_finalize(db, s);
}

static int account_add(metastore_t *m, const char *name, account_kind_t kind, const char *hash, int admin)
{
    wtx_t t;
    if (wtx_begin(&t, m) != 0)
        return BERTH_ERROR;
    return wtx_end(&t, account_insert(t.db, name, kind, hash, admin));
}

int accounts_user_add(metastore_t *m, const char *name, const char *password_hash, int admin)
{
    return account_add(m, name, ACCOUNT_USER, password_hash, admin);
}

int accounts_org_add(metastore_t *m, const char *name)
{
    return account_add(m, name, ACCOUNT_ORG, NULL, 0);
}

int accounts_robot_add(metastore_t *m, const char *name)
{
    return account_add(m, name, ACCOUNT_ROBOT, NULL, 0);
}

int accounts_user_delete(metastore_t *m, const char *name)
{
    wtx_t t;
    int64_t id;
    if (wtx_begin(&t, m) != 0)
        return BERTH_ERROR;
    int rc = account_of_kinds(t.db, name, KINDS_PERSON, &id);
    if (rc == 0) {
        /* tokens, memberships, grants and refresh tokens go with it (ON DELETE CASCADE) */
        sqlite3_stmt *s = prepare(t.db, "DELETE FROM account WHERE id = ?1");
        if (s == NULL) {
            rc = BERTH_ERROR;
        } else {
            sqlite3_bind_int64(s, 1, id);
            if ((rc = run_finalize(t.db, s)) == 0)
                rc = bump_generation(t.db);
        }
    }
    return wtx_end(&t, rc);
}

/* Run `sql` (?1 the id, ?2 `value`) on account `name` of one of `kinds`; with `bump`, bump the generations too. */
static int account_update(metastore_t *m, const char *name, unsigned kinds, const char *sql, int64_t value, int bump)
{
    wtx_t t;
    int64_t id;
    if (wtx_begin(&t, m) != 0)
        return BERTH_ERROR;
    int rc = account_of_kinds(t.db, name, kinds, &id);
    if (rc != 0)
        goto Exit;
    sqlite3_stmt *s = prepare(t.db, sql);
    if (s == NULL) {
        rc = BERTH_ERROR;
        goto Exit;
    }
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, value);
    if ((rc = run_finalize(t.db, s)) == 0 && bump && (rc = bump_account(t.db, id)) == 0)
        rc = bump_generation(t.db);
Exit:
    return wtx_end(&t, rc);
}

int accounts_user_set_password(metastore_t *m, const char *name, const char *password_hash)
{
    wtx_t t;
    int64_t id;
    sqlite3_stmt *s;
    if (password_hash == NULL)
        return BERTH_ERROR;
    if (wtx_begin(&t, m) != 0)
        return BERTH_ERROR;
    int rc = account_of_kinds(t.db, name, 1u << ACCOUNT_USER, &id);
    if (rc != 0)
        goto Exit;
    if ((s = prepare(t.db, "UPDATE account SET password_hash = ?2 WHERE id = ?1")) == NULL) {
        rc = BERTH_ERROR;
        goto Exit;
    }
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_text(s, 2, password_hash, -1, SQLITE_STATIC);
    if ((rc = run_finalize(t.db, s)) != 0)
        goto Exit;
    /* a new password ends the sessions opened with the old one: its refresh tokens go too */
    if ((s = prepare(t.db, "DELETE FROM refresh_token WHERE account_id = ?1")) == NULL) {
        rc = BERTH_ERROR;
        goto Exit;
    }
    sqlite3_bind_int64(s, 1, id);
    if ((rc = run_finalize(t.db, s)) == 0 && (rc = bump_account(t.db, id)) == 0)
        rc = bump_generation(t.db);
Exit:
    return wtx_end(&t, rc);
}

int accounts_user_set_disabled(metastore_t *m, const char *name, int disabled)
{
    return account_update(m, name, KINDS_PERSON, "UPDATE account SET disabled = ?2 WHERE id = ?1", disabled ? 1 : 0,
                          disabled);
}

int accounts_user_set_admin(metastore_t *m, const char *name, int admin)
{
    return account_update(m, name, 1u << ACCOUNT_USER, "UPDATE account SET admin = ?2 WHERE id = ?1", admin ? 1 : 0,
                          !admin);
}

int accounts_list(metastore_t *m, void (*cb)(void *ctx, const account_t *a), void *ctx)
{
    sqlite3 *db = metastore_db(m);
    sqlite3_stmt *s = prepare(db, "SELECT " ACCOUNT_COLS " FROM account ORDER BY name");
    int n = 0, rc;
    if (s == NULL)
        return BERTH_ERROR;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        account_t a = {0};
        a.id = sqlite3_column_int64(s, 0);
        snprintf(a.name, sizeof(a.name), "%s", (const char *)sqlite3_column_text(s, 1));
        a.kind = (account_kind_t)sqlite3_column_int(s, 2);
        a.password_hash = (char *)sqlite3_column_text(s, 3); /* valid during the callback only */
        a.admin = sqlite3_column_int(s, 4);
        a.disabled = sqlite3_column_int(s, 5);
        a.generation = sqlite3_column_int64(s, 6);
        cb(ctx, &a);
        ++n;
    }
    if (rc != SQLITE_DONE)
        n = step_error(db, s);
    sqlite3_finalize(s);
    return n;
}

/* ---- organisations and teams ---- */

int accounts_team_add(metastore_t *m, const char *org, const char *team, unsigned permission)
{
    wtx_t t;
    int64_t org_id;
    if (!accounts_name_valid(team)) {
        log_error("invalid team name");
        return BERTH_ERROR;
    }
    if (wtx_begin(&t, m) != 0)
        return BERTH_ERROR;
    int rc = account_of_kinds(t.db, org, 1u << ACCOUNT_ORG, &org_id);
    if (rc == 0) {
        sqlite3_stmt *s = prepare(t.db, "INSERT INTO team(org_id, name, permission) VALUES (?1, ?2, ?3)");
        if (s == NULL) {
            rc = BERTH_ERROR;
        } else {
            sqlite3_bind_int64(s, 1, org_id);
            sqlite3_bind_text(s, 2, team, -1, SQLITE_STATIC);
            sqlite3_bind_int(s, 3, (int)(permission & ACTION_ALL));
            rc = run_finalize(t.db, s);
        }
    }
    return wtx_end(&t, rc);
}

int accounts_team_member(metastore_t *m, const char *org, const char *team, const char *user, int add)
{
    wtx_t t;
    int64_t team_id, user_id;
    if (wtx_begin(&t, m) != 0)
        return BERTH_ERROR;
    int rc = team_lookup(t.db, org, strlen(org), team, &team_id);
    if (rc == 0)
        rc = account_of_kinds(t.db, user, KINDS_PERSON, &user_id);
    if (rc != 0)
        goto Exit;
    sqlite3_stmt *s = prepare(t.db, add ? "INSERT OR IGNORE INTO team_member(team_id, account_id) VALUES (?1, ?2)"
                                        : "DELETE FROM team_member WHERE team_id = ?1 AND account_id = ?2");
    if (s == NULL) {
        rc = BERTH_ERROR;
        goto Exit;
    }
    sqlite3_bind_int64(s, 1, team_id);
    sqlite3_bind_int64(s, 2, user_id);
    if ((rc = run_finalize(t.db, s)) == 0 && !add)
        rc = sqlite3_changes(t.db) == 0 ? BERTH_ENOTFOUND : bump_generation(t.db);
Exit:
    return wtx_end(&t, rc);
}

/* ---- repositories and grants ---- */

int accounts_repo_set_public(metastore_t *m, const char *repo, int is_public)
{
    wtx_t t;
    if (repo == NULL || strlen(repo) > NAME_MAX_LEN || !name_valid(repo, strlen(repo))) {
        log_error("invalid repository name");
        return BERTH_ERROR;
    }
    if (wtx_begin(&t, m) != 0)
        return BERTH_ERROR;
    int rc = BERTH_ERROR;
    sqlite3_stmt *s = prepare(t.db, "INSERT INTO repository(name, created_at, public) VALUES (?1, ?2, ?3) "
                                    "ON CONFLICT(name) DO UPDATE SET public = excluded.public");
    if (s != NULL) {
        sqlite3_bind_text(s, 1, repo, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, (int64_t)time(NULL));
        sqlite3_bind_int(s, 3, is_public ? 1 : 0);
        if ((rc = run_finalize(t.db, s)) == 0 && !is_public)
            rc = bump_generation(t.db);
    }
    return wtx_end(&t, rc);
}

/* A grantee "user" (a user or robot) or "org/team": sets *account_id or *team_id (the other 0). */
static int grantee_lookup(sqlite3 *db, const char *grantee, int64_t *account_id, int64_t *team_id)
{
    const char *slash = strchr(grantee, '/');
    *account_id = *team_id = 0;
    if (slash)
        return team_lookup(db, grantee, (size_t)(slash - grantee), slash + 1, team_id);
    return account_of_kinds(db, grantee, KINDS_PERSON, account_id);
}

/* SELECT/UPDATE/DELETE a grant row by (pattern, grantee): `who` is "account_id" or "team_id". */
static sqlite3_stmt *grant_stmt(sqlite3 *db, const char *fmt, const char *pattern, int64_t account_id, int64_t team_id)
{
    char sql[256];
    snprintf(sql, sizeof(sql), fmt, account_id ? "account_id" : "team_id");
    sqlite3_stmt *s = prepare(db, sql);
    if (s != NULL) {
        sqlite3_bind_text(s, 1, pattern, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, account_id ? account_id : team_id);
    }
    return s;
}

int accounts_grant_revoke(metastore_t *m, const char *pattern, const char *grantee)
{
    wtx_t t;
    int64_t account_id, team_id;
    if (wtx_begin(&t, m) != 0)
        return BERTH_ERROR;
    int rc = grantee_lookup(t.db, grantee, &account_id, &team_id);
    if (rc == 0) {
        sqlite3_stmt *s = grant_stmt(t.db, "DELETE FROM repo_grant WHERE pattern = ?1 AND %s = ?2", pattern, account_id, team_id);
        if (s == NULL)
            rc = BERTH_ERROR;
        else if ((rc = run_finalize(t.db, s)) == 0)
            rc = sqlite3_changes(t.db) == 0 ? BERTH_ENOTFOUND : bump_generation(t.db);
    }
    return wtx_end(&t, rc);
}

int accounts_grant(metastore_t *m, const char *pattern, const char *grantee, unsigned actions)
{
    wtx_t t;
    int64_t account_id, team_id;
    sqlite3_stmt *s;
    actions &= ACTION_ALL;
    if (actions == 0)
        return accounts_grant_revoke(m, pattern, grantee);
    if (!accounts_pattern_valid(pattern)) {
        log_error("invalid repository pattern");
        return BERTH_ERROR;
    }
    if (wtx_begin(&t, m) != 0)
        return BERTH_ERROR;
    int rc = grantee_lookup(t.db, grantee, &account_id, &team_id);
    if (rc != 0)
        goto Exit;
    if ((s = grant_stmt(t.db, "SELECT id, actions FROM repo_grant WHERE pattern = ?1 AND %s = ?2", pattern, account_id,
                        team_id)) == NULL) {
        rc = BERTH_ERROR;
        goto Exit;
    }
    rc = sqlite3_step(s);
    int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    unsigned old = rc == SQLITE_ROW ? (unsigned)sqlite3_column_int(s, 1) : 0;
    rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : step_error(t.db, s);
    sqlite3_finalize(s);
    if (rc != 0)
        goto Exit;
    if (id != 0) {
        if ((s = prepare(t.db, "UPDATE repo_grant SET actions = ?2 WHERE id = ?1")) == NULL) {
            rc = BERTH_ERROR;
            goto Exit;
        }
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_int(s, 2, (int)actions);
        /* replacing a grant by a narrower one takes rights away */
        if ((rc = run_finalize(t.db, s)) == 0 && (old & ~actions) != 0)
            rc = bump_generation(t.db);
    } else {
        if ((s = prepare(t.db, "INSERT INTO repo_grant(pattern, account_id, team_id, actions) VALUES (?1, ?2, ?3, ?4)")) == NULL) {
            rc = BERTH_ERROR;
            goto Exit;
        }
        sqlite3_bind_text(s, 1, pattern, -1, SQLITE_STATIC);
        if (account_id)
            sqlite3_bind_int64(s, 2, account_id);
        if (team_id)
            sqlite3_bind_int64(s, 3, team_id);
        sqlite3_bind_int(s, 4, (int)actions);
        rc = run_finalize(t.db, s);
    }
Exit:
    return wtx_end(&t, rc);
}

int accounts_repo_facts(metastore_t *m, int64_t account_id, const char *repo, accounts_repo_facts_t *out)
{
    sqlite3 *db = metastore_db(m);
    const char *slash = strchr(repo, '/');
    int rc, temp;
    memset(out, 0, sizeof(*out));

    sqlite3_stmt *s = hot(db, H_FACTS, &temp);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_text(s, 1, repo, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, repo, slash ? (int)(slash - repo) : -1, SQLITE_STATIC); /* the namespace */
    sqlite3_bind_int64(s, 3, account_id);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        unsigned actions = (unsigned)sqlite3_column_int(s, 1);
        switch (sqlite3_column_int(s, 0)) {
        case 0:
            out->exists = 1;
            out->is_public = actions != 0;
            break;
        case 1:
            if (account_id != 0) /* anonymous: nothing, whatever the rows */
                out->ns_actions |= actions & ACTION_ALL;
            break;
        default: {
            const char *p = (const char *)sqlite3_column_text(s, 2);
            if (account_id != 0 && p != NULL && pattern_covers(p, (size_t)sqlite3_column_bytes(s, 2), repo))
                out->granted |= actions & ACTION_ALL;
            break;
        }
        }
    }
    rc = rc == SQLITE_DONE ? 0 : step_error(db, s);
    hot_done(s, temp);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* ---- access tokens ---- */

static void token_from_row(sqlite3_stmt *s, access_token_t *t)
{
    memset(t, 0, sizeof(*t));
    t->id = sqlite3_column_int64(s, 0);
    t->account_id = sqlite3_column_int64(s, 1);
    snprintf(t->name, sizeof(t->name), "%s", (const char *)sqlite3_column_text(s, 2));
    snprintf(t->scope, sizeof(t->scope), "%s", (const char *)sqlite3_column_text(s, 3));
    t->expires_at = sqlite3_column_int64(s, 4);
    t->revoked = sqlite3_column_int(s, 5);
    t->created_at = sqlite3_column_int64(s, 6);
}

int accounts_token_create(metastore_t *m, const char *owner, const char *name, const char *scope, int64_t expires_at,
                          char **secret)
{
    wtx_t t;
    int64_t account_id;
    char *raw = NULL, hex[65];
    *secret = NULL;
    /* the limits of access_token_t: a truncated scope read back would not be the one granted */
    if (name == NULL || name[0] == '\0' || strlen(name) >= sizeof(((access_token_t *)0)->name) || !accounts_scope_valid(scope) ||
        expires_at < 0) {
        log_error("invalid access token name, scope or expiry");
        return BERTH_ERROR;
    }
    if (wtx_begin(&t, m) != 0)
        return BERTH_ERROR;
    int rc = account_of_kinds(t.db, owner, KINDS_PERSON, &account_id);
    if (rc != 0)
        goto Exit;
    if ((raw = secret_random(32)) == NULL) {
        rc = BERTH_ERROR;
        goto Exit;
    }
    sha256_hex(raw, hex);
    sqlite3_stmt *s = prepare(t.db, "INSERT INTO access_token(account_id, name, secret_sha256, scope, expires_at, created_at) "
                                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    if (s == NULL) {
        rc = BERTH_ERROR;
        goto Exit;
    }
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, hex, 64, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, scope, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, expires_at);
    sqlite3_bind_int64(s, 6, (int64_t)time(NULL));
    if ((rc = run_finalize(t.db, s)) != 0)
        goto Exit;
    if (asprintf(secret, TOKEN_PREFIX "%lld_%s", (long long)sqlite3_last_insert_rowid(t.db), raw) < 0) {
        *secret = NULL;
        rc = BERTH_ERROR;
    }
Exit:
    if (raw) {
        OPENSSL_cleanse(raw, strlen(raw));
        free(raw);
    }
    rc = wtx_end(&t, rc);
    if (rc != 0 && *secret) {
        OPENSSL_cleanse(*secret, strlen(*secret));
        free(*secret);
        *secret = NULL;
    }
    return rc;
}

int accounts_token_check(metastore_t *m, const char *presented, int64_t now, access_token_t *out)
{
    sqlite3 *db = metastore_db(m);
    const size_t plen = sizeof(TOKEN_PREFIX) - 1;
    char hex[65], *end;
    int temp;

    if (presented == NULL || strncmp(presented, TOKEN_PREFIX, plen) != 0 || presented[plen] < '1' || presented[plen] > '9')
        return BERTH_ENOTFOUND;
    errno = 0;
    long long id = strtoll(presented + plen, &end, 10);
    if (errno != 0 || *end != '_' || end[1] == '\0')
        return BERTH_ENOTFOUND;
    sha256_hex(end + 1, hex);

    sqlite3_stmt *s = hot(db, H_TOKEN, &temp);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *stored = (const char *)sqlite3_column_text(s, 7);
        int match = stored != NULL && secret_equal(stored, strlen(stored), hex, 64);
        token_from_row(s, out);
        rc = match && !out->revoked && (out->expires_at == 0 || now < out->expires_at) && !sqlite3_column_int(s, 8)
                 ? 0
                 : BERTH_ENOTFOUND;
        if (rc != 0)
            memset(out, 0, sizeof(*out));
    } else {
        rc = rc == SQLITE_DONE ? BERTH_ENOTFOUND : step_error(db, s);
    }
    hot_done(s, temp);
    return rc;
}

int accounts_token_get(metastore_t *m, int64_t id, int64_t now, access_token_t *out)
{
    sqlite3 *db = metastore_db(m);
    int temp;
    sqlite3_stmt *s = hot(db, H_TOKEN, &temp);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        token_from_row(s, out);
        rc = !out->revoked && (out->expires_at == 0 || now < out->expires_at) && !sqlite3_column_int(s, 8) ? 0
                                                                                                              : BERTH_ENOTFOUND;
    } else {
        rc = rc == SQLITE_DONE ? BERTH_ENOTFOUND : step_error(db, s);
    }
    hot_done(s, temp);
    return rc;
}

int accounts_token_usable(metastore_t *m, int64_t id, int64_t now)
{
    sqlite3 *db = metastore_db(m);
    int temp;
    sqlite3_stmt *s = hot(db, H_TOKEN_USABLE, &temp);
    if (s == NULL)
        return 0;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, now);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        step_error(db, s);
    hot_done(s, temp);
    return rc == SQLITE_ROW;
}

int accounts_token_revoke(metastore_t *m, int64_t id)
{
    wtx_t t;
    if (wtx_begin(&t, m) != 0)
        return BERTH_ERROR;
    int rc = BERTH_ERROR;
    sqlite3_stmt *s = prepare(t.db, "UPDATE access_token SET revoked = 1 WHERE id = ?1");
    if (s != NULL) {
        sqlite3_bind_int64(s, 1, id);
        if ((rc = run_finalize(t.db, s)) == 0)
            rc = sqlite3_changes(t.db) == 0 ? BERTH_ENOTFOUND : bump_generation(t.db);
    }
    return wtx_end(&t, rc);
}

int accounts_token_list(metastore_t *m, const char *owner,
                        void (*cb)(void *ctx, const access_token_t *t, const char *owner_name), void *ctx)
{
    sqlite3 *db = metastore_db(m);
    int64_t owner_id = 0;
    int kind, n = 0, rc;
    if (owner != NULL && (rc = account_lookup(db, owner, &owner_id, &kind)) != 0)
        return rc;
    sqlite3_stmt *s = prepare(db, "SELECT " TOKEN_COLS ", a.name FROM access_token t JOIN account a ON a.id = t.account_id "
                                  "WHERE ?1 = 0 OR t.account_id = ?1 ORDER BY t.id");
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, owner_id);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        access_token_t t;
        token_from_row(s, &t);
        cb(ctx, &t, (const char *)sqlite3_column_text(s, 7));
        ++n;
    }
    if (rc != SQLITE_DONE)
        n = step_error(db, s);
    sqlite3_finalize(s);
    return n;
}

/* ---- refresh tokens ---- */

int accounts_refresh_add(metastore_t *m, int64_t account_id, const char *secret, int64_t expires_at)
{
    wtx_t t;
    char hex[65];
    int64_t now = (int64_t)time(NULL);
    sqlite3_stmt *s;
    sha256_hex(secret, hex);
    if (wtx_begin(&t, m) != 0)
        return BERTH_ERROR;
    int rc = BERTH_ERROR;
    /* the account's expired refresh tokens go here, so that the table does not grow with every login */
    if ((s = prepare(t.db, "DELETE FROM refresh_token WHERE account_id = ?1 AND expires_at <= ?2")) == NULL)
        goto Exit;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, now);
    if ((rc = run_finalize(t.db, s)) != 0)
        goto Exit;
    if ((s = prepare(t.db, "INSERT INTO refresh_token(secret_sha256, account_id, expires_at, created_at) "
                           "VALUES (?1, ?2, ?3, ?4)")) == NULL) {
        rc = BERTH_ERROR;
        goto Exit;
    }
    sqlite3_bind_text(s, 1, hex, 64, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, account_id);
    sqlite3_bind_int64(s, 3, expires_at);
    sqlite3_bind_int64(s, 4, now);
    rc = run_finalize(t.db, s);
Exit:
    return wtx_end(&t, rc);
}

int accounts_refresh_check(metastore_t *m, const char *secret, int64_t now, int64_t *account_id)
{
    sqlite3 *db = metastore_db(m);
    char hex[65];
    int temp;
    if (secret == NULL || secret[0] == '\0')
        return BERTH_ENOTFOUND;
    sha256_hex(secret, hex);
    sqlite3_stmt *s = hot(db, H_REFRESH, &temp);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_text(s, 1, hex, 64, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, now);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *account_id = sqlite3_column_int64(s, 0);
        rc = 0;
    } else {
        rc = rc == SQLITE_DONE ? BERTH_ENOTFOUND : step_error(db, s);
    }
    hot_done(s, temp);
    return rc;
}

int accounts_team_exists(metastore_t *m, const char *org, const char *team)
{
    sqlite3_stmt *s;
    sqlite3 *db = metastore_db(m);
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM team t JOIN account o ON o.id = t.org_id WHERE o.name = ?1 AND o.kind = 1 "
                               "AND t.name = ?2", -1, &s, NULL) != SQLITE_OK)
        return BERTH_ERROR;
    sqlite3_bind_text(s, 1, org, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, team, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : BERTH_ERROR;
}
