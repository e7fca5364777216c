-- berth metadata, version 7: refresh tokens that can be listed and revoked one by one (berth token list, berth
-- token revoke rID). Each gets an id, the client it was issued to (the token request's client_id, else the first
-- word of its User-Agent; "" if neither) and when it was last used. Access tokens (JWTs) minted from one with the
-- refresh_token grant carry its id ("rid"), and are refused once it is gone. A revocation deletes the row.
CREATE TABLE refresh_token_v7 (
    id INTEGER PRIMARY KEY,
    secret_sha256 TEXT NOT NULL UNIQUE,
    account_id INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
    client TEXT NOT NULL DEFAULT '',
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL DEFAULT 0  -- 0: never used (only issued)
);
INSERT INTO refresh_token_v7(secret_sha256, account_id, expires_at, created_at)
    SELECT secret_sha256, account_id, expires_at, created_at FROM refresh_token ORDER BY created_at;
DROP TABLE refresh_token;
ALTER TABLE refresh_token_v7 RENAME TO refresh_token;
CREATE INDEX refresh_token_account ON refresh_token(account_id);
