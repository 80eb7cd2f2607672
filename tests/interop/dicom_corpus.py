"""Every DICOM file pydicom knows, stored through STOW-RS one request each, compared with
pydicom's own reading.

Usage: dicom_corpus.py BASE_URL HOSPITAL_TOKEN CA_CERT

The corpus is pydicom's bundled test files plus pydicom-data's (the files pydicom's own
test suite downloads, installed from PyPI by scripts/test-setup.sh). For each file, one
of three outcomes:

- agree: the gateway indexed it, and QIDO-RS answers exactly the UIDs, study date and
  modality pydicom reads;
- refused on purpose: the gateway refused it with a code of REASONS, and pydicom's
  reading shows why that code applies to this file (a refusal whose reason pydicom does
  not confirm is a disagreement);
- disagree: anything else.

Prints a JSON summary (counts, each refusal's file and code, each disagreement); exits
non-zero when anything disagrees.
"""
import io
import json
import os
import struct
import sys
import uuid
import warnings

import pydicom
import requests
import urllib3
from pydicom.data import get_testdata_files
from pydicom.errors import InvalidDicomError

urllib3.disable_warnings()
warnings.simplefilter("ignore")

BASE, TOKEN, CA = sys.argv[1:4]
ROOT = BASE + "/dicomweb"
COMPARED = {
    "StudyInstanceUID": "0020000D",
    "SeriesInstanceUID": "0020000E",
    "SOPInstanceUID": "00080018",
    "SOPClassUID": "00080016",
    "StudyDate": "00080020",
    "Modality": "00080060",
}
UIDS = ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"]


def uid_ok(uid):
    """PS3.5 §9.1: dot-separated numbers without leading zeros, at most 64 characters."""
    return (
        0 < len(uid) <= 64
        and all(c.isdigit() and (c == "0" or not c.startswith("0")) for c in uid.split("."))
    )


def part10(path):
    """pydicom's strict reading (no `force`): None when pydicom itself says the file is
    not a PS3.10 file; and the warnings it gave while reading."""
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, Exception):
            ds = None
    return ds, [str(w.message) for w in said]


