#!/usr/bin/env python3
"""Test data for the inspectors, made by tools we did not write, with the expected facts
as those tools report them.

usage: make_inspect_data.py OUTDIR

DICOM comes from pydicom's bundled real-world test files (CT_small, MR_small, the
`dicomdirtests` DICOMDIR set); sets are zipped with Python's zipfile; PDFs are written as
minimal text, normalised by qpdf and encrypted by qpdf. `expected.json` holds what
pydicom and qpdf report for each file.
"""
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pydicom
from pydicom.data import get_testdata_file
from pydicom.fileset import FileSet

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
expected = {"dicom": {}, "sets": {}, "pdf": {}}
TENANT = "3501200000"


def dicom_facts(ds):
    def s(kw):
        v = ds.get(kw, "")
        return str(v).strip() if v is not None else ""

    frames = ds.get("NumberOfFrames")
    return {
        "patient_id": s("PatientID"),
        "patient_name": s("PatientName"),
        "study_uid": s("StudyInstanceUID"),
        "series_uid": s("SeriesInstanceUID"),
        "sop_uid": s("SOPInstanceUID"),
        "sop_class_uid": s("SOPClassUID"),
        "transfer_syntax": str(ds.file_meta.TransferSyntaxUID),
        "modality": s("Modality"),
        "study_date": s("StudyDate"),
        "accession_number": s("AccessionNumber"),
        "institution_name": s("InstitutionName"),
        "number_of_frames": int(frames) if frames not in (None, "") else None,
    }


# Single instances, as pydicom reads them.
for name in ["CT_small.dcm", "MR_small.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm", "JPEG2000.dcm", "liver_1frame.dcm", "SC_rgb_rle_2frame.dcm"]:
    src = get_testdata_file(name)
    shutil.copy(src, os.path.join(OUT, name))
    expected["dicom"][name] = dicom_facts(pydicom.dcmread(src, stop_before_pixels=True))

