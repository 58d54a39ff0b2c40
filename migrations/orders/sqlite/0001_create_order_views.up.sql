-- The orders service's read models: projections of its event store
-- (eventsource), each with its own tables, rebuilt from position 0 by
-- `strangler projections rebuild orders`. They are never written but by
-- their projection.

-- order_views is an order by id, as the service's API returns it.
CREATE TABLE order_views (
    id             INTEGER  PRIMARY KEY,
    customer_id    INTEGER  NOT NULL,
    customer_email TEXT     NOT NULL,
    status         TEXT     NOT NULL,
    currency       TEXT     NOT NULL,
    total_cents    INTEGER  NOT NULL,
    lines          TEXT     NOT NULL,
    placed_at      DATETIME NOT NULL,
    paid_at        DATETIME,
    shipped_at     DATETIME,
    cancelled_at   DATETIME,
    version        INTEGER  NOT NULL,
    updated_at     DATETIME NOT NULL
);

-- orders_by_customer lists each customer's orders.
CREATE TABLE orders_by_customer (
    customer_id INTEGER  NOT NULL,
    order_id    INTEGER  NOT NULL,
    status      TEXT     NOT NULL,
    total_cents INTEGER  NOT NULL,
    placed_at   DATETIME NOT NULL,
    PRIMARY KEY (customer_id, order_id)
);

CREATE INDEX orders_by_customer_order_idx ON orders_by_customer (order_id);

-- orders_by_status lists the orders in each status.
CREATE TABLE orders_by_status (
    order_id   INTEGER  PRIMARY KEY,
    status     TEXT     NOT NULL,
    updated_at DATETIME NOT NULL
);

CREATE INDEX orders_by_status_idx ON orders_by_status (status, order_id);
