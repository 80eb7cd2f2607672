-- Catalog schema, version 3: what checking produces.
-- files:  indexed files (one upload may yield several: a ZIP batch, a DICOM set)
-- checks: every finding shown to the hospital, per upload
-- outbox: events to hand off, written in the same transaction that indexes or rejects

CREATE TABLE IF NOT EXISTS files (
    id            TEXT PRIMARY KEY NOT NULL,
    upload_id     TEXT NOT NULL REFERENCES uploads (id),
    tenant        TEXT NOT NULL,
    name          TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    size          INTEGER NOT NULL,
    media_type    TEXT NOT NULL,
    object_key    TEXT NOT NULL,
    metadata      TEXT NOT NULL DEFAULT '{}',
    indexed_at    INTEGER NOT NULL,
    superseded_by TEXT
);
-- Processing an upload twice can never index its files twice.
CREATE UNIQUE INDEX IF NOT EXISTS files_upload_name ON files (upload_id, name);
CREATE INDEX IF NOT EXISTS files_tenant_sha ON files (tenant, sha256);
CREATE INDEX IF NOT EXISTS files_tenant_name ON files (tenant, name);

CREATE TABLE IF NOT EXISTS checks (
    upload_id TEXT NOT NULL REFERENCES uploads (id),
    seq       INTEGER NOT NULL,
    code      TEXT NOT NULL,
    severity  TEXT NOT NULL,
    message   TEXT NOT NULL,
    detail    TEXT NOT NULL DEFAULT 'null',
    PRIMARY KEY (upload_id, seq)
);

CREATE TABLE IF NOT EXISTS outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT NOT NULL UNIQUE,
    tenant       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    delivered_at INTEGER
);
