-- Warehouses are reference data: the codes are fixed and loaded here, not by
-- the demo seed, so they exist whether or not a database is seeded.
CREATE TABLE inv_warehouses (
    code    TEXT PRIMARY KEY CHECK (length(code) = 4 AND code GLOB '[A-Z][A-Z][A-Z][0-9]'),
    name    TEXT NOT NULL,
    country TEXT NOT NULL CHECK (length(country) = 2)
);

INSERT INTO inv_warehouses (code, name, country) VALUES
    ('AMS1', 'Amsterdam Westpoort', 'NL'),
    ('BER1', 'Berlin Schoenefeld', 'DE'),
    ('MAD1', 'Madrid Coslada', 'ES');

-- Stock is keyed by the legacy product reference (P-000042), not by SKU.
-- qty_available is redundant (on_hand - reserved): the legacy reports read it
-- directly, so every writer keeps it in step; the CHECK proves they do.
CREATE TABLE inv_stock (
    product_ref    TEXT     NOT NULL CHECK (product_ref GLOB 'P-[0-9][0-9][0-9][0-9][0-9][0-9]*'),
    warehouse_code TEXT     NOT NULL REFERENCES inv_warehouses (code),
    on_hand        INTEGER  NOT NULL CHECK (on_hand >= 0),
    reserved       INTEGER  NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= on_hand),
    qty_available  INTEGER  NOT NULL,
    version        INTEGER  NOT NULL DEFAULT 1,
    updated_at     DATETIME NOT NULL,
    PRIMARY KEY (product_ref, warehouse_code),
    CONSTRAINT inv_stock_qty_available_check CHECK (qty_available = on_hand - reserved)
);

CREATE INDEX inv_stock_warehouse_idx ON inv_stock (warehouse_code, product_ref);