def value_beyond_its_end(path):
    """Whether an element or item declares a length beyond the end of the file or of
    its enclosing item or sequence, with pydicom's own element reader walking the data
    set, its sequences and items (defined lengths only: nothing else can overrun)."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    ts = ds.file_meta.TransferSyntaxUID
    with open(path, "rb") as f:
        pydicom.filereader.read_preamble(f, False)
        pydicom.filereader._read_file_meta_info(f)
        data = f.read()
    if ts == "1.2.840.10008.1.2.1.99":
        return False
    return overrun(data, ts.is_implicit_VR, ts.is_little_endian)


def overrun(data, implicit, little):
    fmt = "<" if little else ">"
    fp = io.BytesIO(data)
    for e in pydicom.filereader.data_element_generator(fp, implicit, little, defer_size=None):
        if e.length == 0xFFFFFFFF:
            continue
        if e.value_tell + e.length > len(data):
            return True
        if e.VR == "SQ" or (implicit and e.tag in pydicom.datadict.DicomDictionary
                             and pydicom.datadict.dictionary_VR(e.tag) == "SQ"):
            value, at = e.value, 0
            while at + 8 <= len(value):
                _, _, n = struct.unpack(fmt + "HHL", value[at:at + 8])
                if n != 0xFFFFFFFF and (at + 8 + n > len(value)
                                        or overrun(value[at + 8:at + 8 + n], implicit,
                                                   little)):
                    return True
                at += 8 + (0 if n == 0xFFFFFFFF else n)
    return False


def value(ds, keyword):
    v = ds.get(keyword, "")
    return "" if v is None else str(v).strip()


def meta_value(ds, keyword):
    meta = getattr(ds, "file_meta", None)
    return "" if meta is None else value(meta, keyword)


# Why the gateway may refuse a file, each a check on pydicom's reading of it. STOW-RS
# takes PS3.10 files (PS3.18 §10.5); the index needs the four UIDs to place an instance.
REASONS = {
    # Not a PS3.10 file for pydicom either (no preamble or file meta group), or a file
    # meta group without the transfer syntax that says how to read the data set.
    # Not a PS3.10 file (no preamble and `DICM`): pydicom reads it only when forced.
    "type.unknown": lambda ds, raw, path, said: ds is None or raw[128:132] != b"DICM",
    # A length beyond the end of the file or of its enclosing item: the file is cut
    # short or damaged. pydicom reads what is there; the gateway does not store a
    # damaged file (nor let a parser size buffers by such a length).
    "dicom.bad_length": lambda ds, raw, path, said: ds is not None
    and value_beyond_its_end(path),
    # Implicit VR under an explicit transfer syntax: pydicom guesses (and says so).
    "dicom.syntax_mismatch": lambda ds, raw, path, said: any(
        "found implicit VR" in w for w in said),
    # A DICOMDIR: a media directory, not an instance (STOW-RS stores instances).
    "dicomweb.directory": lambda ds, raw, path, said: ds is not None
    and "1.2.840.10008.1.3.10" in (value(ds, "SOPClassUID"),
                                   meta_value(ds, "MediaStorageSOPClassUID")),
    # A file meta group without its group length (0002,0000), Type 1 in PS3.10 §7.1:
    # dicom-rs needs it to tell where the data set begins.
    "dicom.invalid": lambda ds, raw, path, said: ds is None
    or raw[128:132] != b"DICM"
    or "FileMetaInformationGroupLength" not in ds.file_meta,
    "dicomweb.not_dicom": lambda ds, raw, path, said: ds is None or raw[128:132] != b"DICM",
    # An identifier the index needs is absent (pydicom reads none either).
    "dicom.missing_uid": lambda ds, raw, path, said: ds is not None
    and (any(not value(ds, k) for k in UIDS) or not meta_value(ds, "TransferSyntaxUID")),
    # An identifier that is not a UID: it would be a key nobody can query reliably.
    "dicom.uid_syntax": lambda ds, raw, path, said: ds is not None
    and any(value(ds, k) and not uid_ok(value(ds, k)) for k in UIDS),
    # The file meta group names another instance or class than the data set: which one
    # the file is cannot be told, so it is not indexed under either.
    "dicom.meta_mismatch": lambda ds, raw, path, said: ds is not None
    and (
        (value(ds, "SOPInstanceUID")
         and meta_value(ds, "MediaStorageSOPInstanceUID") != value(ds, "SOPInstanceUID"))
        or (value(ds, "SOPClassUID")
            and meta_value(ds, "MediaStorageSOPClassUID") != value(ds, "SOPClassUID"))
    ),
}


def session():
    s = requests.Session()
    s.trust_env = False
    s.verify = CA
    s.headers["Authorization"] = f"Bearer {TOKEN}"
    return s


def stow(http, raw):
    boundary = "corpus-" + uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + raw
        + f"\r\n--{boundary}--\r\n".encode()
    )
    ctype = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return http.post(ROOT + "/studies", data=body, headers={"Content-Type": ctype}, timeout=120)


def refusal_code(doc):
    """The machine code of the one failed part: ErrorComment (0000,0902)."""
    items = doc.get("00081198", {}).get("Value", [])
    if len(items) != 1:
        return None
    return (items[0].get("00000902", {}).get("Value") or [None])[0]


def indexed(http, sop):
    fields = ",".join(k for k in COMPARED if k != "SOPInstanceUID")
    r = http.get(
        ROOT + "/instances",
        params={"SOPInstanceUID": sop, "includefield": fields},
        headers={"Accept": "application/dicom+json"},
        timeout=60,
    )
    if r.status_code == 204:
        return []
    r.raise_for_status()
    return r.json()


def first(item, tag):
    vals = item.get(tag, {}).get("Value") or [""]
    return str(vals[0]).strip()


def main():
    http = session()
    files = sorted({f for f in get_testdata_files("**/*") if os.path.isfile(f)})
    agree, refused, not_dicom, disagree = [], [], [], []
    for path in files:
        name = path.split("/test_files/")[-1].split("/data/")[-1]
        with open(path, "rb") as f:
            raw = f.read()
        ds, said = part10(path)
        print(f"{name} ({len(raw)} bytes)", file=sys.stderr, flush=True)
        try:
            r = stow(http, raw)
        except requests.RequestException as e:
            disagree.append({"file": name, "why": f"STOW failed: {e}"})
            continue
        if r.status_code == 200:
            if ds is None:
                disagree.append({"file": name, "why": "indexed, pydicom reads no PS3.10 file"})
                continue
            got = indexed(http, value(ds, "SOPInstanceUID"))
            want = {k: value(ds, k) for k in COMPARED}
            if len(got) != 1:
                disagree.append({"file": name, "why": f"QIDO found {len(got)} instances"})
                continue
            have = {k: first(got[0], tag) for k, tag in COMPARED.items()}
            if have != want:
                diff = {k: [have[k], want[k]] for k in COMPARED if have[k] != want[k]}
                disagree.append({"file": name, "why": "values differ [gateway, pydicom]",
                                 "diff": diff})
            else:
                agree.append(name)
        elif r.status_code == 409:
            code = refusal_code(r.json())
            reason = REASONS.get(code)
            entry = {"file": name, "code": code}
            if reason is None or not reason(ds, raw, path, said):
                entry["why"] = "refused without a reason pydicom confirms"
                disagree.append(entry)
            elif ds is None:
                not_dicom.append(entry)
            else:
                refused.append(entry)
        else:
            disagree.append({"file": name, "why": f"STOW answered {r.status_code}",
                             "body": r.text[:300]})
    summary = {
        "files": len(files),
        "agree": len(agree),
        "refused_on_purpose": len(refused),
        "not_part10": len(not_dicom),
        "disagree": len(disagree),
        "refusals": refused + not_dicom,
        "disagreements": disagree,
    }
    print(json.dumps(summary, indent=1))
    sys.exit(1 if disagree else 0)


if __name__ == "__main__":
    main()
