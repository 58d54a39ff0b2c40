DROP TABLE IF EXISTS inv_movements;
