-- The catalog's schema on PostgreSQL: the same tables as the embedded catalog's fifteen
-- SQLite migrations (gateway/migrations/, which say why each column exists), as they
-- stand at version 15, in PostgreSQL's types. Later changes get a migration in both
-- folders.
--
-- Every text column sorts and compares byte by byte (COLLATE "C"), as SQLite's do: the
-- name-prefix ranges (`name >= p AND name < p || U+10FFFF`) and every ORDER BY must
-- mean the same on both engines, whatever locale the operator's cluster was made with.
-- Integers are BIGINT (Rust's i64); JSON stays text, as the embedded catalog keeps it.

CREATE TABLE gateway_meta (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE audit_log (
    id      BIGSERIAL PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT COLLATE "C" NOT NULL,
    action  TEXT COLLATE "C" NOT NULL,
    detail  TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_actor_at ON audit_log (actor, at);
CREATE INDEX audit_log_action ON audit_log (action);

-- Arrival order of accepted uploads (SQLite takes MAX + 1 under its single writer;
-- here many nodes accept at once).
CREATE SEQUENCE uploads_accept_seq;

CREATE TABLE uploads (
    id               TEXT COLLATE "C" PRIMARY KEY,
    tenant           TEXT COLLATE "C" NOT NULL,
    name             TEXT COLLATE "C" NOT NULL,
    protocol         TEXT NOT NULL,
    state            TEXT COLLATE "C" NOT NULL,
    declared_len     BIGINT,
    durable_offset   BIGINT NOT NULL DEFAULT 0,
    plaintext_len    BIGINT,
    plaintext_sha256 TEXT COLLATE "C",
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    accepted_at      BIGINT,
    accept_seq       BIGINT UNIQUE,
    purged_at        BIGINT,
    check_attempts   BIGINT NOT NULL DEFAULT 0,
    check_after      BIGINT NOT NULL DEFAULT 0,
    waits_for        TEXT,
    request_id       TEXT COLLATE "C",
    -- The node writing this partial upload, and until when (unix seconds): one writer
    -- per upload across the cluster.
    lease_holder     TEXT,
    lease_until      BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX uploads_receiving_name ON uploads (tenant, name) WHERE state = 'receiving';
CREATE INDEX uploads_tenant_state ON uploads (tenant, state);
CREATE INDEX uploads_state_updated ON uploads (state, updated_at);
CREATE INDEX uploads_tenant_sha ON uploads (tenant, plaintext_sha256);
CREATE INDEX uploads_queue ON uploads (accept_seq) WHERE state = 'accepted';
CREATE INDEX uploads_pending ON uploads (tenant, accept_seq) WHERE state IN ('accepted', 'checking');
CREATE INDEX uploads_tenant_name ON uploads (tenant, name, created_at);
-- Checks whose node's lease lapsed, taken over by the next claim.
CREATE INDEX uploads_checking_lease ON uploads (lease_until) WHERE state = 'checking';

CREATE TABLE upload_states (
    upload_id TEXT COLLATE "C" NOT NULL REFERENCES uploads (id),
    state     TEXT NOT NULL,
    at        BIGINT NOT NULL,
    detail    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX upload_states_upload ON upload_states (upload_id, at);

CREATE TABLE files (
    -- The listing cursor (SQLite's rowid): files are never deleted.
    seq                BIGSERIAL UNIQUE,
    id                 TEXT COLLATE "C" PRIMARY KEY,
    upload_id          TEXT COLLATE "C" NOT NULL REFERENCES uploads (id),
    tenant             TEXT COLLATE "C" NOT NULL,
    name               TEXT COLLATE "C" NOT NULL,
    sha256             TEXT COLLATE "C" NOT NULL,
    size               BIGINT NOT NULL,
    media_type         TEXT COLLATE "C" NOT NULL,
    object_key         TEXT COLLATE "C" NOT NULL,
    metadata           TEXT NOT NULL DEFAULT '{}',
    indexed_at         BIGINT NOT NULL,
    superseded_by      TEXT COLLATE "C",
    expires_at         BIGINT,
    expired_at         BIGINT,
    downloads          BIGINT NOT NULL DEFAULT 0,
    last_downloaded_at BIGINT,
    purged_at          BIGINT,
    request_id         TEXT COLLATE "C"
);
CREATE UNIQUE INDEX files_upload_name ON files (upload_id, name);
CREATE INDEX files_tenant_sha ON files (tenant, sha256);
CREATE INDEX files_tenant_name ON files (tenant, name);
CREATE INDEX files_unpurged ON files (expired_at) WHERE purged_at IS NULL AND expired_at IS NOT NULL;
CREATE INDEX files_expiry ON files (expires_at) WHERE expired_at IS NULL;
CREATE INDEX files_object ON files (object_key);
CREATE INDEX files_tenant_request ON files (tenant, request_id) WHERE request_id IS NOT NULL;

CREATE TABLE checks (
    upload_id TEXT COLLATE "C" NOT NULL REFERENCES uploads (id),
    seq       BIGINT NOT NULL,
    code      TEXT NOT NULL,
    severity  TEXT NOT NULL,
    message   TEXT NOT NULL,
    detail    TEXT NOT NULL DEFAULT 'null',
    PRIMARY KEY (upload_id, seq)
);

CREATE TABLE outbox (
    seq          BIGSERIAL PRIMARY KEY,
    event_id     TEXT NOT NULL UNIQUE,
    tenant       TEXT COLLATE "C" NOT NULL,
    kind         TEXT COLLATE "C" NOT NULL,
    payload      TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX outbox_tenant ON outbox (tenant, seq);
CREATE INDEX outbox_kind ON outbox (kind);

CREATE TABLE sink_cursors (
    sink          TEXT PRIMARY KEY,
    delivered_seq BIGINT NOT NULL DEFAULT 0,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE dead_letters (
    sink       TEXT COLLATE "C" NOT NULL,
    seq        BIGINT NOT NULL REFERENCES outbox (seq),
    attempts   BIGINT NOT NULL,
    last_error TEXT NOT NULL,
    dead_at    BIGINT NOT NULL,
    retry      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (sink, seq)
);

CREATE TABLE dicom_instances (
    -- The order instances were indexed in (SQLite's rowid).
    row_id              BIGSERIAL UNIQUE,
    file_id             TEXT COLLATE "C" NOT NULL REFERENCES files (id),
    tenant              TEXT COLLATE "C" NOT NULL,
    path                TEXT COLLATE "C" NOT NULL DEFAULT '',
    patient_id          TEXT COLLATE "C" NOT NULL,
    patient_name        TEXT COLLATE "C" NOT NULL,
    study_uid           TEXT COLLATE "C" NOT NULL,
    series_uid          TEXT COLLATE "C" NOT NULL,
    sop_uid             TEXT COLLATE "C" NOT NULL,
    sop_class_uid       TEXT COLLATE "C" NOT NULL,
    transfer_syntax     TEXT NOT NULL,
    modality            TEXT COLLATE "C" NOT NULL,
    study_date          TEXT COLLATE "C" NOT NULL,
    study_time          TEXT COLLATE "C" NOT NULL,
    accession_number    TEXT COLLATE "C" NOT NULL,
    institution_name    TEXT NOT NULL,
    number_of_frames    BIGINT,
    patient_birth_date  TEXT COLLATE "C" NOT NULL DEFAULT '',
    patient_sex         TEXT NOT NULL DEFAULT '',
    study_description   TEXT COLLATE "C" NOT NULL DEFAULT '',
    study_id            TEXT COLLATE "C" NOT NULL DEFAULT '',
    referring_physician TEXT COLLATE "C" NOT NULL DEFAULT '',
    series_description  TEXT NOT NULL DEFAULT '',
    series_number       TEXT COLLATE "C" NOT NULL DEFAULT '',
    instance_number     TEXT COLLATE "C" NOT NULL DEFAULT '',
    replaced_by         TEXT COLLATE "C",
    attributes          TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (file_id, path)
);
CREATE INDEX dicom_study ON dicom_instances (tenant, study_uid);
CREATE INDEX dicom_patient ON dicom_instances (tenant, patient_id);
CREATE INDEX dicom_series ON dicom_instances (tenant, series_uid);
CREATE INDEX dicom_sop ON dicom_instances (tenant, sop_uid);
CREATE INDEX dicom_study_date ON dicom_instances (tenant, study_date);
CREATE INDEX dicom_accession ON dicom_instances (tenant, accession_number);
CREATE INDEX dicom_patient_name ON dicom_instances (tenant, patient_name);
CREATE INDEX dicom_study_description ON dicom_instances (tenant, study_description);
CREATE INDEX dicom_modality_study ON dicom_instances (tenant, modality, study_uid);

-- What each tenant holds, kept by a trigger on `uploads` (SQLite migration 0013 says
-- why, and why pre-checks do not count as held).
CREATE TABLE tenant_usage (
    tenant    TEXT COLLATE "C" PRIMARY KEY,
    bytes     BIGINT NOT NULL DEFAULT 0,
    files     BIGINT NOT NULL DEFAULT 0,
    receiving BIGINT NOT NULL DEFAULT 0
);

CREATE FUNCTION tenant_usage_held(state TEXT, name TEXT) RETURNS BOOLEAN
    LANGUAGE sql IMMUTABLE AS
$$ SELECT state IN ('accepted', 'checking', 'indexed') AND name NOT LIKE 'precheck/%' $$;

CREATE FUNCTION tenant_usage_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE tenant_usage SET
            bytes = bytes - CASE WHEN tenant_usage_held(OLD.state, OLD.name) THEN OLD.durable_offset ELSE 0 END,
            files = files - CASE WHEN tenant_usage_held(OLD.state, OLD.name) THEN 1 ELSE 0 END,
            receiving = receiving - CASE WHEN OLD.state = 'receiving' THEN 1 ELSE 0 END
        WHERE tenant = OLD.tenant;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO tenant_usage (tenant) VALUES (NEW.tenant) ON CONFLICT DO NOTHING;
        UPDATE tenant_usage SET
            bytes = bytes + CASE WHEN tenant_usage_held(NEW.state, NEW.name) THEN NEW.durable_offset ELSE 0 END,
            files = files + CASE WHEN tenant_usage_held(NEW.state, NEW.name) THEN 1 ELSE 0 END,
            receiving = receiving + CASE WHEN NEW.state = 'receiving' THEN 1 ELSE 0 END
        WHERE tenant = NEW.tenant;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER tenant_usage_insert AFTER INSERT OR DELETE ON uploads
    FOR EACH ROW EXECUTE FUNCTION tenant_usage_track();
CREATE TRIGGER tenant_usage_update AFTER UPDATE OF state, durable_offset, tenant, name ON uploads
    FOR EACH ROW EXECUTE FUNCTION tenant_usage_track();

-- Jobs that run on one node at a time (housekeeping, retention, each sink's dispatch):
-- the node holding a job's lease, until when.
CREATE TABLE job_leases (
    job     TEXT PRIMARY KEY,
    holder  TEXT NOT NULL,
    until   BIGINT NOT NULL
);