# A data set whose SOP Instance UID disagrees with the meta group; a malformed UID.
ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
ds.SOPInstanceUID = "1.2.3.4.5.6.7.8"
ds.save_as(os.path.join(OUT, "meta_mismatch.dcm"), enforce_file_format=False)
# A real-world file whose meta group disagrees with its data set (pydicom's rtdose.dcm).
shutil.copy(get_testdata_file("rtdose.dcm"), os.path.join(OUT, "rtdose.dcm"))
ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
ds.StudyInstanceUID = "1.2.03.abc"
ds.save_as(os.path.join(OUT, "bad_uid.dcm"), enforce_file_format=True)
ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
del ds.StudyInstanceUID
ds.save_as(os.path.join(OUT, "missing_uid.dcm"), enforce_file_format=False)
with open(os.path.join(OUT, "broken.dcm"), "wb") as f:
    f.write(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\x7fgarbage")

# DICOMDIR sets as ZIP batches: the pydicom set (three patients, made by dcmmkdir),
# its variants, and broken copies.
base = os.path.dirname(get_testdata_file("MR_small.dcm"))
setdir = os.path.join(base, "dicomdirtests")


def set_members(dicomdir):
    fs = FileSet(pydicom.dcmread(dicomdir))
    root = os.path.dirname(os.path.abspath(dicomdir))
    return fs, [os.path.relpath(i.path, root).replace(os.sep, "/") for i in fs]


def make_zip(zname, dicomdir_src, members, extra=None, drop=None, patch=None):
    path = os.path.join(OUT, zname)
    root = os.path.dirname(os.path.abspath(dicomdir_src))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(dicomdir_src, "case-1/DICOMDIR")
        for m in members:
            if m == drop:
                continue
            data = open(os.path.join(root, m), "rb").read()
            if patch and m == patch[0]:
                data = patch[1](os.path.join(root, m))
            z.writestr("case-1/" + m, data)
        for n, data in (extra or {}).items():
            z.writestr("case-1/" + n, data)
    return path


fs, members = set_members(os.path.join(setdir, "DICOMDIR"))
studies = {i.StudyInstanceUID for i in fs}
series = {i.SeriesInstanceUID for i in fs}
patients = {i.PatientID for i in fs}
facts = {"instances": len(members), "patients": len(patients), "studies": len(studies), "series": len(series)}
ok = f"{TENANT}_1151101_001.zip"
make_zip(ok, os.path.join(setdir, "DICOMDIR"), members)
expected["sets"][ok] = facts
for variant in ["DICOMDIR-implicit", "DICOMDIR-bigEnd", "DICOMDIR-reordered"]:
    zname = f"{TENANT}_1151101_{variant[-3:].lower()}.zip"
    # The variants reference the same files; keep the ROC name valid but distinct.
    zname = f"{TENANT}_1151101_{100 + len(expected['sets']):03d}.zip"
    make_zip(zname, os.path.join(setdir, variant), members)
    expected["sets"][zname] = dict(facts, variant=variant)
# pydicom reads this hand-edited variant; dicom-rs 0.10 stops early ("premature data set
# end"), so the gateway reports it as dicomdir.invalid (asserted, and noted in the docs).
make_zip("nooffset.zip", os.path.join(setdir, "DICOMDIR-nooffset"), members)


def edited_dicomdir(name, edit):
    """A copy of the set's DICOMDIR with one offset changed (UL values keep the layout)."""
    d = pydicom.dcmread(os.path.join(setdir, "DICOMDIR"))
    edit(d)
    path = os.path.join(OUT, name)
    d.save_as(path, enforce_file_format=False)
    # make_zip reads the DICOMDIR beside its members
    return path


def zip_with_dicomdir(zname, dicomdir):
    with zipfile.ZipFile(os.path.join(OUT, zname), "w", zipfile.ZIP_DEFLATED) as z:
        z.write(dicomdir, "case-1/DICOMDIR")
        for m in members:
            z.write(os.path.join(setdir, m), "case-1/" + m)
    os.remove(dicomdir)


def zero_root(d):
    d.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = 0


def bogus_root(d):
    d.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = 12345


def loop_back(d):
    # The first patient's last sibling points back at the first record.
    d.DirectoryRecordSequence[0].OffsetOfTheNextDirectoryRecord = d.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity


zip_with_dicomdir("zeroroot.zip", edited_dicomdir("DICOMDIR.zeroroot", zero_root))
zip_with_dicomdir("badoffset.zip", edited_dicomdir("DICOMDIR.bogus", bogus_root))
zip_with_dicomdir("cycle.zip", edited_dicomdir("DICOMDIR.cycle", loop_back))
make_zip("nopatient.zip", os.path.join(setdir, "DICOMDIR-nopatient"), members)
make_zip("not_part10.zip", os.path.join(setdir, "DICOMDIR"), members, patch=(members[2], lambda p: b"just text\n" * 50))
with zipfile.ZipFile(os.path.join(OUT, "exe_inside.zip"), "w") as z:
    z.writestr("12A03123345.pdf", b"MZ\x90\x00\x03\x00\x00\x00" + b"\0" * 100)
open(os.path.join(OUT, "not_a.zip"), "wb").write(b"PK\x03\x04" + b"\0" * 40)
make_zip("missing.zip", os.path.join(setdir, "DICOMDIR"), members, drop=members[3])
expected["missing"] = members[3]
orphan = open(get_testdata_file("CT_small.dcm"), "rb").read()
make_zip("orphan.zip", os.path.join(setdir, "DICOMDIR"), members, extra={"EXTRA/CT1": orphan})


def other_series(path):
    d = pydicom.dcmread(path)
    d.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    from io import BytesIO

    b = BytesIO()
    d.save_as(b, enforce_file_format=True)
    return b.getvalue()


make_zip("mismatch.zip", os.path.join(setdir, "DICOMDIR"), members, patch=(members[5], other_series))
expected["mismatch"] = members[5]

# ZIP attacks, by zipfile.
with zipfile.ZipFile(os.path.join(OUT, "bomb.zip"), "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("zeros.txt", b"\0" * (200 << 20))
with zipfile.ZipFile(os.path.join(OUT, "slip.zip"), "w") as z:
    z.writestr("../../etc/cron.d/evil.txt", b"* * * * * root true\n")
with zipfile.ZipFile(os.path.join(OUT, "link.zip"), "w") as z:
    info = zipfile.ZipInfo("link.txt")
    info.create_system = 3
    info.external_attr = (0o120777 << 16)
    z.writestr(info, "/etc/passwd")
with zipfile.ZipFile(os.path.join(OUT, "case.zip"), "w") as z:
    z.writestr("Report.txt", b"a\n")
    z.writestr("REPORT.txt", b"b\n")
with zipfile.ZipFile(os.path.join(OUT, "encrypted.zip"), "w") as z:
    z.writestr("secret.txt", b"not really encrypted, but flagged so\n")
raw = bytearray(open(os.path.join(OUT, "encrypted.zip"), "rb").read())
for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
    i = raw.find(sig)
    raw[i + flag_at] |= 1  # general purpose bit 0: encrypted
open(os.path.join(OUT, "encrypted.zip"), "wb").write(raw)

# PDFs: a minimal document written by hand, rewritten by qpdf (which fixes the
# cross-reference table), with and without an outline and a script; encrypted by qpdf.


def pdf_text(outline, script):
    objs = [
        "<< /Type /Catalog /Pages 2 0 R" + (" /Outlines 5 0 R" if outline else "") + (" /OpenAction 7 0 R" if script else "") + " >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
        "<< /Length 8 >>\nstream\nBT\nET\n\nendstream",
        "<< /Type /Outlines /First 6 0 R /Last 6 0 R /Count 1 >>",
        "<< /Title (Discharge summary) /Parent 5 0 R /Dest [3 0 R /Fit] >>",
        "<< /S /JavaScript /JS (app.alert\\(1\\)) >>",
        "<< /Title (Record 12A03123345) /Author (Dr. Lin) /Producer (HIS 4.2) /CreationDate (D:20261101093000+08'00') >>",
    ]
    out = "%PDF-1.7\n"
    for i, o in enumerate(objs, 1):
        out += f"{i} 0 obj\n{o}\nendobj\n"
    out += "trailer\n<< /Root 1 0 R /Info 8 0 R /Size 9 >>\n%%EOF\n"
    return out.encode()


def qpdf(*args):
    subprocess.run(["qpdf", *args], check=True, capture_output=True)


def qpdf_facts(path, password=None):
    pw = [f"--password={password}"] if password else []
    pages = int(subprocess.run(["qpdf", *pw, "--show-npages", path], capture_output=True, text=True).stdout.strip() or 0)
    enc = subprocess.run(["qpdf", *pw, "--show-encryption", path], capture_output=True, text=True).stdout
    r = next((int(l.split("=")[1]) for l in enc.splitlines() if l.startswith("R = ")), None)
    j = json.loads(subprocess.run(["qpdf", *pw, "--json", "--json-key=outlines", path], capture_output=True, text=True).stdout)
    return {"pages": pages, "r": r, "outlines": [o["title"] for o in j.get("outlines", [])]}


for name, outline, script in [("with_outline", True, False), ("no_outline", False, False), ("script", True, True)]:
    raw = os.path.join(OUT, f"{name}.raw.pdf")
    open(raw, "wb").write(pdf_text(outline, script))
    qpdf("--warning-exit-0", raw, os.path.join(OUT, f"{name}.pdf"))
    os.remove(raw)
    expected["pdf"][f"{name}.pdf"] = qpdf_facts(os.path.join(OUT, f"{name}.pdf"))
src = os.path.join(OUT, "with_outline.pdf")
qpdf("--encrypt", "citizen", "owner", "256", "--", src, os.path.join(OUT, "aes256.pdf"))
expected["pdf"]["aes256.pdf"] = qpdf_facts(os.path.join(OUT, "aes256.pdf"), "citizen")
qpdf("--encrypt", "", "owner", "256", "--", src, os.path.join(OUT, "aes256_open.pdf"))
expected["pdf"]["aes256_open.pdf"] = qpdf_facts(os.path.join(OUT, "aes256_open.pdf"))
qpdf("--encrypt", "", "owner", "128", "--use-aes=y", "--", src, os.path.join(OUT, "aes128.pdf"))
expected["pdf"]["aes128.pdf"] = qpdf_facts(os.path.join(OUT, "aes128.pdf"))
qpdf("--allow-weak-crypto", "--encrypt", "", "owner", "128", "--use-aes=n", "--", src, os.path.join(OUT, "rc4_128.pdf"))
expected["pdf"]["rc4_128.pdf"] = qpdf_facts(os.path.join(OUT, "rc4_128.pdf"))
qpdf("--allow-weak-crypto", "--encrypt", "citizen", "owner", "40", "--", src, os.path.join(OUT, "rc4.pdf"))
expected["pdf"]["rc4.pdf"] = qpdf_facts(os.path.join(OUT, "rc4.pdf"), "citizen")
open(os.path.join(OUT, "program.pdf"), "wb").write(b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\0" * 200)

json.dump(expected, open(os.path.join(OUT, "expected.json"), "w"), indent=1)
print(OUT)
