-- The transactional outbox. Column names follow Debezium's outbox event
-- router (id, aggregatetype, aggregateid, type, payload), so that Debezium
-- can read this table in place of Strangler's relay.
CREATE SEQUENCE outbox_seq AS BIGINT CACHE 1;

CREATE TABLE outbox (
    seq            BIGINT      NOT NULL PRIMARY KEY,
    id             UUID        NOT NULL,
    source         TEXT        NOT NULL,
    aggregatetype  TEXT        NOT NULL,
    aggregateid    TEXT        NOT NULL,
    type           TEXT        NOT NULL,
    schema_version INTEGER     NOT NULL DEFAULT 1,
    occurred_at    TIMESTAMPTZ NOT NULL,
    traceparent    TEXT        NOT NULL DEFAULT '',
    origin         TEXT        NOT NULL DEFAULT '',
    payload        JSONB       NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX outbox_id ON outbox (id);
CREATE INDEX outbox_aggregate ON outbox (aggregatetype, aggregateid, seq);

-- outbox_before_insert gives every row its place in the stream, whoever
-- inserts it (the Go outbox package, another language, plain SQL):
--
-- 1. It makes sure the transaction has an xid before it draws a sequence
--    number, so that the relay's gap rule (a missing seq is final once every
--    transaction older than the snapshot that saw the gap has ended) holds.
-- 2. It takes a transaction-scoped advisory lock on the aggregate, so that
--    two transactions writing events of one aggregate commit in the order
--    of their sequence numbers: the visible events of an aggregate are
--    always a prefix of its events by seq.
-- 3. Only then does it draw seq, overriding any value the INSERT gave, from
--    the sequence in the table's own schema, whatever the search_path.
CREATE FUNCTION outbox_before_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_current_xact_id();
    PERFORM pg_advisory_xact_lock(1869968482, hashtext(NEW.aggregatetype || '/' || NEW.aggregateid));
    NEW.seq := nextval(quote_ident(TG_TABLE_SCHEMA) || '.outbox_seq');
    RETURN NEW;
END
$$;

CREATE TRIGGER outbox_before_insert BEFORE INSERT ON outbox
    FOR EACH ROW EXECUTE FUNCTION outbox_before_insert();

-- outbox_relay holds each relay group's lease and position.
CREATE TABLE outbox_relay (
    name        TEXT        NOT NULL PRIMARY KEY,
    owner       TEXT        NOT NULL DEFAULT '',
    lease_until BIGINT      NOT NULL DEFAULT 0,
    position    BIGINT      NOT NULL DEFAULT 0,
    gaps        TEXT        NOT NULL DEFAULT '[]',
    published   BIGINT      NOT NULL DEFAULT 0,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- outbox_backfill holds each backfill's progress, so that it resumes after
-- a crash where it stopped.
CREATE TABLE outbox_backfill (
    name         TEXT        NOT NULL PRIMARY KEY,
    source_table TEXT        NOT NULL,
    last_key     TEXT,
    key_kind     TEXT        NOT NULL DEFAULT '',
    done         BOOLEAN     NOT NULL DEFAULT FALSE,
    chunks       BIGINT      NOT NULL DEFAULT 0,
    rows_read    BIGINT      NOT NULL DEFAULT 0,
    events       BIGINT      NOT NULL DEFAULT 0,
    dropped      BIGINT      NOT NULL DEFAULT 0,
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
