/*
 * Accounts in SQLite, on the database layer (store/db.h): every statement is declared once below and kept prepared on
 * each connection that runs it (preparing costs 5 to 15 us a statement, more than running most of them).
 *
 * The two reads of every authenticated request cost no query while nothing is written: the auth generation is a
 * memo of the connection, and repository facts are in the connection's read cache, both stamped with the
 * connection's generation, which also moves when another process (the CLI) commits.
 *
 * Every write is atomic on its own: a savepoint inside the caller's transaction (the writer thread's, the CLI's
 * BEGIN IMMEDIATE), or its own BEGIN IMMEDIATE when there is none.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "oci/digest.h"
#include "oci/name.h"
#include "store/accounts.h"
#include "store/db.h"
#include "util/log.h"
#include "util/secret.h"
#include "util/status.h"
#include "util/time.h"

#define ACCOUNT_COLS "id, name, kind, password_hash, admin, disabled, generation"
#define TOKEN_COLS "t.id, t.account_id, t.name, t.scope, t.expires_at, t.revoked, t.created_at"
#define TOKEN_PREFIX "berth_"

/* ---- statements ---- */

enum {
    Q_GENERATION,
    Q_ACCOUNT_BY_NAME,
    Q_ACCOUNT_BY_ID,
    Q_FACTS,
    Q_TOKEN,
    Q_TOKEN_USABLE,
    Q_REFRESH,
    Q_BUMP_GENERATION,
    Q_BUMP_ACCOUNT,
    Q_ACCOUNT_LOOKUP,
    Q_TEAM_LOOKUP,
    Q_ACCOUNT_INSERT,
    Q_ACCOUNT_DELETE,
    Q_SET_DISABLED,
    Q_SET_ADMIN,
    Q_SET_PASSWORD,
    Q_REFRESH_DELETE_ACCOUNT,
    Q_ACCOUNT_LIST,
    Q_TEAM_INSERT,
    Q_MEMBER_INSERT,
    Q_MEMBER_DELETE,
    Q_REPO_SET_PUBLIC,
    Q_GRANT_GET_ACCOUNT,
    Q_GRANT_GET_TEAM,
    Q_GRANT_DELETE_ACCOUNT,
    Q_GRANT_DELETE_TEAM,
    Q_GRANT_UPDATE,
    Q_GRANT_INSERT,
    Q_TOKEN_INSERT,
    Q_TOKEN_REVOKE,
    Q_TOKEN_LIST,
    Q_REFRESH_DELETE_EXPIRED,
    Q_REFRESH_INSERT,
    Q_REFRESH_USABLE,
    Q_REFRESH_USED,
    Q_REFRESH_LIST,
    Q_REFRESH_REVOKE,
    Q__COUNT
};

