-- berth metadata, version 6: mirror cache eviction (store/evict.c). When a mirrored manifest was last pulled (Unix
-- seconds; 0 for manifests pushed here): set when the mirror fetches or revalidates it, and moved forward by pulls
-- once it is older than the pull granularity (mirror/pulled.h), so that a pull costs no write on the hot path.
-- The garbage collector evicts a mirror's least recently pulled images first.
ALTER TABLE manifest ADD COLUMN pulled_at INTEGER NOT NULL DEFAULT 0;

-- what mirrors fetched before this version counts as pulled when it was fetched
UPDATE manifest SET pulled_at = created_at WHERE repository_id IN (SELECT id FROM repository WHERE mirror = 1);
