-- product_names is the orders service's copy of the catalog's product
-- names, which an order's lines carry: the orders ACL's price read model
-- (acl_prices) has prices only. It is fed by the same product events, an
-- older version never overwriting a newer one (version 0: unknown).
CREATE TABLE product_names (
    sku     TEXT    PRIMARY KEY,
    name    TEXT    NOT NULL,
    version INTEGER NOT NULL
);
