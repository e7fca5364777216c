-- berth metadata, version 9: the audit log (berth audit, docs/operations.md). One row per push, tag move, delete,
-- login, token creation or revocation and permission change: who (an account name, "anonymous", or "cli:<unix
-- user>" for the administration commands), with which access token (0: none), what, when, and from which address
-- (the client address the login rate limiter uses, behind trusted proxies). Repeated failed logins of one name from
-- one address are folded into one row (`count`) per flush. Rows older than audit.retention are pruned by the
-- server's chores.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,                  -- unix seconds
    actor TEXT NOT NULL,
    token_id INTEGER NOT NULL DEFAULT 0,
    action TEXT NOT NULL,
    repository TEXT NOT NULL DEFAULT '',
    reference TEXT NOT NULL DEFAULT '',   -- a tag, a digest, a grantee, a token id
    digest TEXT NOT NULL DEFAULT '',
    address TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',
    count INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX audit_log_at ON audit_log(at);
