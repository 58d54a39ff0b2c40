-- The orders service's local read models, fed by the monolith's events
-- through the orders ACL (acl/orders): the customers it needs (e-mail and
-- status) and the catalog's prices. version is the monolith's aggregate
-- version of the row's last event, so that an older event never
-- overwrites a newer one; 0 means unknown (an event without a version).
CREATE TABLE acl_customers (
    customer_id BIGINT      PRIMARY KEY,
    email       TEXT        NOT NULL,
    status      TEXT        NOT NULL CHECK (status IN ('active', 'deleted')),
    version     INTEGER     NOT NULL,
    updated_at  DATETIME NOT NULL
);

CREATE TABLE acl_prices (
    sku         TEXT        PRIMARY KEY,
    product_ref TEXT        NOT NULL,
    price_cents BIGINT      NOT NULL CHECK (price_cents >= 0),
    currency    TEXT        NOT NULL,
    active      BOOLEAN     NOT NULL,
    version     INTEGER     NOT NULL,
    updated_at  DATETIME NOT NULL
);

-- The counter of the ids of orders placed on the service: id =
-- 1000000000000 + last (acl/orders.ServiceIDBase).
CREATE TABLE acl_order_ids (
    name TEXT   PRIMARY KEY,
    last BIGINT NOT NULL
);
INSERT INTO acl_order_ids (name, last) VALUES ('orders', 0);
