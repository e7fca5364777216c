-- berth metadata, version 12: the webhook queue (docs/webhooks.md). An event is inserted in the transaction of the
-- push or delete it describes (a pull's in a batch of pulls), as the JSON of a distribution event; each configured
-- endpoint delivers the events after its cursor in order, skipping those its filters leave out. Events every
-- endpoint has are deleted; at notifications.queue_size undelivered events, the oldest are dropped.
-- AUTOINCREMENT: ids never go back (an emptied table would start again at 1, below the cursors).
CREATE TABLE webhook_event (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at INTEGER NOT NULL,
    action TEXT NOT NULL,            -- push, pull, delete
    repository TEXT NOT NULL,
    media_type TEXT NOT NULL DEFAULT '',
    event TEXT NOT NULL              -- the distribution event, JSON
);
CREATE TABLE webhook_cursor (
    endpoint TEXT PRIMARY KEY,       -- its name in the configuration
    delivered INTEGER NOT NULL       -- the last event id it has (delivered or filtered out)
);
