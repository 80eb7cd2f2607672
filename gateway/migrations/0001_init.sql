-- Catalog schema, version 1: facts about this data directory, and the audit log.
-- Later migrations add uploads, files and the outbox.

CREATE TABLE IF NOT EXISTS gateway_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,          -- Unix seconds
    actor   TEXT NOT NULL,             -- tenant code, principal name, or "gateway"
    action  TEXT NOT NULL,             -- stable action code, e.g. "gateway.started"
    detail  TEXT NOT NULL DEFAULT '{}' -- JSON object
);

CREATE INDEX IF NOT EXISTS audit_log_actor_at ON audit_log (actor, at);
