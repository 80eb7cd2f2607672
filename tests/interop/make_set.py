"""Writes a DICOMDIR set with pydicom's FileSet: COUNT small CT instances and, with
BIG_BYTES > 0, one more whose pixel data makes it about that large (a file big enough
to be interrupted mid-transfer). Prints the members (paths relative to OUT_DIR).

    python3 make_set.py OUT_DIR COUNT BIG_BYTES
"""
import json
import os
import sys

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.fileset import FileSet
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

out, count, big = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
study, series = generate_uid(), generate_uid()


def instance(n, pixels):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.PatientID, ds.PatientName = "P123", "Test^Set"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.StudyDate, ds.StudyTime, ds.StudyID = "20261101", "101500", "1"
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 1, n
    side = max(8, int((pixels / 2) ** 0.5))
    ds.Rows = ds.Columns = side
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = os.urandom(side * side * 2)
    return ds


fs = FileSet()
for n in range(count):
    fs.add(instance(n + 1, 4096))
if big > 0:
    fs.add(instance(count + 1, big))
os.makedirs(out, exist_ok=True)
fs.write(out)
members = sorted(
    os.path.relpath(os.path.join(d, f), out).replace(os.sep, "/")
    for d, _, files in os.walk(out)
    for f in files
    if f != "DICOMDIR"
)
sizes = {m: os.path.getsize(os.path.join(out, m)) for m in members}
print(json.dumps({"members": members, "sizes": sizes}))
