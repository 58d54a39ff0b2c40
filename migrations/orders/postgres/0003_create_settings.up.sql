-- settings keeps the orders service's persistent switches, such as
-- ownership: whether it takes order writes (from the ownership flip) or
-- refuses them as a read replica (servicekit.Ownership).
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
