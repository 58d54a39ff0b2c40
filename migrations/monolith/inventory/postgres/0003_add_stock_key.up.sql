-- stock_key is the stock level's single-column key, "P-000042/AMS1": the
-- aggregate id of the inventory's events, and the key by which a backfill
-- snapshots this table and a verify compares it, both of which take one
-- key column. It is generated, so no writer can let it drift.
ALTER TABLE inv_stock ADD COLUMN stock_key TEXT GENERATED ALWAYS AS (product_ref || '/' || warehouse_code) STORED;

CREATE UNIQUE INDEX inv_stock_key_idx ON inv_stock (stock_key);
