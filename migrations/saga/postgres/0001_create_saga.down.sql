DROP TABLE saga_log;
DROP TABLE saga_instances;
