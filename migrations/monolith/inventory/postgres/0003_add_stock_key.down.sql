DROP INDEX inv_stock_key_idx;

ALTER TABLE inv_stock DROP COLUMN stock_key;
