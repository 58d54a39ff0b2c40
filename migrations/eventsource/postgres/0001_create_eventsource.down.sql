DROP TABLE es_checkpoints;
DROP TABLE es_snapshots;
DROP TABLE es_events;
DROP FUNCTION es_events_append_only();
DROP FUNCTION es_events_before_insert();
DROP SEQUENCE es_events_position;
