-- Catalog schema, version 9: PatientName searches (QIDO-RS) with a literal prefix
-- before the first wildcard use this index (matching is GLOB, case-sensitive as DICOM
-- wildcard matching is, which lets SQLite turn the prefix into an index range).

CREATE INDEX IF NOT EXISTS dicom_patient_name ON dicom_instances (tenant, patient_name);
CREATE INDEX IF NOT EXISTS dicom_study_description ON dicom_instances (tenant, study_description);
-- ModalitiesInStudy searches walk the studies with that modality in study order.
CREATE INDEX IF NOT EXISTS dicom_modality_study ON dicom_instances (tenant, modality, study_uid);
