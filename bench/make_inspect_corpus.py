#!/usr/bin/env python3
"""Benchmark corpora, made with pydicom and qpdf. usage: make_inspect_corpus.py OUT N_DICOM N_PDF

OUT/dicom: N_DICOM Part-10 files, copies of pydicom's real-world test files (CT, MR,
RT dose, secondary capture) each with a fresh SOP Instance UID.
OUT/pdf: N_PDF PDFs of 40 pages with an outline, written by hand and rewritten by qpdf.
"""
import os
import subprocess
import sys

import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

out, n_dicom, n_pdf = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(os.path.join(out, "dicom"), exist_ok=True)
os.makedirs(os.path.join(out, "pdf"), exist_ok=True)
sources = [pydicom.dcmread(get_testdata_file(n)) for n in ["CT_small.dcm", "MR_small.dcm", "liver_1frame.dcm", "SC_rgb_rle_2frame.dcm"]]
for i in range(n_dicom):
    ds = sources[i % len(sources)]
    uid = generate_uid()
    ds.SOPInstanceUID = uid
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.save_as(os.path.join(out, "dicom", f"{i:06d}.dcm"), enforce_file_format=False)

pages = 40
objs = ["<< /Type /Catalog /Pages 2 0 R /Outlines 3 0 R >>"]
kids = " ".join(f"{4 + 2 * p} 0 R" for p in range(pages))
objs.append(f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>")
first_item = 4 + 2 * pages
objs.append(f"<< /Type /Outlines /First {first_item} 0 R /Last {first_item + pages - 1} 0 R /Count {pages} >>")
for p in range(pages):
    objs.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents {5 + 2 * p} 0 R >>")
    body = f"BT /F1 12 Tf 72 720 Td (Progress note, page {p + 1}) Tj ET\n" * 20
    objs.append(f"<< /Length {len(body)} >>\nstream\n{body}endstream")
for p in range(pages):
    prev = f" /Prev {first_item + p - 1} 0 R" if p else ""
    nxt = f" /Next {first_item + p + 1} 0 R" if p < pages - 1 else ""
    objs.append(f"<< /Title (Note {p + 1}) /Parent 3 0 R /Dest [{4 + 2 * p} 0 R /Fit]{prev}{nxt} >>")
text = "%PDF-1.7\n" + "".join(f"{i} 0 obj\n{o}\nendobj\n" for i, o in enumerate(objs, 1))
text += f"trailer\n<< /Root 1 0 R /Size {len(objs) + 1} >>\n%%EOF\n"
raw = os.path.join(out, "raw.pdf")
open(raw, "w").write(text)
base = os.path.join(out, "base.pdf")
subprocess.run(["qpdf", "--warning-exit-0", raw, base], check=True)
data = open(base, "rb").read()
for i in range(n_pdf):
    open(os.path.join(out, "pdf", f"{i:05d}.pdf"), "wb").write(data)
os.remove(raw)
os.remove(base)
