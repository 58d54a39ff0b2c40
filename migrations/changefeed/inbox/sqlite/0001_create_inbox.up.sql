-- changefeed_inbox records the events each consumer has processed. The
-- consumer inserts the row in the same transaction as the handler's writes,
-- so an event redelivered after a crash finds its row and is skipped.
CREATE TABLE changefeed_inbox (
    consumer     TEXT     NOT NULL,
    event_id     TEXT     NOT NULL,
    event_type   TEXT     NOT NULL,
    processed_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    PRIMARY KEY (consumer, event_id)
) WITHOUT ROWID;

CREATE INDEX changefeed_inbox_processed_at ON changefeed_inbox (processed_at);
