-- The check queue: accepted uploads in arrival order. A claim reads its head. Without
-- it SQLite gathered every accepted upload (uploads_state_updated) and sorted them for
-- each claim, so a backlog made every claim slower — found under the standard loadtest
-- (5,000 queued: a temporary B-tree of 5,000 rows per claim, inside the writer's turn).
CREATE INDEX IF NOT EXISTS uploads_queue ON uploads (accept_seq) WHERE state = 'accepted';
-- Uploads accepted and not yet checked, per tenant in arrival order (earlier_pending).
CREATE INDEX IF NOT EXISTS uploads_pending ON uploads (tenant, accept_seq)
    WHERE state IN ('accepted', 'checking');
-- An upload by name (SFTP stat, open, listings): without it a lookup read every
-- upload of the tenant, and a listing compared each of them with every other.
CREATE INDEX IF NOT EXISTS uploads_tenant_name ON uploads (tenant, name, created_at);
