DROP TABLE es_checkpoints;
DROP TABLE es_snapshots;
DROP TABLE es_events;
