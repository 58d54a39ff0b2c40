-- Orders use the legacy integer status codes: 10 placed, 20 paid,
-- 30 shipped, 90 cancelled. customer_id has no foreign key because customers
-- belong to another module; customer_email and total_cents are copies kept
-- so that order screens never need the customers module or a SUM.
CREATE TABLE orders (
    id             INTEGER  PRIMARY KEY AUTOINCREMENT,
    customer_id    INTEGER  NOT NULL,
    customer_email TEXT     NOT NULL,
    status         SMALLINT NOT NULL CHECK (status IN (10, 20, 30, 90)),
    currency       TEXT     NOT NULL CHECK (length(currency) = 3),
    total_cents    INTEGER  NOT NULL CHECK (total_cents >= 0),
    placed_at      DATETIME NOT NULL,
    paid_at        DATETIME,
    shipped_at     DATETIME,
    cancelled_at   DATETIME,
    version        INTEGER  NOT NULL DEFAULT 1,
    updated_at     DATETIME NOT NULL
);

CREATE INDEX orders_customer_idx ON orders (customer_id, id);
CREATE INDEX orders_status_idx ON orders (status, id);

-- Order lines copy the product's SKU, reference, name and unit price at the
-- time of the order, and record the warehouse that holds the reservation,
-- which is what cancelling or shipping the order releases or ships.
CREATE TABLE order_lines (
    order_id         INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no          INTEGER NOT NULL CHECK (line_no > 0),
    sku              TEXT    NOT NULL,
    product_ref      TEXT    NOT NULL,
    product_name     TEXT    NOT NULL,
    unit_price_cents INTEGER NOT NULL CHECK (unit_price_cents >= 0),
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    line_total_cents INTEGER NOT NULL CHECK (line_total_cents >= 0),
    warehouse_code   TEXT    NOT NULL,
    PRIMARY KEY (order_id, line_no)
);