static db_query_t queries[Q__COUNT] = {
    [Q_GENERATION] = {"SELECT value FROM auth_generation WHERE id = 1"},
    [Q_ACCOUNT_BY_NAME] = {"SELECT " ACCOUNT_COLS " FROM account WHERE name = ?1"},
    [Q_ACCOUNT_BY_ID] = {"SELECT " ACCOUNT_COLS " FROM account WHERE id = ?1"},
    /* one statement (one read transaction) for accounts_repo_facts; rows (what, actions, pattern):
     *   0: the repository's visibility;
     *   1: namespace rights: the account's own namespace (7: every action), or an organisation's through its teams;
     *   2: grants to the account or its teams, with their pattern (matched in C, not with LIKE: '_' is a wildcard) */
    [Q_FACTS] =
        {"SELECT 0, public, NULL FROM repository WHERE name = ?1 "
         "UNION ALL SELECT 1, 7, NULL FROM account WHERE id = ?3 AND name = ?2 "
         "UNION ALL SELECT 1, t.permission, NULL FROM account o JOIN team t ON t.org_id = o.id "
         "JOIN team_member tm ON tm.team_id = t.id WHERE o.name = ?2 AND o.kind = 1 AND tm.account_id = ?3 "
         "UNION ALL SELECT 2, actions, pattern FROM repo_grant WHERE account_id = ?3 "
         "UNION ALL SELECT 2, g.actions, g.pattern FROM team_member tm JOIN repo_grant g ON g.team_id = tm.team_id "
         "WHERE tm.account_id = ?3"},
    [Q_TOKEN] = {"SELECT " TOKEN_COLS ", t.secret_sha256, a.disabled FROM access_token t "
                 "JOIN account a ON a.id = t.account_id WHERE t.id = ?1"},
    [Q_TOKEN_USABLE] = {"SELECT 1 FROM access_token t JOIN account a ON a.id = t.account_id WHERE t.id = ?1 "
                        "AND t.revoked = 0 AND (t.expires_at = 0 OR t.expires_at > ?2) AND a.disabled = 0"},
    /* looked up by the hash of a 256-bit secret: timing reveals nothing about a secret that matches */
    [Q_REFRESH] = {"SELECT r.account_id, r.id FROM refresh_token r JOIN account a ON a.id = r.account_id "
                   "WHERE r.secret_sha256 = ?1 AND r.expires_at > ?2 AND a.disabled = 0"},
    [Q_BUMP_GENERATION] = {"UPDATE auth_generation SET value = value + 1 WHERE id = 1"},
    [Q_BUMP_ACCOUNT] = {"UPDATE account SET generation = generation + 1 WHERE id = ?1"},
    [Q_ACCOUNT_LOOKUP] = {"SELECT id, kind FROM account WHERE name = ?1"},
    [Q_TEAM_LOOKUP] = {"SELECT t.id FROM team t JOIN account o ON o.id = t.org_id "
                       "WHERE o.name = ?1 AND o.kind = 1 AND t.name = ?2"},
    [Q_ACCOUNT_INSERT] =
        {"INSERT INTO account(name, kind, password_hash, admin, created_at) VALUES (?1, ?2, ?3, ?4, ?5)"},
    [Q_ACCOUNT_DELETE] = {"DELETE FROM account WHERE id = ?1"},
    [Q_SET_DISABLED] = {"UPDATE account SET disabled = ?2 WHERE id = ?1"},
    [Q_SET_ADMIN] = {"UPDATE account SET admin = ?2 WHERE id = ?1"},
    [Q_SET_PASSWORD] = {"UPDATE account SET password_hash = ?2 WHERE id = ?1"},
    [Q_REFRESH_DELETE_ACCOUNT] = {"DELETE FROM refresh_token WHERE account_id = ?1"},
    [Q_ACCOUNT_LIST] = {"SELECT " ACCOUNT_COLS " FROM account ORDER BY name"},
    [Q_TEAM_INSERT] = {"INSERT INTO team(org_id, name, permission) VALUES (?1, ?2, ?3)"},
    [Q_MEMBER_INSERT] = {"INSERT OR IGNORE INTO team_member(team_id, account_id) VALUES (?1, ?2)"},
    [Q_MEMBER_DELETE] = {"DELETE FROM team_member WHERE team_id = ?1 AND account_id = ?2"},
    [Q_REPO_SET_PUBLIC] = {"INSERT INTO repository(name, created_at, public) VALUES (?1, ?2, ?3) "
                           "ON CONFLICT(name) DO UPDATE SET public = excluded.public"},
    /* a grant by (pattern, grantee): the grantee is an account or a team */
    [Q_GRANT_GET_ACCOUNT] = {"SELECT id, actions FROM repo_grant WHERE pattern = ?1 AND account_id = ?2"},
    [Q_GRANT_GET_TEAM] = {"SELECT id, actions FROM repo_grant WHERE pattern = ?1 AND team_id = ?2"},
    [Q_GRANT_DELETE_ACCOUNT] = {"DELETE FROM repo_grant WHERE pattern = ?1 AND account_id = ?2"},
    [Q_GRANT_DELETE_TEAM] = {"DELETE FROM repo_grant WHERE pattern = ?1 AND team_id = ?2"},
    [Q_GRANT_UPDATE] = {"UPDATE repo_grant SET actions = ?2 WHERE id = ?1"},
    [Q_GRANT_INSERT] = {"INSERT INTO repo_grant(pattern, account_id, team_id, actions) VALUES (?1, ?2, ?3, ?4)"},
    [Q_TOKEN_INSERT] = {"INSERT INTO access_token(account_id, name, secret_sha256, scope, expires_at, created_at) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6)"},
    [Q_TOKEN_REVOKE] = {"UPDATE access_token SET revoked = 1 WHERE id = ?1"},
    [Q_TOKEN_LIST] = {"SELECT " TOKEN_COLS ", a.name FROM access_token t JOIN account a ON a.id = t.account_id "
                      "WHERE ?1 = 0 OR t.account_id = ?1 ORDER BY t.id"},
    /* the account's expired refresh tokens go when it gets a new one, so that the table does not grow with
     * every login */
    [Q_REFRESH_DELETE_EXPIRED] = {"DELETE FROM refresh_token WHERE account_id = ?1 AND expires_at <= ?2"},
    [Q_REFRESH_INSERT] = {"INSERT INTO refresh_token(secret_sha256, account_id, expires_at, created_at, client) "
                          "VALUES (?1, ?2, ?3, ?4, ?5)"},
    [Q_REFRESH_USABLE] = {"SELECT 1 FROM refresh_token WHERE id = ?1 AND expires_at > ?2"},
    [Q_REFRESH_USED] = {"UPDATE refresh_token SET last_used_at = ?2 WHERE id = ?1"},
    [Q_REFRESH_LIST] = {"SELECT r.id, r.account_id, r.client, r.created_at, r.last_used_at, r.expires_at, a.name "
                        "FROM refresh_token r JOIN account a ON a.id = r.account_id "
                        "WHERE ?1 = 0 OR r.account_id = ?1 ORDER BY r.id"},
    [Q_REFRESH_REVOKE] = {"DELETE FROM refresh_token WHERE id = ?1"},
};

