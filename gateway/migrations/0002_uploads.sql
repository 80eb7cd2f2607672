-- Catalog schema, version 2: uploads and their state history.
-- An upload is one file arriving over one protocol. It is `receiving` until its last
-- byte is durable and verified, then `accepted` (the promise: never lost), then
-- `checking`, and finally `indexed` or `rejected`. Partial uploads may `expire`.

CREATE TABLE IF NOT EXISTS uploads (
    id               TEXT PRIMARY KEY NOT NULL,
    tenant           TEXT NOT NULL,
    name             TEXT NOT NULL,
    protocol         TEXT NOT NULL,
    state            TEXT NOT NULL,
    declared_len     INTEGER,
    -- Sealed bytes known to be on disk (fsync'd) for a receiving upload; the full
    -- length once accepted.
    durable_offset   INTEGER NOT NULL DEFAULT 0,
    plaintext_len    INTEGER,
    plaintext_sha256 TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    accepted_at      INTEGER,
    -- Arrival order of accepted uploads: the order checks run in.
    accept_seq       INTEGER UNIQUE
);

-- At most one upload of a name is receiving per tenant: that is the one a client resumes.
CREATE UNIQUE INDEX IF NOT EXISTS uploads_receiving_name
    ON uploads (tenant, name) WHERE state = 'receiving';
CREATE INDEX IF NOT EXISTS uploads_tenant_state ON uploads (tenant, state);

CREATE TABLE IF NOT EXISTS upload_states (
    upload_id TEXT NOT NULL REFERENCES uploads (id),
    state     TEXT NOT NULL,
    at        INTEGER NOT NULL,
    detail    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS upload_states_upload ON upload_states (upload_id, at);
