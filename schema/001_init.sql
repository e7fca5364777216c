-- berth metadata, version 1: repositories, blobs and which repositories may serve them, manifests, tags.
-- Timestamps are Unix seconds. Digests are "algorithm:hex" strings.

CREATE TABLE repository (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

-- A blob file under blobs/ that finished verification. Stored once, whatever repositories use it.
CREATE TABLE blob (
    digest TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- The spec's rule: a blob is served only from repositories it was pushed or mounted to.
CREATE TABLE repository_blob (
    repository_id INTEGER NOT NULL REFERENCES repository(id) ON DELETE CASCADE,
    digest TEXT NOT NULL REFERENCES blob(digest),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (repository_id, digest)
) WITHOUT ROWID;
CREATE INDEX repository_blob_digest ON repository_blob(digest);

CREATE TABLE manifest (
    id INTEGER PRIMARY KEY,
    repository_id INTEGER NOT NULL REFERENCES repository(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    content BLOB NOT NULL,
    artifact_type TEXT,
    subject TEXT,
    annotations TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (repository_id, digest)
);
CREATE INDEX manifest_subject ON manifest(repository_id, subject) WHERE subject IS NOT NULL;

-- What a manifest points at: kind 0 config, 1 layer, 2 child manifest (index entries).
CREATE TABLE manifest_ref (
    manifest_id INTEGER NOT NULL REFERENCES manifest(id) ON DELETE CASCADE,
    kind INTEGER NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    foreign_layer INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX manifest_ref_manifest ON manifest_ref(manifest_id);
CREATE INDEX manifest_ref_digest ON manifest_ref(digest);

CREATE TABLE tag (
    repository_id INTEGER NOT NULL REFERENCES repository(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    manifest_id INTEGER NOT NULL REFERENCES manifest(id) ON DELETE CASCADE,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (repository_id, name)
) WITHOUT ROWID;
CREATE INDEX tag_manifest ON tag(manifest_id);
