DROP TABLE IF EXISTS product_names;
