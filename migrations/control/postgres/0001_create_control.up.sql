-- The shared control store (proxy/control/pgstore): the state document,
-- every revision of it, the audit log, the service registry and the
-- replicas' reports, for several proxies that share one database.

-- control_state holds the newest state document in its one row. A save
-- moves revision on by one where it is still the revision the change was
-- based on: the optimistic concurrency of control.Store across replicas.
-- json, not jsonb, keeps the document byte for byte as it was saved.
CREATE TABLE control_state (
    id       smallint    PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    revision bigint      NOT NULL CHECK (revision > 0),
    doc      json        NOT NULL,
    saved_at timestamptz NOT NULL DEFAULT now()
);

-- control_history keeps every saved revision, written in the transaction
-- of the save: the one log of changes across replicas.
CREATE TABLE control_history (
    revision bigint      PRIMARY KEY,
    doc      json        NOT NULL,
    saved_at timestamptz NOT NULL DEFAULT now()
);

-- control_audit is the audit log; id is the page cursor, newest first.
-- module is copied out of the entry for the module filter.
CREATE TABLE control_audit (
    id     bigserial PRIMARY KEY,
    module text      NOT NULL DEFAULT '',
    entry  json      NOT NULL
);
CREATE INDEX control_audit_module ON control_audit (module, id);

-- control_instances are the service registrations. expires_at and
-- registered_at come from the database clock, so that replicas with
-- skewed clocks agree on which have expired; registered_at restarts when a
-- registration is made again after it expired.
CREATE TABLE control_instances (
    service       text        NOT NULL,
    url           text        NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    PRIMARY KEY (service, url)
);
CREATE INDEX control_instances_expiry ON control_instances (expires_at);

-- control_replicas is what each proxy replica last reported: the revision
-- and table version it serves, so that an operator sees a straggler.
CREATE TABLE control_replicas (
    replica     text        PRIMARY KEY,
    revision    bigint      NOT NULL,
    version     bigint      NOT NULL,
    detail      json,
    reported_at timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
