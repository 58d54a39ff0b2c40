-- The inventory service's own model: stock items keyed by SKU and the
-- service's warehouse ids, with a version for optimistic concurrency. No
-- legacy key appears in these tables; the acl_ tables below hold the
-- anti-corruption layer's translations.
CREATE TABLE warehouses (
    id      TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    country TEXT NOT NULL CHECK (length(country) = 2)
);

INSERT INTO warehouses (id, name, country) VALUES
    ('nl-ams', 'Amsterdam Westpoort', 'NL'),
    ('de-ber', 'Berlin Schoenefeld', 'DE'),
    ('es-mad', 'Madrid Coslada', 'ES');

-- products are the SKUs the service may hold stock of, learned from the
-- catalog's events.
CREATE TABLE products (
    sku        TEXT     PRIMARY KEY,
    active     BOOLEAN  NOT NULL DEFAULT 1,
    updated_at DATETIME NOT NULL
);

CREATE TABLE items (
    sku        TEXT     NOT NULL,
    warehouse  TEXT     NOT NULL REFERENCES warehouses (id),
    on_hand    INTEGER  NOT NULL CHECK (on_hand >= 0),
    reserved   INTEGER  NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= on_hand),
    version    INTEGER  NOT NULL DEFAULT 1,
    updated_at DATETIME NOT NULL,
    PRIMARY KEY (sku, warehouse)
);

-- reservations remember who reserved what, so that a retried reservation
-- (same reference, SKU and warehouse) is not applied twice.
CREATE TABLE reservations (
    reference  TEXT     NOT NULL,
    sku        TEXT     NOT NULL,
    warehouse  TEXT     NOT NULL,
    quantity   INTEGER  NOT NULL CHECK (quantity > 0),
    created_at DATETIME NOT NULL,
    PRIMARY KEY (reference, sku, warehouse)
);

CREATE TABLE movements (
    id         INTEGER  PRIMARY KEY AUTOINCREMENT,
    sku        TEXT     NOT NULL,
    warehouse  TEXT     NOT NULL,
    kind       TEXT     NOT NULL,
    quantity   INTEGER  NOT NULL,
    reference  TEXT     NOT NULL DEFAULT '',
    origin     TEXT     NOT NULL,
    created_at DATETIME NOT NULL
);

CREATE INDEX movements_item_idx ON movements (sku, warehouse, id);

-- settings keeps the service's persistent switches, such as ownership.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- The anti-corruption layer's tables. acl_product_refs maps the monolith's
-- product reference (P-000042) to the SKU, learned from product events.
CREATE TABLE acl_product_refs (
    legacy_ref TEXT PRIMARY KEY,
    sku        TEXT NOT NULL UNIQUE
);

-- acl_warehouses maps the monolith's warehouse codes to the service's ids.
CREATE TABLE acl_warehouses (
    legacy_code TEXT PRIMARY KEY,
    warehouse   TEXT NOT NULL UNIQUE REFERENCES warehouses (id)
);

INSERT INTO acl_warehouses (legacy_code, warehouse) VALUES
    ('AMS1', 'nl-ams'),
    ('BER1', 'de-ber'),
    ('MAD1', 'es-mad');

-- acl_parked holds stock events that arrived before the product event that
-- maps their reference, in arrival order, until the mapping arrives.
CREATE TABLE acl_parked (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    legacy_ref TEXT    NOT NULL,
    event      TEXT    NOT NULL
);

CREATE INDEX acl_parked_ref_idx ON acl_parked (legacy_ref, seq);

-- legacy_stock presents the items with the monolith's keys and its
-- redundant qty_available, as the legacy facade serves them and as
-- `strangler verify` compares them with inv_stock.
CREATE VIEW legacy_stock AS
SELECT p.legacy_ref || '/' || w.legacy_code AS stock_key,
       p.legacy_ref                         AS product_ref,
       w.legacy_code                        AS warehouse_code,
       i.on_hand                            AS on_hand,
       i.reserved                           AS reserved,
       i.on_hand - i.reserved               AS qty_available,
       i.version                            AS version,
       i.updated_at                         AS updated_at
FROM items i
JOIN acl_product_refs p ON p.sku = i.sku
JOIN acl_warehouses w ON w.warehouse = i.warehouse;
