-- berth metadata, version 7: the store's totals for /metrics (store/quota.c: quota_totals), kept by triggers so that a
-- scrape reads one row instead of counting every blob: the blobs the database records and their bytes.
CREATE TABLE store_totals (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    blobs INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
INSERT INTO store_totals SELECT 1, count(*), coalesce(sum(size), 0) FROM blob;

CREATE TRIGGER totals_blob_added AFTER INSERT ON blob BEGIN
    UPDATE store_totals SET blobs = blobs + 1, bytes = bytes + new.size WHERE id = 1;
END;

CREATE TRIGGER totals_blob_removed AFTER DELETE ON blob BEGIN
    UPDATE store_totals SET blobs = blobs - 1, bytes = bytes - old.size WHERE id = 1;
END;
