-- berth metadata, version 3: pull-through mirrors.
-- A repository a mirror created on a pull (1) rather than one pushed here (0): pushes to it are refused.
ALTER TABLE repository ADD COLUMN mirror INTEGER NOT NULL DEFAULT 0;
-- When the upstream last confirmed where a mirrored tag points (0 for pushed tags): after the mirror's tag_ttl
-- the tag is revalidated.
ALTER TABLE tag ADD COLUMN checked_at INTEGER NOT NULL DEFAULT 0;
