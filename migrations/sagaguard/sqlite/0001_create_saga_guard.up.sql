-- saga_guard is a saga participant's record of the idempotency keys it has
-- seen: done (the forward step ran; result is its answer) or compensated
-- (null_compensation when the forward step had never run, which also
-- refuses that step if it arrives late).
CREATE TABLE saga_guard (
    idem_key          TEXT     PRIMARY KEY,
    state             TEXT     NOT NULL,
    result            TEXT     NOT NULL DEFAULT '',
    null_compensation BOOLEAN  NOT NULL DEFAULT FALSE,
    created_at        DATETIME NOT NULL,
    updated_at        DATETIME NOT NULL
);
