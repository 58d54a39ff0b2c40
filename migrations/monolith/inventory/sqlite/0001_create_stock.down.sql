DROP TABLE IF EXISTS inv_stock;
DROP TABLE IF EXISTS inv_warehouses;
