-- The transactional outbox. Column names follow Debezium's outbox event
-- router (id, aggregatetype, aggregateid, type, payload). SQLite commits one
-- writer at a time, so seq order is commit order; AUTOINCREMENT keeps seq
-- from ever being reused after the retention cleanup empties the table.
CREATE TABLE outbox (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT     NOT NULL,
    source         TEXT     NOT NULL,
    aggregatetype  TEXT     NOT NULL,
    aggregateid    TEXT     NOT NULL,
    type           TEXT     NOT NULL,
    schema_version INTEGER  NOT NULL DEFAULT 1,
    occurred_at    DATETIME NOT NULL,
    traceparent    TEXT     NOT NULL DEFAULT '',
    origin         TEXT     NOT NULL DEFAULT '',
    payload        TEXT     NOT NULL,
    created_at     DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

CREATE UNIQUE INDEX outbox_id ON outbox (id);
CREATE INDEX outbox_aggregate ON outbox (aggregatetype, aggregateid, seq);

CREATE TABLE outbox_relay (
    name        TEXT     NOT NULL PRIMARY KEY,
    owner       TEXT     NOT NULL DEFAULT '',
    lease_until INTEGER  NOT NULL DEFAULT 0,
    position    INTEGER  NOT NULL DEFAULT 0,
    gaps        TEXT     NOT NULL DEFAULT '[]',
    published   INTEGER  NOT NULL DEFAULT 0,
    updated_at  DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

CREATE TABLE outbox_backfill (
    name         TEXT     NOT NULL PRIMARY KEY,
    source_table TEXT     NOT NULL,
    last_key     TEXT,
    key_kind     TEXT     NOT NULL DEFAULT '',
    done         INTEGER  NOT NULL DEFAULT 0,
    chunks       INTEGER  NOT NULL DEFAULT 0,
    rows_read    INTEGER  NOT NULL DEFAULT 0,
    events       INTEGER  NOT NULL DEFAULT 0,
    dropped      INTEGER  NOT NULL DEFAULT 0,
    started_at   DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at   DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
