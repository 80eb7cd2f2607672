-- Catalog schema, version 5: the DICOM index, four levels like Orthanc's main tags
-- (patient → study → series → instance), one row per instance. An instance belongs to
-- an indexed file: the file itself, or an entry (`path`) of a ZIP batch / DICOMDIR set.

CREATE TABLE IF NOT EXISTS dicom_instances (
    file_id          TEXT NOT NULL REFERENCES files (id),
    tenant           TEXT NOT NULL,
    path             TEXT NOT NULL DEFAULT '',
    patient_id       TEXT NOT NULL,
    patient_name     TEXT NOT NULL,
    study_uid        TEXT NOT NULL,
    series_uid       TEXT NOT NULL,
    sop_uid          TEXT NOT NULL,
    sop_class_uid    TEXT NOT NULL,
    transfer_syntax  TEXT NOT NULL,
    modality         TEXT NOT NULL,
    study_date       TEXT NOT NULL,
    study_time       TEXT NOT NULL,
    accession_number TEXT NOT NULL,
    institution_name TEXT NOT NULL,
    number_of_frames INTEGER,
    PRIMARY KEY (file_id, path)
);
CREATE INDEX IF NOT EXISTS dicom_study ON dicom_instances (tenant, study_uid);
CREATE INDEX IF NOT EXISTS dicom_patient ON dicom_instances (tenant, patient_id);
CREATE INDEX IF NOT EXISTS dicom_series ON dicom_instances (tenant, series_uid);
CREATE INDEX IF NOT EXISTS dicom_sop ON dicom_instances (tenant, sop_uid);

-- Duplicate detection looks up earlier uploads by content.
CREATE INDEX IF NOT EXISTS uploads_tenant_sha ON uploads (tenant, plaintext_sha256);
