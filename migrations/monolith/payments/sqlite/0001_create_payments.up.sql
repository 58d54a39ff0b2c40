-- Payment accounts: one row per customer that has used credit, created on
-- first use. credit_limit_cents NULL means the configured default limit, so
-- that changing the default reaches every customer without a limit of
-- their own. open_cents is the sum of the open authorizations, captured_cents
-- of the captured ones; available = limit - open - captured.
CREATE TABLE pay_accounts (
    customer_id        BIGINT      PRIMARY KEY,
    credit_limit_cents BIGINT      CHECK (credit_limit_cents >= 0),
    open_cents         BIGINT      NOT NULL DEFAULT 0 CHECK (open_cents >= 0),
    captured_cents     BIGINT      NOT NULL DEFAULT 0 CHECK (captured_cents >= 0),
    version            INTEGER     NOT NULL DEFAULT 1,
    updated_at         DATETIME    NOT NULL
);

-- Authorizations, one per idempotency key. A void for a key that was never
-- authorized is a row too (status voided, no customer, authorized_at NULL),
-- so that a late authorization with that key is refused.
CREATE TABLE pay_authorizations (
    id              INTEGER     PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT        NOT NULL,
    customer_id     BIGINT,
    amount_cents    BIGINT      NOT NULL CHECK (amount_cents >= 0),
    status          TEXT        NOT NULL CHECK (status IN ('authorized', 'declined', 'voided', 'captured')),
    authorized_at   DATETIME,
    voided_at       DATETIME,
    captured_at     DATETIME,
    version         INTEGER     NOT NULL DEFAULT 1,
    created_at      DATETIME    NOT NULL,
    updated_at      DATETIME    NOT NULL,
    CONSTRAINT pay_authorizations_key UNIQUE (idempotency_key)
);

CREATE INDEX pay_authorizations_customer ON pay_authorizations (customer_id);
