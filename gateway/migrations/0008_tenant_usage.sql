-- Catalog schema, version 8: what each tenant holds, kept up to date by triggers on
-- `uploads`, so the quota check at every upload is one row read instead of a sum over
-- all of the tenant's uploads (measured: that sum dominated small uploads once a tenant
-- had 100,000 of them). The triggers see every state change, whichever code path makes it.
--   bytes, files: uploads accepted, being checked or indexed
--   receiving:    partial uploads

CREATE TABLE IF NOT EXISTS tenant_usage (
    tenant    TEXT PRIMARY KEY NOT NULL,
    bytes     INTEGER NOT NULL DEFAULT 0,
    files     INTEGER NOT NULL DEFAULT 0,
    receiving INTEGER NOT NULL DEFAULT 0
);

INSERT OR REPLACE INTO tenant_usage (tenant, bytes, files, receiving)
SELECT tenant,
       COALESCE(SUM(CASE WHEN state IN ('accepted', 'checking', 'indexed') THEN durable_offset END), 0),
       COUNT(CASE WHEN state IN ('accepted', 'checking', 'indexed') THEN 1 END),
       COUNT(CASE WHEN state = 'receiving' THEN 1 END)
FROM uploads GROUP BY tenant;

CREATE TRIGGER IF NOT EXISTS tenant_usage_insert AFTER INSERT ON uploads
BEGIN
    INSERT OR IGNORE INTO tenant_usage (tenant) VALUES (NEW.tenant);
    UPDATE tenant_usage SET
        bytes = bytes + CASE WHEN NEW.state IN ('accepted', 'checking', 'indexed') THEN NEW.durable_offset ELSE 0 END,
        files = files + (NEW.state IN ('accepted', 'checking', 'indexed')),
        receiving = receiving + (NEW.state = 'receiving')
    WHERE tenant = NEW.tenant;
END;

CREATE TRIGGER IF NOT EXISTS tenant_usage_update AFTER UPDATE OF state, durable_offset, tenant ON uploads
BEGIN
    INSERT OR IGNORE INTO tenant_usage (tenant) VALUES (NEW.tenant);
    UPDATE tenant_usage SET
        bytes = bytes - CASE WHEN OLD.state IN ('accepted', 'checking', 'indexed') THEN OLD.durable_offset ELSE 0 END,
        files = files - (OLD.state IN ('accepted', 'checking', 'indexed')),
        receiving = receiving - (OLD.state = 'receiving')
    WHERE tenant = OLD.tenant;
    UPDATE tenant_usage SET
        bytes = bytes + CASE WHEN NEW.state IN ('accepted', 'checking', 'indexed') THEN NEW.durable_offset ELSE 0 END,
        files = files + (NEW.state IN ('accepted', 'checking', 'indexed')),
        receiving = receiving + (NEW.state = 'receiving')
    WHERE tenant = NEW.tenant;
END;

CREATE TRIGGER IF NOT EXISTS tenant_usage_delete AFTER DELETE ON uploads
BEGIN
    UPDATE tenant_usage SET
        bytes = bytes - CASE WHEN OLD.state IN ('accepted', 'checking', 'indexed') THEN OLD.durable_offset ELSE 0 END,
        files = files - (OLD.state IN ('accepted', 'checking', 'indexed')),
        receiving = receiving - (OLD.state = 'receiving')
    WHERE tenant = OLD.tenant;
END;
