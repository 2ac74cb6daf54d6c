-- The push-notification receiver's counters, and catch-up requests the batch path honours.

CREATE TABLE receiver_counters (
    name  TEXT PRIMARY KEY,          -- accepted | duplicates | rejected_<reason>
    value INTEGER NOT NULL DEFAULT 0
);

-- "Re-read this entity from `since`": queued when a change may have been missed (a notification
-- too large to accept, `activate` after `stop`). The sync's batch path consumes it.
CREATE TABLE catch_up_requests (
    id           INTEGER PRIMARY KEY,
    entity       TEXT NOT NULL,
    since        TEXT,                -- RFC 3339 UTC; null: everything
    reason       TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    done_at      TEXT
);
CREATE INDEX catch_up_open ON catch_up_requests (entity) WHERE done_at IS NULL;
