-- berth metadata, version 5: quotas per namespace (store/quota.c). A repository's namespace is the first component
-- of its name (an account or organisation; a one-component name is its own namespace). A namespace's usage counts
-- each blob once, however many of its repositories link it; triggers keep it as links come and go, for namespaces
-- that have a quota only (the others cost one lookup in this small table per link).
ALTER TABLE repository ADD COLUMN ns TEXT GENERATED ALWAYS AS
    (CASE instr(name, '/') WHEN 0 THEN name ELSE substr(name, 1, instr(name, '/') - 1) END) VIRTUAL;
CREATE INDEX repository_ns ON repository(ns);

CREATE TABLE quota (
    ns TEXT PRIMARY KEY,
    bytes INTEGER NOT NULL, -- the limit
    used INTEGER NOT NULL   -- the bytes of the distinct blobs its repositories link
) WITHOUT ROWID;

-- For each namespace with a quota: its blobs, and how many of its repositories link each.
CREATE TABLE quota_blob (
    ns TEXT NOT NULL REFERENCES quota(ns) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    links INTEGER NOT NULL,
    PRIMARY KEY (ns, digest)
) WITHOUT ROWID;

CREATE TRIGGER quota_link_made AFTER INSERT ON repository_blob
WHEN EXISTS (SELECT 1 FROM quota WHERE ns = (SELECT ns FROM repository WHERE id = new.repository_id)) BEGIN
    INSERT INTO quota_blob VALUES ((SELECT ns FROM repository WHERE id = new.repository_id), new.digest, 1)
        ON CONFLICT DO UPDATE SET links = links + 1;
    UPDATE quota SET used = used + (SELECT size FROM blob WHERE digest = new.digest)
        WHERE ns = (SELECT ns FROM repository WHERE id = new.repository_id) AND
            (SELECT links FROM quota_blob WHERE ns = quota.ns AND digest = new.digest) = 1;
END;

CREATE TRIGGER quota_link_deleted AFTER DELETE ON repository_blob
WHEN EXISTS (SELECT 1 FROM quota WHERE ns = (SELECT ns FROM repository WHERE id = old.repository_id)) BEGIN
    UPDATE quota_blob SET links = links - 1
        WHERE ns = (SELECT ns FROM repository WHERE id = old.repository_id) AND digest = old.digest;
    UPDATE quota SET used = used - (SELECT size FROM blob WHERE digest = old.digest)
        WHERE ns = (SELECT ns FROM repository WHERE id = old.repository_id) AND
            (SELECT links FROM quota_blob WHERE ns = quota.ns AND digest = old.digest) = 0;
    DELETE FROM quota_blob WHERE ns = (SELECT ns FROM repository WHERE id = old.repository_id) AND
        digest = old.digest AND links = 0;
END;
