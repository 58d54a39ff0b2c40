-- Customers. email is stored trimmed and in lower case, so the unique
-- constraint makes it unique regardless of case.
CREATE TABLE customers (
    id            INTEGER  PRIMARY KEY AUTOINCREMENT,
    email         TEXT     NOT NULL,
    name          TEXT     NOT NULL,
    address_line1 TEXT     NOT NULL,
    address_line2 TEXT     NOT NULL DEFAULT '',
    postal_code   TEXT     NOT NULL,
    city          TEXT     NOT NULL,
    country       TEXT     NOT NULL CHECK (length(country) = 2),
    version       INTEGER  NOT NULL DEFAULT 1,
    created_at    DATETIME NOT NULL,
    updated_at    DATETIME NOT NULL,
    CONSTRAINT customers_email_key UNIQUE (email)
);
