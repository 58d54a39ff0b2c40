-- The event store: an append-only log of every aggregate's events. Each
-- stream (aggregate_type, aggregate_id) numbers its events from 1
-- (version); position orders every event of the store.
CREATE SEQUENCE es_events_position AS BIGINT CACHE 1;

CREATE TABLE es_events (
    position       BIGINT      NOT NULL PRIMARY KEY,
    id             UUID        NOT NULL UNIQUE,
    aggregate_type TEXT        NOT NULL,
    aggregate_id   TEXT        NOT NULL,
    version        BIGINT      NOT NULL CHECK (version > 0),
    type           TEXT        NOT NULL,
    schema_version INTEGER     NOT NULL DEFAULT 1,
    occurred_at    TIMESTAMPTZ NOT NULL,
    traceparent    TEXT        NOT NULL DEFAULT '',
    payload        JSONB       NOT NULL,
    UNIQUE (aggregate_type, aggregate_id, version)
);

-- es_events_before_insert makes the global position safe to read past: it
-- takes one transaction-scoped advisory lock for the whole store before it
-- draws the position, so that appending transactions draw positions in the
-- order they commit. A reader that has seen position p can never later see
-- an event below p appear (the BIGSERIAL trap the relay's gaps handle for
-- the outbox). The cost is that appends to the store serialise from their
-- first insert to their commit.
CREATE FUNCTION es_events_before_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1702063214, 1);
    NEW.position := nextval(quote_ident(TG_TABLE_SCHEMA) || '.es_events_position');
    RETURN NEW;
END
$$;

CREATE TRIGGER es_events_before_insert BEFORE INSERT ON es_events
    FOR EACH ROW EXECUTE FUNCTION es_events_before_insert();

-- es_events is append-only: updates and deletes are refused.
CREATE FUNCTION es_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'es_events is append-only';
END
$$;

CREATE TRIGGER es_events_append_only BEFORE UPDATE OR DELETE ON es_events
    FOR EACH ROW EXECUTE FUNCTION es_events_append_only();

-- es_snapshots holds the latest snapshot of a stream's state, at a version.
CREATE TABLE es_snapshots (
    aggregate_type TEXT        NOT NULL,
    aggregate_id   TEXT        NOT NULL,
    version        BIGINT      NOT NULL,
    schema_version INTEGER     NOT NULL,
    state          JSONB       NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id)
);

-- es_checkpoints holds each projection's position: the last event applied
-- to its tables, in the same transaction.
CREATE TABLE es_checkpoints (
    name       TEXT        NOT NULL PRIMARY KEY,
    position   BIGINT      NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
