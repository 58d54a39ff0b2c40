DROP TABLE IF EXISTS control_replicas;
DROP TABLE IF EXISTS control_instances;
DROP TABLE IF EXISTS control_audit;
DROP TABLE IF EXISTS control_history;
DROP TABLE IF EXISTS control_state;
