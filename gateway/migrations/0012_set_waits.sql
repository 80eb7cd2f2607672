-- DICOMDIR sets sent as folder trees in any order: a check that waits for the rest of
-- its set says so here while it sits in the queue (a DICOMDIR for the checks of its
-- folder, `checks`, or for files it references, `members`; a loose DICOM file for a
-- DICOMDIR, `dicomdir`), so that it is looked at again with one catalog query instead
-- of being inspected again until something arrives.
ALTER TABLE uploads ADD COLUMN waits_for TEXT;
