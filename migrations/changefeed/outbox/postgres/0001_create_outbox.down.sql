DROP TABLE IF EXISTS outbox_backfill;
DROP TABLE IF EXISTS outbox_relay;
DROP TABLE IF EXISTS outbox;
DROP FUNCTION IF EXISTS outbox_before_insert();
DROP SEQUENCE IF EXISTS outbox_seq;
