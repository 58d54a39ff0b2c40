DROP TABLE IF EXISTS control_usage;
