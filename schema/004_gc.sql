-- berth metadata, version 4: garbage collection (store/gc.c). What may have become garbage is queued by triggers
-- as manifests, tags and links come and go, whoever writes (the server, a mirror, the CLI), in the same transaction;
-- a collection looks only at the queue, never at the whole store. A row says "look at this again", not "this is
-- garbage": the collector checks, removes what nothing references, and drops the row either way. (The triggers use
-- upserts, not INSERT OR IGNORE/REPLACE: an outer statement's conflict clause would override those.)

-- A manifest that may be unreferenced: no tag, no index of its repository listing it, no subject it refers to.
-- `since`: when it was pushed or lost its last reference; gc.untagged_grace counts from there.
CREATE TABLE gc_manifest (
    manifest_id INTEGER PRIMARY KEY,
    since INTEGER NOT NULL
);
CREATE INDEX gc_manifest_since ON gc_manifest(since);

-- A link (a repository may serve a blob) that no manifest of the repository may reference any more, or never did:
-- gc.blob_grace counts from `since`, the link's creation (a client uploads layers before their manifest).
CREATE TABLE gc_link (
    repository_id INTEGER NOT NULL,
    digest TEXT NOT NULL,
    since INTEGER NOT NULL,
    PRIMARY KEY (repository_id, digest)
) WITHOUT ROWID;
CREATE INDEX gc_link_since ON gc_link(since);

-- A blob that lost a link: removed (row, then file) when no repository links it any more.
CREATE TABLE gc_blob (
    digest TEXT PRIMARY KEY,
    since INTEGER NOT NULL
) WITHOUT ROWID;

-- Blob files whose row a committed collection deleted, to unlink: under the write lock, by the collection's next
-- transaction (or gc_recover after a crash), only while no row names the digest again (a push of the same bytes).
CREATE TABLE gc_unlink (
    digest TEXT PRIMARY KEY
) WITHOUT ROWID;

-- finding a manifest's parents (index entries) and a link's users: by digest, then the manifest's repository
CREATE INDEX manifest_ref_digest_kind ON manifest_ref(digest, kind, manifest_id);
DROP INDEX manifest_ref_digest;

CREATE TRIGGER gc_manifest_pushed AFTER INSERT ON manifest BEGIN
    INSERT INTO gc_manifest VALUES (new.id, new.created_at) ON CONFLICT DO NOTHING;
END;

CREATE TRIGGER gc_tag_moved AFTER UPDATE OF manifest_id ON tag WHEN old.manifest_id <> new.manifest_id BEGIN
    INSERT INTO gc_manifest VALUES (old.manifest_id, unixepoch()) ON CONFLICT DO UPDATE SET since = excluded.since;
END;

CREATE TRIGGER gc_tag_deleted AFTER DELETE ON tag BEGIN
    INSERT INTO gc_manifest VALUES (old.manifest_id, unixepoch()) ON CONFLICT DO UPDATE SET since = excluded.since;
END;

-- A manifest going: its child manifests and its referrers may be unreferenced now (their grace counts from their
-- push), and so may the links to the blobs it referenced (their grace counts from the link's creation).
CREATE TRIGGER gc_manifest_deleted BEFORE DELETE ON manifest BEGIN
    INSERT INTO gc_manifest
        SELECT c.id, c.created_at FROM manifest_ref r JOIN manifest c ON c.repository_id = old.repository_id AND
            c.digest = r.digest WHERE r.manifest_id = old.id AND r.kind = 2
        ON CONFLICT DO NOTHING;
    INSERT INTO gc_manifest
        SELECT id, created_at FROM manifest WHERE repository_id = old.repository_id AND subject = old.digest
        ON CONFLICT DO NOTHING;
    INSERT INTO gc_link
        SELECT l.repository_id, l.digest, l.created_at FROM manifest_ref r JOIN repository_blob l ON
            l.repository_id = old.repository_id AND l.digest = r.digest WHERE r.manifest_id = old.id AND r.kind <> 2
        ON CONFLICT DO NOTHING;
END;

CREATE TRIGGER gc_manifest_gone AFTER DELETE ON manifest BEGIN
    DELETE FROM gc_manifest WHERE manifest_id = old.id;
END;

CREATE TRIGGER gc_link_made AFTER INSERT ON repository_blob BEGIN
    INSERT INTO gc_link VALUES (new.repository_id, new.digest, new.created_at) ON CONFLICT DO NOTHING;
END;

-- a blob pushed or mounted again into a repository that links it: its grace starts again
CREATE TRIGGER gc_link_renewed AFTER UPDATE OF created_at ON repository_blob BEGIN
    INSERT INTO gc_link VALUES (new.repository_id, new.digest, new.created_at)
        ON CONFLICT DO UPDATE SET since = excluded.since;
END;

CREATE TRIGGER gc_link_deleted AFTER DELETE ON repository_blob BEGIN
    DELETE FROM gc_link WHERE repository_id = old.repository_id AND digest = old.digest;
    INSERT INTO gc_blob VALUES (old.digest, unixepoch()) ON CONFLICT DO NOTHING;
END;

-- What the store held before this version: every untagged manifest, every link and every unlinked blob is looked at
-- once (a one-off cost at the upgrade; from then on only what changes).
INSERT INTO gc_manifest SELECT id, created_at FROM manifest WHERE id NOT IN (SELECT manifest_id FROM tag);
INSERT INTO gc_link SELECT repository_id, digest, created_at FROM repository_blob;
INSERT INTO gc_blob SELECT digest, created_at FROM blob WHERE digest NOT IN (SELECT digest FROM repository_blob);
