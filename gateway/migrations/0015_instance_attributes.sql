-- Catalog schema, version 15: each instance's other short top-level attributes, as a
-- DICOM JSON object, beside the columns the index searches by. QIDO-RS `includefield`
-- answers from it, and matching on an attribute without a column (`?Rows=512`) looks
-- into it. Instances indexed before this version have none (`{}`): what they hold is
-- still answered by WADO-RS metadata, read from the stored file.

ALTER TABLE dicom_instances ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