static sqlite3_stmt *stmt(metastore_t *m, int q)
{
    return db_stmt(m, &queries[q]);
}

/* ---- small helpers ---- */

static void sha256_hex(const char *s, char out[65])
{
    digest_t d;
    digest_compute(&d, DIGEST_SHA256, s, strlen(s));
    memcpy(out, digest_hex(&d), 64);
    out[64] = '\0';
}

/* Run statement q with ?1 = `id`: 0, BERTH_EEXISTS, BERTH_ERROR. */
static int run_id(metastore_t *m, int q, int64_t id)
{
    sqlite3_stmt *s = stmt(m, q);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, id);
    return db_run(m, s);
}

static int bump_generation(metastore_t *m)
{
    sqlite3_stmt *s = stmt(m, Q_BUMP_GENERATION);
    return s ? db_run(m, s) : BERTH_ERROR;
}

static int bump_account(metastore_t *m, int64_t id)
{
    return run_id(m, Q_BUMP_ACCOUNT, id);
}

/* The id and kind of account `name`: 0, BERTH_ENOTFOUND, BERTH_ERROR. */
static int account_lookup(metastore_t *m, const char *name, int64_t *id, int *kind)
{
    sqlite3_stmt *s = stmt(m, Q_ACCOUNT_LOOKUP);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int rc = db_step(m, s);
    if (rc == 1) {
        *id = sqlite3_column_int64(s, 0);
        *kind = sqlite3_column_int(s, 1);
        rc = 0;
    } else if (rc == 0) {
        rc = BERTH_ENOTFOUND;
    }
    db_done(m, s);
    return rc;
}

/* An account of one of the kinds in `kinds` (bit 1 << kind): its id, BERTH_ENOTFOUND (absent or another kind). */
static int account_of_kinds(metastore_t *m, const char *name, unsigned kinds, int64_t *id)
{
    int kind, rc = account_lookup(m, name, id, &kind);
    if (rc == 0 && (kinds & (1u << kind)) == 0)
        rc = BERTH_ENOTFOUND;
    return rc;
}

#define KINDS_PERSON ((1u << ACCOUNT_USER) | (1u << ACCOUNT_ROBOT)) /* who can act: users and robots */

/* Team "org/team" (or separate names): its id, BERTH_ENOTFOUND, BERTH_ERROR. */
static int team_lookup(metastore_t *m, const char *org, size_t orglen, const char *team, int64_t *id)
{
    sqlite3_stmt *s = stmt(m, Q_TEAM_LOOKUP);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_text(s, 1, org, (int)orglen, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, team, -1, SQLITE_STATIC);
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

/* An account row (ACCOUNT_COLS) into *a; the password hash is borrowed from the row. */
static void account_from_row(sqlite3_stmt *s, account_t *a)
{
    memset(a, 0, sizeof(*a));
    a->id = sqlite3_column_int64(s, 0);
    snprintf(a->name, sizeof(a->name), "%s", (const char *)sqlite3_column_text(s, 1));
    a->kind = (account_kind_t)sqlite3_column_int(s, 2);
    a->password_hash = (char *)sqlite3_column_text(s, 3);
    a->admin = sqlite3_column_int(s, 4);
    a->disabled = sqlite3_column_int(s, 5);
    a->generation = sqlite3_column_int64(s, 6);
}

static int account_get_by(metastore_t *m, int q, const char *name, int64_t id, account_t *out)
{
    sqlite3_stmt *s = stmt(m, q);
    if (s == NULL)
        return BERTH_ERROR;
    if (name)
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(s, 1, id);
    int rc = db_step(m, s);
    memset(out, 0, sizeof(*out));
    if (rc == 1) {
        account_from_row(s, out);
        out->password_hash = out->password_hash ? strdup(out->password_hash) : NULL;
        rc = 0;
    } else if (rc == 0) {
        rc = BERTH_ENOTFOUND;
    }
    db_done(m, s);
    return rc;
}

int accounts_get(metastore_t *m, const char *name, account_t *out)
{
    return account_get_by(m, Q_ACCOUNT_BY_NAME, name, 0, out);
}

int accounts_get_by_id(metastore_t *m, int64_t id, account_t *out)
{
    return account_get_by(m, Q_ACCOUNT_BY_ID, NULL, id, out);
}

/* Asked on every authenticated request: remembered on the connection while its generation stays (store/db.h),
 * which a CLI's commit moves too, so that a revocation is still seen on the very next request. */
int64_t accounts_generation(metastore_t *m)
{
    int64_t v = BERTH_ERROR;
    uint64_t gen;
    if (db_memo_get(m, DB_MEMO_AUTH_GENERATION, &v, &gen))
        return v;
    sqlite3_stmt *s = stmt(m, Q_GENERATION);
    if (s == NULL)
        return BERTH_ERROR;
    int rc = db_step(m, s);
    if (rc == 1)
        v = sqlite3_column_int64(s, 0);
    else if (rc == 0)
        db_step_error(m, s);
    db_done(m, s);
    if (v != BERTH_ERROR)
        db_memo_set(m, DB_MEMO_AUTH_GENERATION, gen, v);
    return v;
}

static int account_insert(metastore_t *m, const char *name, account_kind_t kind, const char *hash, int admin)
{
    if (!accounts_name_valid(name)) {
        log_error("invalid account name");
        return BERTH_ERROR;
    }
    sqlite3_stmt *s = stmt(m, Q_ACCOUNT_INSERT);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, kind);
    if (hash)
        sqlite3_bind_text(s, 3, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, admin ? 1 : 0);
    sqlite3_bind_int64(s, 5, time_now_s());
    return db_run(m, s);
}

