-- Catalog schema, version 4: housekeeping.
-- Partial uploads left `receiving` past `ingest.partial_expiry_hours` become `expired` and
-- their spool bytes are removed; rejected uploads keep their bytes (quarantine) for
-- `ingest.quarantine_days`, after which the bytes are removed and `purged_at` is set.
-- The rows themselves stay: a hospital can still read why an upload failed.

ALTER TABLE uploads ADD COLUMN purged_at INTEGER;
CREATE INDEX IF NOT EXISTS uploads_state_updated ON uploads (state, updated_at);
