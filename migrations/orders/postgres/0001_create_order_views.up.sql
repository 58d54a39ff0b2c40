-- The orders service's read models: projections of its event store
-- (eventsource), each with its own tables, rebuilt from position 0 by
-- `strangler projections rebuild orders`. They are never written but by
-- their projection.

-- order_views is an order by id, as the service's API returns it.
CREATE TABLE order_views (
    id             BIGINT      PRIMARY KEY,
    customer_id    BIGINT   NOT NULL,
    customer_email TEXT     NOT NULL,
    status         TEXT     NOT NULL,
    currency       TEXT     NOT NULL,
    total_cents    BIGINT   NOT NULL,
    lines          JSONB    NOT NULL,
    placed_at      TIMESTAMPTZ NOT NULL,
    paid_at        TIMESTAMPTZ,
    shipped_at     TIMESTAMPTZ,
    cancelled_at   TIMESTAMPTZ,
    version        BIGINT   NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);

-- orders_by_customer lists each customer's orders.
CREATE TABLE orders_by_customer (
    customer_id BIGINT   NOT NULL,
    order_id    BIGINT   NOT NULL,
    status      TEXT     NOT NULL,
    total_cents BIGINT   NOT NULL,
    placed_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (customer_id, order_id)
);

CREATE INDEX orders_by_customer_order_idx ON orders_by_customer (order_id);

-- orders_by_status lists the orders in each status.
CREATE TABLE orders_by_status (
    order_id   BIGINT      PRIMARY KEY,
    status     TEXT     NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX orders_by_status_idx ON orders_by_status (status, order_id);
