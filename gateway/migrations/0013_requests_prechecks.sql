-- Catalog schema, version 13: request ids (DOMAIN rule 20) and pre-checks (rule 21).
-- An upload may answer a request (a citizen's application, a sampling-list case); the
-- id a client gave with the upload (tus metadata) is kept on the upload, and the id a
-- file was indexed with — from the upload, its name or its batch manifest — on the file,
-- indexed for the review API's `request_id` filter.
ALTER TABLE uploads ADD COLUMN request_id TEXT;
ALTER TABLE files ADD COLUMN request_id TEXT;
CREATE INDEX IF NOT EXISTS files_tenant_request ON files (tenant, request_id)
    WHERE request_id IS NOT NULL;

-- Pre-checks are uploads named `precheck/…`: they get the full check but are never
-- indexed, so they must not count against what a tenant holds either (the quota's
-- bytes and files). They still count while receiving: the concurrency limit guards the
-- gateway's resources, which a pre-check uses like any upload.
DROP TRIGGER IF EXISTS tenant_usage_insert;
DROP TRIGGER IF EXISTS tenant_usage_update;
DROP TRIGGER IF EXISTS tenant_usage_delete;

CREATE TRIGGER tenant_usage_insert AFTER INSERT ON uploads
BEGIN
    INSERT OR IGNORE INTO tenant_usage (tenant) VALUES (NEW.tenant);
    UPDATE tenant_usage SET
        bytes = bytes + CASE WHEN NEW.state IN ('accepted', 'checking', 'indexed') AND NEW.name NOT LIKE 'precheck/%' THEN NEW.durable_offset ELSE 0 END,
        files = files + (NEW.state IN ('accepted', 'checking', 'indexed') AND NEW.name NOT LIKE 'precheck/%'),
        receiving = receiving + (NEW.state = 'receiving')
    WHERE tenant = NEW.tenant;
END;

CREATE TRIGGER tenant_usage_update AFTER UPDATE OF state, durable_offset, tenant, name ON uploads
BEGIN
    INSERT OR IGNORE INTO tenant_usage (tenant) VALUES (NEW.tenant);
    UPDATE tenant_usage SET
        bytes = bytes - CASE WHEN OLD.state IN ('accepted', 'checking', 'indexed') AND OLD.name NOT LIKE 'precheck/%' THEN OLD.durable_offset ELSE 0 END,
        files = files - (OLD.state IN ('accepted', 'checking', 'indexed') AND OLD.name NOT LIKE 'precheck/%'),
        receiving = receiving - (OLD.state = 'receiving')
    WHERE tenant = OLD.tenant;
    UPDATE tenant_usage SET
        bytes = bytes + CASE WHEN NEW.state IN ('accepted', 'checking', 'indexed') AND NEW.name NOT LIKE 'precheck/%' THEN NEW.durable_offset ELSE 0 END,
        files = files + (NEW.state IN ('accepted', 'checking', 'indexed') AND NEW.name NOT LIKE 'precheck/%'),
        receiving = receiving + (NEW.state = 'receiving')
    WHERE tenant = NEW.tenant;
END;

CREATE TRIGGER tenant_usage_delete AFTER DELETE ON uploads
BEGIN
    UPDATE tenant_usage SET
        bytes = bytes - CASE WHEN OLD.state IN ('accepted', 'checking', 'indexed') AND OLD.name NOT LIKE 'precheck/%' THEN OLD.durable_offset ELSE 0 END,
        files = files - (OLD.state IN ('accepted', 'checking', 'indexed') AND OLD.name NOT LIKE 'precheck/%'),
        receiving = receiving - (OLD.state = 'receiving')
    WHERE tenant = OLD.tenant;
END;
