DROP TABLE IF EXISTS acl_order_ids;
DROP TABLE IF EXISTS acl_prices;
DROP TABLE IF EXISTS acl_customers;
