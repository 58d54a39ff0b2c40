DROP TABLE IF EXISTS outbox_backfill;
DROP TABLE IF EXISTS outbox_relay;
DROP TABLE IF EXISTS outbox;
