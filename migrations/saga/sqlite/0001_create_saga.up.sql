-- saga_instances holds one row per saga: its state, the cursor of the next
-- step to run (forward) or to compensate (backward), and its JSON data.
CREATE TABLE saga_instances (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    step_index INTEGER NOT NULL DEFAULT 0,
    data       TEXT    NOT NULL DEFAULT '{}',
    error      TEXT    NOT NULL DEFAULT '',
    version    INTEGER NOT NULL DEFAULT 1,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX saga_instances_state ON saga_instances (state, seq);

-- saga_log is the saga log, append-only: each entry is written before the
-- orchestrator acts on it, so that a restart knows where each saga stood.
CREATE TABLE saga_log (
    saga_id TEXT    NOT NULL,
    n       INTEGER NOT NULL,
    step    TEXT    NOT NULL DEFAULT '',
    event   TEXT    NOT NULL,
    state   TEXT    NOT NULL DEFAULT '',
    attempt INTEGER NOT NULL DEFAULT 0,
    error   TEXT    NOT NULL DEFAULT '',
    logged_at DATETIME NOT NULL,
    PRIMARY KEY (saga_id, n)
);
