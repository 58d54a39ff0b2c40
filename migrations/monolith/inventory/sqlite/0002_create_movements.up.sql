-- The movement journal: one row per change of a stock level, with the
-- order or reason behind it. Stock levels are the truth; the journal is how
-- a person finds out why a level is what it is.
CREATE TABLE inv_movements (
    id             INTEGER  PRIMARY KEY AUTOINCREMENT,
    product_ref    TEXT     NOT NULL,
    warehouse_code TEXT     NOT NULL,
    kind           TEXT     NOT NULL CHECK (kind IN ('adjust', 'reserve', 'release', 'ship')),
    quantity       INTEGER  NOT NULL,
    reference      TEXT     NOT NULL DEFAULT '',
    created_at     DATETIME NOT NULL
);

CREATE INDEX inv_movements_stock_idx ON inv_movements (product_ref, warehouse_code, id);
