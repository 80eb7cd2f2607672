-- Poison uploads end: how many times a check of the upload was started (counted in the
-- same transaction as the claim, so a crash mid-check still counts it), and the earliest
-- time (unix seconds) a requeued check may be claimed again (backoff after an error).
ALTER TABLE uploads ADD COLUMN check_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE uploads ADD COLUMN check_after INTEGER NOT NULL DEFAULT 0;