static int account_add(metastore_t *m, const char *name, account_kind_t kind, const char *hash, int admin)
{
    db_atomic_t t;
    if (db_atomic_begin(&t, m) != 0)
        return BERTH_ERROR;
    return db_atomic_end(&t, account_insert(m, name, kind, hash, admin));
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
    db_atomic_t t;
    int64_t id;
    if (db_atomic_begin(&t, m) != 0)
        return BERTH_ERROR;
    int rc = account_of_kinds(m, name, KINDS_PERSON, &id);
    /* tokens, memberships, grants and refresh tokens go with it (ON DELETE CASCADE) */
    if (rc == 0 && (rc = run_id(m, Q_ACCOUNT_DELETE, id)) == 0)
        rc = bump_generation(m);
    return db_atomic_end(&t, rc);
}

/* Run statement q (?1 the id, ?2 `value`) on account `name` of one of `kinds`; with `bump`, bump the
 * generations too. */
static int account_update(metastore_t *m, const char *name, unsigned kinds, int q, int64_t value, int bump)
{
    db_atomic_t t;
    int64_t id;
    if (db_atomic_begin(&t, m) != 0)
        return BERTH_ERROR;
    int rc = account_of_kinds(m, name, kinds, &id);
    if (rc != 0)
        goto Exit;
    sqlite3_stmt *s = stmt(m, q);
    if (s == NULL) {
        rc = BERTH_ERROR;
        goto Exit;
    }
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, value);
    if ((rc = db_run(m, s)) == 0 && bump && (rc = bump_account(m, id)) == 0)
        rc = bump_generation(m);
Exit:
    return db_atomic_end(&t, rc);
}

int accounts_user_set_password(metastore_t *m, const char *name, const char *password_hash)
{
    db_atomic_t t;
    int64_t id;
    sqlite3_stmt *s;
    if (password_hash == NULL)
        return BERTH_ERROR;
    if (db_atomic_begin(&t, m) != 0)
        return BERTH_ERROR;
    int rc = account_of_kinds(m, name, 1u << ACCOUNT_USER, &id);
    if (rc != 0)
        goto Exit;
    if ((s = stmt(m, Q_SET_PASSWORD)) == NULL) {
        rc = BERTH_ERROR;
        goto Exit;
    }
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_text(s, 2, password_hash, -1, SQLITE_STATIC);
    if ((rc = db_run(m, s)) != 0)
        goto Exit;
    /* a new password ends the sessions opened with the old one: its refresh tokens go too */
    if ((rc = run_id(m, Q_REFRESH_DELETE_ACCOUNT, id)) == 0 && (rc = bump_account(m, id)) == 0)
        rc = bump_generation(m);
Exit:
    return db_atomic_end(&t, rc);
}

int accounts_user_set_disabled(metastore_t *m, const char *name, int disabled)
{
    return account_update(m, name, KINDS_PERSON, Q_SET_DISABLED, disabled ? 1 : 0, disabled);
}

int accounts_user_set_admin(metastore_t *m, const char *name, int admin)
{
    return account_update(m, name, 1u << ACCOUNT_USER, Q_SET_ADMIN, admin ? 1 : 0, !admin);
}

int accounts_list(metastore_t *m, void (*cb)(void *ctx, const account_t *a), void *ctx)
{
    sqlite3_stmt *s = stmt(m, Q_ACCOUNT_LIST);
    int n = 0, rc;
    if (s == NULL)
        return BERTH_ERROR;
    while ((rc = db_step(m, s)) == 1) {
        account_t a;
        account_from_row(s, &a); /* the password hash valid during the callback only */
        cb(ctx, &a);
        ++n;
    }
    db_done(m, s);
    return rc < 0 ? rc : n;
}

