-- The connector's state (DESIGN.md section 5). One row per fact; no secrets, ever.

-- The life cycle: the current state, and every transition.
CREATE TABLE lifecycle (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    state     TEXT NOT NULL CHECK (state IN ('uninitialized', 'active', 'paused', 'stopped')),
    since     TEXT NOT NULL,            -- RFC 3339 UTC
    stopped_at TEXT                      -- when the last --stop happened (catch-up starts here)
);
INSERT INTO lifecycle (id, state, since) VALUES (1, 'uninitialized', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));

CREATE TABLE lifecycle_history (
    id         INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state   TEXT NOT NULL,
    command    TEXT NOT NULL
);

-- Objects `init` created in Acumatica (Generic Inquiries, Push Notifications, schedules).
CREATE TABLE remote_objects (
    kind        TEXT NOT NULL,           -- generic_inquiry | push_notification | schedule | endpoint
    name        TEXT NOT NULL,
    remote_id   TEXT,
    properties  TEXT NOT NULL,           -- JSON of the managed properties as last written
    active      INTEGER NOT NULL DEFAULT 1,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (kind, name)
);

-- The durable queue: every change to deliver, in either direction.
CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    direction       TEXT NOT NULL CHECK (direction IN ('to_magento', 'to_acumatica')),
    entity          TEXT NOT NULL,
    natural_key     TEXT NOT NULL,
    version         TEXT NOT NULL,       -- the record's last-modified time, UTC, comparable across paths
    dedupe_key      TEXT NOT NULL UNIQUE,
    operation       TEXT NOT NULL DEFAULT 'upsert' CHECK (operation IN ('upsert', 'delete')),
    payload         TEXT,                -- JSON; purged after retention_days once delivered
    status          TEXT NOT NULL CHECK (status IN ('pending', 'held', 'delivered', 'failed', 'dead', 'skipped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX messages_by_status ON messages (status, direction, entity, next_attempt_at);
CREATE INDEX messages_by_record ON messages (entity, natural_key);

-- Which Acumatica record is which Magento record.
CREATE TABLE mappings (
    entity          TEXT NOT NULL,
    acumatica_key   TEXT NOT NULL,
    magento_key     TEXT NOT NULL,
    line_mappings   TEXT,                -- JSON: Magento item_id <-> Acumatica line
    payload_hash    TEXT,                -- hash of the last outbound payload acknowledged with 2xx
    version         TEXT,                -- version of the record last delivered (UTC, RFC 3339)
    synced_at       TEXT NOT NULL,
    PRIMARY KEY (entity, acumatica_key)
);
CREATE UNIQUE INDEX mappings_by_magento ON mappings (entity, magento_key);

-- Last quantity per item and warehouse (a push GI cannot sum them).
CREATE TABLE stock (
    inventory_id TEXT NOT NULL,
    warehouse    TEXT NOT NULL,
    qty_on_hand  REAL,
    qty_available REAL,
    version      TEXT NOT NULL,
    PRIMARY KEY (inventory_id, warehouse)
);

-- Per-entity watermarks for the batch path.
CREATE TABLE cursors (
    entity     TEXT PRIMARY KEY,
    watermark  TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Sync run history.
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    outcome     TEXT,                    -- done | partial | failed
    counts      TEXT NOT NULL DEFAULT '{}'  -- JSON: entity -> outcome -> count
);
