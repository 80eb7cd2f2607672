-- Catalog schema, version 7: what DICOMweb viewers list studies, series and instances by
-- (QIDO-RS), beside the four-level keys of version 5.

ALTER TABLE dicom_instances ADD COLUMN patient_birth_date TEXT NOT NULL DEFAULT '';
ALTER TABLE dicom_instances ADD COLUMN patient_sex TEXT NOT NULL DEFAULT '';
ALTER TABLE dicom_instances ADD COLUMN study_description TEXT NOT NULL DEFAULT '';
ALTER TABLE dicom_instances ADD COLUMN study_id TEXT NOT NULL DEFAULT '';
ALTER TABLE dicom_instances ADD COLUMN referring_physician TEXT NOT NULL DEFAULT '';
ALTER TABLE dicom_instances ADD COLUMN series_description TEXT NOT NULL DEFAULT '';
ALTER TABLE dicom_instances ADD COLUMN series_number TEXT NOT NULL DEFAULT '';
ALTER TABLE dicom_instances ADD COLUMN instance_number TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS dicom_study_date ON dicom_instances (tenant, study_date);
CREATE INDEX IF NOT EXISTS dicom_accession ON dicom_instances (tenant, accession_number);