/* ---- organisations and teams ---- */

int accounts_team_add(metastore_t *m, const char *org, const char *team, unsigned permission)
{
    db_atomic_t t;
    int64_t org_id;
    if (!accounts_name_valid(team)) {
        log_error("invalid team name");
        return BERTH_ERROR;
    }
    if (db_atomic_begin(&t, m) != 0)
        return BERTH_ERROR;
    int rc = account_of_kinds(m, org, 1u << ACCOUNT_ORG, &org_id);
    if (rc == 0) {
        sqlite3_stmt *s = stmt(m, Q_TEAM_INSERT);
        if (s == NULL) {
            rc = BERTH_ERROR;
        } else {
            sqlite3_bind_int64(s, 1, org_id);
            sqlite3_bind_text(s, 2, team, -1, SQLITE_STATIC);
            sqlite3_bind_int(s, 3, (int)(permission & ACTION_ALL));
            rc = db_run(m, s);
        }
    }
    return db_atomic_end(&t, rc);
}

int accounts_team_member(metastore_t *m, const char *org, const char *team, const char *user, int add)
{
    db_atomic_t t;
    int64_t team_id, user_id;
    if (db_atomic_begin(&t, m) != 0)
        return BERTH_ERROR;
    int rc = team_lookup(m, org, strlen(org), team, &team_id);
    if (rc == 0)
        rc = account_of_kinds(m, user, KINDS_PERSON, &user_id);
    if (rc != 0)
        goto Exit;
    sqlite3_stmt *s = stmt(m, add ? Q_MEMBER_INSERT : Q_MEMBER_DELETE);
    if (s == NULL) {
        rc = BERTH_ERROR;
        goto Exit;
    }
    sqlite3_bind_int64(s, 1, team_id);
    sqlite3_bind_int64(s, 2, user_id);
    if ((rc = db_run(m, s)) == 0 && !add)
        rc = db_changes(m) == 0 ? BERTH_ENOTFOUND : bump_generation(m);
Exit:
    return db_atomic_end(&t, rc);
}

int accounts_team_exists(metastore_t *m, const char *org, const char *team)
{
    int64_t id;
    int rc = team_lookup(m, org, strlen(org), team, &id);
    return rc == 0 ? 1 : rc == BERTH_ENOTFOUND ? 0 : BERTH_ERROR;
}

/* ---- repositories and grants ---- */

int accounts_repo_set_public(metastore_t *m, const char *repo, int is_public)
{
    db_atomic_t t;
    if (repo == NULL || strlen(repo) > NAME_MAX_LEN || !name_valid(repo, strlen(repo))) {
        log_error("invalid repository name");
        return BERTH_ERROR;
    }
    if (db_atomic_begin(&t, m) != 0)
        return BERTH_ERROR;
    int rc = BERTH_ERROR;
    sqlite3_stmt *s = stmt(m, Q_REPO_SET_PUBLIC);
    if (s != NULL) {
        sqlite3_bind_text(s, 1, repo, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, time_now_s());
        sqlite3_bind_int(s, 3, is_public ? 1 : 0);
        if ((rc = db_run(m, s)) == 0 && !is_public)
            rc = bump_generation(m);
    }
    return db_atomic_end(&t, rc);
}

/* A grantee "user" (a user or robot) or "org/team": sets *account_id or *team_id (the other 0). */
static int grantee_lookup(metastore_t *m, const char *grantee, int64_t *account_id, int64_t *team_id)
{
    const char *slash = strchr(grantee, '/');
    *account_id = *team_id = 0;
    if (slash)
        return team_lookup(m, grantee, (size_t)(slash - grantee), slash + 1, team_id);
    return account_of_kinds(m, grantee, KINDS_PERSON, account_id);
}

/* Statement q_account or q_team on the grant row (pattern, grantee), bound. */
static sqlite3_stmt *grant_stmt(metastore_t *m, int q_account, int q_team, const char *pattern, int64_t account_id,
                                int64_t team_id)
{
    sqlite3_stmt *s = stmt(m, account_id ? q_account : q_team);
    if (s != NULL) {
        sqlite3_bind_text(s, 1, pattern, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, account_id ? account_id : team_id);
    }
    return s;
}

int accounts_grant_revoke(metastore_t *m, const char *pattern, const char *grantee)
{
    db_atomic_t t;
    int64_t account_id, team_id;
    if (db_atomic_begin(&t, m) != 0)
        return BERTH_ERROR;
    int rc = grantee_lookup(m, grantee, &account_id, &team_id);
    if (rc == 0) {
        sqlite3_stmt *s = grant_stmt(m, Q_GRANT_DELETE_ACCOUNT, Q_GRANT_DELETE_TEAM, pattern, account_id, team_id);
        if (s == NULL)
            rc = BERTH_ERROR;
        else if ((rc = db_run(m, s)) == 0)
            rc = db_changes(m) == 0 ? BERTH_ENOTFOUND : bump_generation(m);
    }
    return db_atomic_end(&t, rc);
}

