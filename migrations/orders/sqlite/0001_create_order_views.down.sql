DROP TABLE orders_by_status;
DROP TABLE orders_by_customer;
DROP TABLE order_views;
