-- The event store: an append-only log of every aggregate's events. Each
-- stream (aggregate_type, aggregate_id) numbers its events from 1
-- (version); position orders every event of the store. SQLite has one
-- writer at a time, so positions are drawn in commit order, and
-- AUTOINCREMENT never reuses one.
CREATE TABLE es_events (
    position       INTEGER  PRIMARY KEY AUTOINCREMENT,
    id             TEXT     NOT NULL UNIQUE,
    aggregate_type TEXT     NOT NULL,
    aggregate_id   TEXT     NOT NULL,
    version        INTEGER  NOT NULL CHECK (version > 0),
    type           TEXT     NOT NULL,
    schema_version INTEGER  NOT NULL DEFAULT 1,
    occurred_at    DATETIME NOT NULL,
    traceparent    TEXT     NOT NULL DEFAULT '',
    payload        TEXT     NOT NULL,
    UNIQUE (aggregate_type, aggregate_id, version)
);

-- es_events is append-only: updates and deletes are refused.
CREATE TRIGGER es_events_no_update BEFORE UPDATE ON es_events
BEGIN
    SELECT RAISE(ABORT, 'es_events is append-only');
END;

CREATE TRIGGER es_events_no_delete BEFORE DELETE ON es_events
BEGIN
    SELECT RAISE(ABORT, 'es_events is append-only');
END;

-- es_snapshots holds the latest snapshot of a stream's state, at a version.
CREATE TABLE es_snapshots (
    aggregate_type TEXT     NOT NULL,
    aggregate_id   TEXT     NOT NULL,
    version        INTEGER  NOT NULL,
    schema_version INTEGER  NOT NULL,
    state          TEXT     NOT NULL,
    created_at     DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (aggregate_type, aggregate_id)
);

-- es_checkpoints holds each projection's position: the last event applied
-- to its tables, in the same transaction.
CREATE TABLE es_checkpoints (
    name       TEXT     NOT NULL PRIMARY KEY,
    position   INTEGER  NOT NULL DEFAULT 0,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);