/* Replace the actions of grant `id` (which had `old`); a narrower grant takes rights away. */
static int grant_update(metastore_t *m, int64_t id, unsigned old, unsigned actions)
{
    sqlite3_stmt *s = stmt(m, Q_GRANT_UPDATE);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int(s, 2, (int)actions);
    int rc = db_run(m, s);
    if (rc == 0 && (old & ~actions) != 0)
        rc = bump_generation(m);
    return rc;
}

static int grant_insert(metastore_t *m, const char *pattern, int64_t account_id, int64_t team_id, unsigned actions)
{
    sqlite3_stmt *s = stmt(m, Q_GRANT_INSERT);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_text(s, 1, pattern, -1, SQLITE_STATIC);
    if (account_id)
        sqlite3_bind_int64(s, 2, account_id);
    if (team_id)
        sqlite3_bind_int64(s, 3, team_id);
    sqlite3_bind_int(s, 4, (int)actions);
    return db_run(m, s);
}

int accounts_grant(metastore_t *m, const char *pattern, const char *grantee, unsigned actions)
{
    db_atomic_t t;
    int64_t account_id, team_id, id = 0;
    unsigned old = 0;
    actions &= ACTION_ALL;
    if (actions == 0)
        return accounts_grant_revoke(m, pattern, grantee);
    if (!accounts_pattern_valid(pattern)) {
        log_error("invalid repository pattern");
        return BERTH_ERROR;
    }
    if (db_atomic_begin(&t, m) != 0)
        return BERTH_ERROR;
    int rc = grantee_lookup(m, grantee, &account_id, &team_id);
    if (rc != 0)
        goto Exit;
    sqlite3_stmt *s = grant_stmt(m, Q_GRANT_GET_ACCOUNT, Q_GRANT_GET_TEAM, pattern, account_id, team_id);
    if (s == NULL) {
        rc = BERTH_ERROR;
        goto Exit;
    }
    if ((rc = db_step(m, s)) == 1) {
        id = sqlite3_column_int64(s, 0);
        old = (unsigned)sqlite3_column_int(s, 1);
    }
    db_done(m, s);
    if (rc >= 0)
        rc = id != 0 ? grant_update(m, id, old, actions) : grant_insert(m, pattern, account_id, team_id, actions);
Exit:
    return db_atomic_end(&t, rc);
}

