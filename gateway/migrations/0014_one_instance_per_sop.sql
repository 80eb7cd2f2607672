-- Catalog schema, version 14: one SOP Instance UID is one instance. When a hospital's
-- later file holds an instance with a SOP Instance UID it sent before (a corrected
-- image, the same study sent again), the earlier row records which file replaced it,
-- and DICOMweb lists, counts and retrieves only the current one.

ALTER TABLE dicom_instances ADD COLUMN replaced_by TEXT;
-- Rows already stored: each but the last of a SOP Instance UID is replaced by the last.
UPDATE dicom_instances SET replaced_by = (
    SELECT n.file_id FROM dicom_instances n
    WHERE n.tenant = dicom_instances.tenant AND n.sop_uid = dicom_instances.sop_uid
      AND n.rowid > dicom_instances.rowid
    ORDER BY n.rowid DESC LIMIT 1
);
