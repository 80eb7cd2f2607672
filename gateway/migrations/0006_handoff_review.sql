-- Catalog schema, version 6: hand-off and pull.
-- files:        retention deadline, expiry tombstone (rows are never deleted, so rowid is
--               a stable, increasing listing cursor), download count (rule 13)
-- sink_cursors: how far each outbox sink (webhook, NATS) has delivered, in outbox order
-- dead_letters: events a sink gave up on after its attempts; `retry` = an operator asked
--               for another round

ALTER TABLE files ADD COLUMN expires_at INTEGER;
ALTER TABLE files ADD COLUMN expired_at INTEGER;
ALTER TABLE files ADD COLUMN downloads INTEGER NOT NULL DEFAULT 0;
ALTER TABLE files ADD COLUMN last_downloaded_at INTEGER;
-- Set once retention has dealt with an expired file's object (deleted, or kept because
-- another current file uses it); until then the sweeper retries, so a crash between
-- marking a file expired and deleting its object never leaks the object.
ALTER TABLE files ADD COLUMN purged_at INTEGER;
CREATE INDEX IF NOT EXISTS files_unpurged ON files (expired_at) WHERE purged_at IS NULL AND expired_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS files_expiry ON files (expires_at) WHERE expired_at IS NULL;
CREATE INDEX IF NOT EXISTS files_object ON files (object_key);
CREATE INDEX IF NOT EXISTS outbox_tenant ON outbox (tenant, seq);

CREATE TABLE IF NOT EXISTS sink_cursors (
    sink          TEXT PRIMARY KEY NOT NULL,
    delivered_seq INTEGER NOT NULL DEFAULT 0,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS dead_letters (
    sink       TEXT NOT NULL,
    seq        INTEGER NOT NULL REFERENCES outbox (seq),
    attempts   INTEGER NOT NULL,
    last_error TEXT NOT NULL,
    dead_at    INTEGER NOT NULL,
    retry      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sink, seq)
);
