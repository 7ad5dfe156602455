-- Idempotency keys: one row per (caller, key). A row is claimed `in_flight` before the
-- handler runs and becomes `done` with the stored response; it is kept until `expires_at`
-- (24 hours by default) and then purged by the worker.
--
-- The caller is the authenticated user, or the nil UUID for anonymous requests; user_id
-- leads the primary key (Citus-ready: the table grows with customers). No foreign key to
-- users: the nil UUID is not a user.

CREATE TABLE idempotency_keys (
    user_id          UUID        NOT NULL,
    idem_key         TEXT        NOT NULL,
    -- "sha256:<hex>" of method, path and body, or "argon2:<PHC>" when the body carries a
    -- password (a fast hash of a password would be a cracking oracle).
    fingerprint      TEXT        NOT NULL,
    status           TEXT        NOT NULL CHECK (status IN ('in_flight', 'done')),
    -- The holder of the in-flight claim; only it may complete or abandon the row.
    claim_id         UUID        NOT NULL,
    -- Past this, an in-flight claim is considered dead (its process crashed) and a retry
    -- may take it over.
    locked_until     TIMESTAMPTZ NOT NULL,
    response_status  INTEGER,
    response_headers JSONB,
    response_body    BYTEA,
    created_at       TIMESTAMPTZ NOT NULL,
    expires_at       TIMESTAMPTZ NOT NULL,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (user_id, idem_key),
    CONSTRAINT idempotency_keys_response CHECK (status = 'in_flight' OR response_status IS NOT NULL)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
