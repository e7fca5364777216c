-- berth metadata, version 8: the store's totals for /metrics (store/quota.c: quota_totals), so that a scrape reads one
-- row instead of counting every blob: the blobs the database records and their bytes, raised by a trigger as blobs
-- are recorded and lowered by store/gc.c (which alone deletes blob rows) once a batch, in the batch's transaction
-- (a trigger would cost an update a row); and the garbage collections (the server's and berth gc's) with the bytes
-- they freed, counted by store/gc.c in the transaction that ends each run.
CREATE TABLE store_totals (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    blobs INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    gc_runs INTEGER NOT NULL DEFAULT 0,
    gc_freed_bytes INTEGER NOT NULL DEFAULT 0
);
INSERT INTO store_totals(id, blobs, bytes) SELECT 1, count(*), coalesce(sum(size), 0) FROM blob;

CREATE TRIGGER totals_blob_added AFTER INSERT ON blob BEGIN
    UPDATE store_totals SET blobs = blobs + 1, bytes = bytes + new.size WHERE id = 1;
END;
