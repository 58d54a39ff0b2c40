-- The catalog owns products. id is the surrogate key the rest of the shop
-- derives the legacy product reference from (P-000042 for id 42).
CREATE TABLE catalog_products (
    id          INTEGER  PRIMARY KEY AUTOINCREMENT,
    sku         TEXT     NOT NULL,
    name        TEXT     NOT NULL,
    description TEXT     NOT NULL DEFAULT '',
    price_cents INTEGER  NOT NULL CHECK (price_cents >= 0),
    currency    TEXT     NOT NULL CHECK (length(currency) = 3),
    active      BOOLEAN  NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    version     INTEGER  NOT NULL DEFAULT 1,
    created_at  DATETIME NOT NULL,
    updated_at  DATETIME NOT NULL,
    CONSTRAINT catalog_products_sku_key UNIQUE (sku)
);
