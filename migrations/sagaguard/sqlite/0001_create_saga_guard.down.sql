DROP TABLE saga_guard;
