-- berth metadata, version 2: accounts, organisations and teams, repository visibility and grants,
-- access tokens and refresh tokens. Secrets are never stored: passwords as libcrypt hashes (yescrypt,
-- or bcrypt imported from htpasswd), token secrets as their SHA-256 (they are 256-bit random values).

-- Users, organisations and robots share one name space: a namespace (first path component of a repository)
-- belongs to the account of that name.
CREATE TABLE account (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind INTEGER NOT NULL,                  -- 0 user, 1 organisation, 2 robot
    password_hash TEXT,
    admin INTEGER NOT NULL DEFAULT 0,
    disabled INTEGER NOT NULL DEFAULT 0,
    generation INTEGER NOT NULL DEFAULT 1,  -- bumped when disabled or its password changes
    created_at INTEGER NOT NULL
);

CREATE TABLE team (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    permission INTEGER NOT NULL DEFAULT 1,  -- actions on every repository of the organisation: 1 pull, 2 push, 4 delete
    UNIQUE (org_id, name)
);

CREATE TABLE team_member (
    team_id INTEGER NOT NULL REFERENCES team(id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, account_id)
) WITHOUT ROWID;
CREATE INDEX team_member_account ON team_member(account_id);

-- Repositories start private or public by mode; the owner (or an administrator) changes it.
ALTER TABLE repository ADD COLUMN public INTEGER NOT NULL DEFAULT 0;

-- Rights on a repository name, "ns/*" (everything under ns/) or "*", to one account or one team.
CREATE TABLE repo_grant (
    id INTEGER PRIMARY KEY,
    pattern TEXT NOT NULL,
    account_id INTEGER REFERENCES account(id) ON DELETE CASCADE,
    team_id INTEGER REFERENCES team(id) ON DELETE CASCADE,
    actions INTEGER NOT NULL,
    CHECK ((account_id IS NULL) <> (team_id IS NULL))
);
CREATE UNIQUE INDEX repo_grant_account ON repo_grant(pattern, account_id) WHERE account_id IS NOT NULL;
CREATE UNIQUE INDEX repo_grant_team ON repo_grant(pattern, team_id) WHERE team_id IS NOT NULL;
-- the policy looks grants up by grantee (and ON DELETE CASCADE finds them by it)
CREATE INDEX repo_grant_by_account ON repo_grant(account_id);
CREATE INDEX repo_grant_by_team ON repo_grant(team_id);

CREATE TABLE access_token (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    scope TEXT NOT NULL,
    expires_at INTEGER NOT NULL DEFAULT 0,  -- 0: never
    revoked INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE INDEX access_token_account ON access_token(account_id);

CREATE TABLE refresh_token (
    secret_sha256 TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX refresh_token_account ON refresh_token(account_id);

-- One row: grows with every change that can take rights away, so that caches notice.
CREATE TABLE auth_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO auth_generation VALUES (1, 1);