/* The facts from the database (one statement: one read transaction). */
static int facts_query(metastore_t *m, int64_t account_id, const char *repo, accounts_repo_facts_t *out)
{
    const char *slash = strchr(repo, '/');
    int rc;
    sqlite3_stmt *s = stmt(m, Q_FACTS);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_text(s, 1, repo, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, repo, slash ? (int)(slash - repo) : -1, SQLITE_STATIC); /* the namespace */
    sqlite3_bind_int64(s, 3, account_id);
    while ((rc = db_step(m, s)) == 1) {
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
    db_done(m, s);
    return rc < 0 ? rc : 0;
}

/* The check of every authenticated request: cached per (account, repository) on a loop's connection. */
int accounts_repo_facts(metastore_t *m, int64_t account_id, const char *repo, accounts_repo_facts_t *out)
{
    char id[24];
    uint64_t gen;
    cache_t *c = db_cache(m, &gen);
    cache_key_t k = {0};
    const cache_value_t *hit;
    cache_value_t *v;
    memset(out, 0, sizeof(*out));
    if (c != NULL) {
        snprintf(id, sizeof(id), "%lld", (long long)account_id);
        k = cache_key('f', repo, id);
        if ((hit = cache_get(c, gen, &k)) != NULL) {
            *out = (accounts_repo_facts_t){(int)hit->num[0], (int)hit->num[1], (unsigned)hit->num[2],
                                           (unsigned)hit->num[3]};
            return 0;
        }
    }
    int rc = facts_query(m, account_id, repo, out);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    else if (c != NULL && (v = cache_put(c, gen, &k, NULL, 0)) != NULL)
        *v = (cache_value_t){{out->exists, out->is_public, out->ns_actions, out->granted}, NULL, 0};
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

/* Insert the token row for a new secret; its id is then the last insert's. */
static int token_insert(metastore_t *m, int64_t account_id, const char *name, const char *hex, const char *scope,
                        int64_t expires_at)
{
    sqlite3_stmt *s = stmt(m, Q_TOKEN_INSERT);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, hex, 64, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, scope, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, expires_at);
    sqlite3_bind_int64(s, 6, time_now_s());
    return db_run(m, s);
}

int accounts_token_create(metastore_t *m, const char *owner, const char *name, const char *scope, int64_t expires_at,
                          char **secret)
{
    db_atomic_t t;
    int64_t account_id;
    char *raw = NULL, hex[65];
    *secret = NULL;
    /* the limits of access_token_t: a truncated scope read back would not be the one granted */
    if (name == NULL || name[0] == '\0' || strlen(name) >= sizeof(((access_token_t *)0)->name) ||
        !accounts_scope_valid(scope) || expires_at < 0) {
        log_error("invalid access token name, scope or expiry");
        return BERTH_ERROR;
    }
    if (db_atomic_begin(&t, m) != 0)
        return BERTH_ERROR;
    int rc = account_of_kinds(m, owner, KINDS_PERSON, &account_id);
    if (rc != 0)
        goto Exit;
    if ((raw = secret_random(32)) == NULL) {
        rc = BERTH_ERROR;
        goto Exit;
    }
    sha256_hex(raw, hex);
    if ((rc = token_insert(m, account_id, name, hex, scope, expires_at)) != 0)
        goto Exit;
    if (asprintf(secret, TOKEN_PREFIX "%lld_%s", (long long)db_last_id(m), raw) < 0) {
        *secret = NULL;
        rc = BERTH_ERROR;
    }
Exit:
    if (raw) {
        OPENSSL_cleanse(raw, strlen(raw));
        free(raw);
    }
    rc = db_atomic_end(&t, rc);
    if (rc != 0 && *secret) {
        OPENSSL_cleanse(*secret, strlen(*secret));
        free(*secret);
        *secret = NULL;
    }
    return rc;
}

/* Token `id` (Q_TOKEN) if usable at `now`: 0 with *out, BERTH_ENOTFOUND, BERTH_ERROR. With `hex`, the stored
 * secret's hash must match it too (compared in constant time). */
static int token_find(metastore_t *m, int64_t id, const char *hex, int64_t now, access_token_t *out)
{
    sqlite3_stmt *s = stmt(m, Q_TOKEN);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, id);
    int rc = db_step(m, s);
    if (rc == 1) {
        const char *stored = (const char *)sqlite3_column_text(s, 7);
        int match = hex == NULL || (stored != NULL && secret_equal(stored, strlen(stored), hex, 64));
        token_from_row(s, out);
        rc = match && !out->revoked && (out->expires_at == 0 || now < out->expires_at) && !sqlite3_column_int(s, 8)
                 ? 0
                 : BERTH_ENOTFOUND;
        if (rc != 0 && hex != NULL)
            memset(out, 0, sizeof(*out));
    } else if (rc == 0) {
        rc = BERTH_ENOTFOUND;
    }
    db_done(m, s);
    return rc;
}

int accounts_token_check(metastore_t *m, const char *presented, int64_t now, access_token_t *out)
{
    const size_t plen = sizeof(TOKEN_PREFIX) - 1;
    char hex[65], *end;

    if (presented == NULL || strncmp(presented, TOKEN_PREFIX, plen) != 0 || presented[plen] < '1' ||
        presented[plen] > '9')
        return BERTH_ENOTFOUND;
    errno = 0;
    long long id = strtoll(presented + plen, &end, 10);
    if (errno != 0 || *end != '_' || end[1] == '\0')
        return BERTH_ENOTFOUND;
    sha256_hex(end + 1, hex);
    return token_find(m, id, hex, now, out);
}

int accounts_token_get(metastore_t *m, int64_t id, int64_t now, access_token_t *out)
{
    return token_find(m, id, NULL, now, out);
}

int accounts_token_usable(metastore_t *m, int64_t id, int64_t now)
{
    sqlite3_stmt *s = stmt(m, Q_TOKEN_USABLE);
    if (s == NULL)
        return 0;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, now);
    int rc = db_step(m, s);
    db_done(m, s);
    return rc == 1;
}

int accounts_token_revoke(metastore_t *m, int64_t id)
{
    db_atomic_t t;
    if (db_atomic_begin(&t, m) != 0)
        return BERTH_ERROR;
    int rc = run_id(m, Q_TOKEN_REVOKE, id);
    if (rc == 0)
        rc = db_changes(m) == 0 ? BERTH_ENOTFOUND : bump_generation(m);
    return db_atomic_end(&t, rc);
}

/* A token list's statement bound to `owner`'s id (0: everyone's), or NULL with *rc set. */
static sqlite3_stmt *owner_list(metastore_t *m, int q, const char *owner, int *rc)
{
    int64_t owner_id = 0;
    int kind;
    if (owner != NULL && (*rc = account_lookup(m, owner, &owner_id, &kind)) != 0)
        return NULL;
    sqlite3_stmt *s = stmt(m, q);
    if (s == NULL) {
        *rc = BERTH_ERROR;
        return NULL;
    }
    sqlite3_bind_int64(s, 1, owner_id);
    return s;
}

