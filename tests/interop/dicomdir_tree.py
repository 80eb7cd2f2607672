"""Copies pydicom's bundled DICOMDIR test set (its DICOMDIR and every file it
references, nothing else) into a folder tree, and prints what pydicom reads of it.

    python3 dicomdir_tree.py OUT_DIR
"""
import json
import os
import shutil
import sys

import pydicom
from pydicom.data import get_testdata_file
from pydicom.fileset import FileSet

out = sys.argv[1]
dicomdir = get_testdata_file("DICOMDIR")
root = os.path.dirname(os.path.abspath(dicomdir))
fs = FileSet(pydicom.dcmread(dicomdir))
members = sorted(os.path.relpath(i.path, root).replace(os.sep, "/") for i in fs)
for m in members + ["DICOMDIR"]:
    os.makedirs(os.path.dirname(os.path.join(out, m)) or out, exist_ok=True)
    shutil.copyfile(os.path.join(root, m), os.path.join(out, m))
print(json.dumps({
    "members": members,
    "instances": len(members),
    "patients": len({i.PatientID for i in fs}),
    "studies": len({i.StudyInstanceUID for i in fs}),
    "series": len({i.SeriesInstanceUID for i in fs}),
}))