int accounts_token_list(metastore_t *m, const char *owner,
                        void (*cb)(void *ctx, const access_token_t *t, const char *owner_name), void *ctx)
{
    int n = 0, rc;
    sqlite3_stmt *s = owner_list(m, Q_TOKEN_LIST, owner, &rc);
    if (s == NULL)
        return rc;
    while ((rc = db_step(m, s)) == 1) {
        access_token_t t;
        token_from_row(s, &t);
        cb(ctx, &t, (const char *)sqlite3_column_text(s, 7));
        ++n;
    }
    db_done(m, s);
    return rc < 0 ? rc : n;
}

/* ---- refresh tokens ---- */

int accounts_refresh_add(metastore_t *m, int64_t account_id, const char *secret, const char *client, int64_t expires_at)
{
    db_atomic_t t;
    char hex[65];
    int64_t now = time_now_s();
    sqlite3_stmt *s;
    sha256_hex(secret, hex);
    if (db_atomic_begin(&t, m) != 0)
        return BERTH_ERROR;
    int rc = BERTH_ERROR;
    if ((s = stmt(m, Q_REFRESH_DELETE_EXPIRED)) == NULL)
        goto Exit;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, now);
    if ((rc = db_run(m, s)) != 0)
        goto Exit;
    if ((s = stmt(m, Q_REFRESH_INSERT)) == NULL) {
        rc = BERTH_ERROR;
        goto Exit;
    }
    sqlite3_bind_text(s, 1, hex, 64, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, account_id);
    sqlite3_bind_int64(s, 3, expires_at);
    sqlite3_bind_int64(s, 4, now);
    sqlite3_bind_text(s, 5, client != NULL ? client : "", -1, SQLITE_STATIC);
    rc = db_run(m, s);
Exit:
    return db_atomic_end(&t, rc);
}

int accounts_refresh_check(metastore_t *m, const char *secret, int64_t now, int64_t *account_id, int64_t *refresh_id)
{
    char hex[65];
    if (secret == NULL || secret[0] == '\0')
        return BERTH_ENOTFOUND;
    sha256_hex(secret, hex);
    sqlite3_stmt *s = stmt(m, Q_REFRESH);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_text(s, 1, hex, 64, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, now);
    int rc = db_step(m, s);
    if (rc == 1) {
        *account_id = sqlite3_column_int64(s, 0);
        if (refresh_id != NULL)
            *refresh_id = sqlite3_column_int64(s, 1);
        rc = 0;
    } else if (rc == 0) {
        rc = BERTH_ENOTFOUND;
    }
    db_done(m, s);
    return rc;
}

int accounts_refresh_usable(metastore_t *m, int64_t id, int64_t now)
{
    sqlite3_stmt *s = stmt(m, Q_REFRESH_USABLE);
    if (s == NULL)
        return 0;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, now);
    int rc = db_step(m, s);
    db_done(m, s);
    return rc == 1;
}

int accounts_refresh_used(metastore_t *m, int64_t id, int64_t now)
{
    sqlite3_stmt *s = stmt(m, Q_REFRESH_USED);
    if (s == NULL)
        return BERTH_ERROR;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, now);
    return db_run(m, s);
}

int accounts_refresh_list(metastore_t *m, const char *owner,
                          void (*cb)(void *ctx, const refresh_token_t *t, const char *owner_name), void *ctx)
{
    int n = 0, rc;
    sqlite3_stmt *s = owner_list(m, Q_REFRESH_LIST, owner, &rc);
    if (s == NULL)
        return rc;
    while ((rc = db_step(m, s)) == 1) {
        refresh_token_t t = {.id = sqlite3_column_int64(s, 0),
                             .account_id = sqlite3_column_int64(s, 1),
                             .created_at = sqlite3_column_int64(s, 3),
                             .last_used_at = sqlite3_column_int64(s, 4),
                             .expires_at = sqlite3_column_int64(s, 5)};
        const char *client = (const char *)sqlite3_column_text(s, 2);
        snprintf(t.client, sizeof(t.client), "%s", client != NULL ? client : "");
        cb(ctx, &t, (const char *)sqlite3_column_text(s, 6));
        ++n;
    }
    db_done(m, s);
    return rc < 0 ? rc : n;
}

int accounts_refresh_revoke(metastore_t *m, int64_t id)
{
    db_atomic_t t;
    if (db_atomic_begin(&t, m) != 0)
        return BERTH_ERROR;
    int rc = run_id(m, Q_REFRESH_REVOKE, id);
    /* the generation moves: every process's credential caches drop what they verified, and the next request with
     * an access token minted from this refresh token looks it up again (auth/principal.c) */
    if (rc == 0)
        rc = db_changes(m) == 0 ? BERTH_ENOTFOUND : bump_generation(m);
    return db_atomic_end(&t, rc);
}
