"""DICOMweb against the gateway with dicomweb-client (PyPI), pydicom as the reference.

Usage: dicomweb_flow.py BASE_URL HOSPITAL_TOKEN OTHER_HOSPITAL_TOKEN REVIEWER_TOKEN CA_CERT

Stores pydicom's bundled real-world instances with STOW-RS, finds them with QIDO-RS
(every filter, paging with get_remaining), retrieves instances, metadata and frames with
WADO-RS, and checks the failure cases. Every comparison is against pydicom's reading of
the same files. Prints a JSON summary; exits non-zero on the first disagreement.
"""
import io
import json
import sys
import warnings
from email.parser import BytesParser
from email.policy import HTTP

import pydicom
import requests
import urllib3
from dicomweb_client.api import DICOMwebClient
from pydicom.data import get_testdata_file

urllib3.disable_warnings()
warnings.simplefilter("ignore")

BASE, TOKEN, OTHER, REVIEWER, CA = sys.argv[1:6]
ROOT = BASE + "/dicomweb"
FILES = [
    "CT_small.dcm",
    "MR_small.dcm",
    "rtdose.dcm",
    "waveform_ecg.dcm",
    "JPEG2000.dcm",
    "SC_rgb_small_odd.dcm",
    "ExplVR_BigEnd.dcm",
]
# pydicom's rtdose.dcm and rtplan.dcm carry a file meta group that names another SOP
# instance than their data set; the gateway refuses them as they are (checked below).
# The multi-frame RT dose is stored with its meta group made consistent instead.
INCONSISTENT = ["rtdose.dcm", "rtplan.dcm"]


def session(token):
    s = requests.Session()
    # The gateway's own certificate is the trust anchor; no environment overrides.
    s.trust_env = False
    s.verify = CA
    if token:
        s.headers["Authorization"] = f"Bearer {token}"
    return s


def client(token):
    return DICOMwebClient(url=ROOT, session=session(token))


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def encoded(ds):
    b = io.BytesIO()
    pydicom.dcmwrite(b, ds)
    return b.getvalue()


def parts(resp):
    """The bodies of a multipart/related answer, parsed by the standard library."""
    head = f"Content-Type: {resp.headers['Content-Type']}\r\n\r\n".encode()
    msg = BytesParser(policy=HTTP).parsebytes(head + resp.content)
    check(msg.is_multipart(), f"multipart answer: {resp.headers['Content-Type']}")
    return [p.get_payload(decode=True) for p in msg.iter_parts()]


def multipart_body(payloads, boundary="py-boundary-7"):
    out = b""
    for ctype, data in payloads:
        out += f"--{boundary}\r\nContent-Type: {ctype}\r\n\r\n".encode() + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), boundary


def values(ds_json, tag):
    return ds_json.get(tag, {}).get("Value", [])


summary = {}
datasets = {n: pydicom.dcmread(get_testdata_file(n)) for n in FILES}
as_shipped = [encoded(pydicom.dcmread(get_testdata_file(n))) for n in INCONSISTENT]
datasets["rtdose.dcm"].file_meta.MediaStorageSOPInstanceUID = datasets["rtdose.dcm"].SOPInstanceUID
# None of the bundled instances carries an accession number; give one to the ECG.
datasets["waveform_ecg.dcm"].AccessionNumber = "ACC-2026-0042"
sent = {ds.SOPInstanceUID: encoded(ds) for ds in datasets.values()}
hospital = client(TOKEN)

# STOW-RS: all in one request.
result = hospital.store_instances(list(datasets.values()))
stored = [item.ReferencedSOPInstanceUID for item in result.get("ReferencedSOPSequence", [])]
failed = result.get("FailedSOPSequence", [])
check(sorted(stored) == sorted(sent), f"all stored: {stored} failed: {failed}")
check(not failed, f"nothing failed: {failed}")
summary["stored"] = len(stored)

# QIDO-RS: studies, paging with get_remaining in pages of 2.
studies = {ds.StudyInstanceUID for ds in datasets.values()}
found = hospital.search_for_studies(get_remaining=True, search_filters={"limit": 2})
check({values(s, "0020000D")[0] for s in found} == studies, "every study, paged")
check(len(found) == len(studies), "no study twice across pages")
empty = hospital.search_for_studies(search_filters={"offset": 1000})
check(empty == [], "an empty page is []")
ct = datasets["CT_small.dcm"]
mr = datasets["MR_small.dcm"]


def study_uids(**filters):
    return sorted(values(s, "0020000D")[0] for s in hospital.search_for_studies(search_filters=filters))


check(study_uids(PatientID=ct.PatientID) == [ct.StudyInstanceUID], "PatientID")
name = str(ct.PatientName)
check(ct.StudyInstanceUID in study_uids(PatientName=name[:3] + "*"), "PatientName wildcard *")
check(ct.StudyInstanceUID in study_uids(PatientName="?" + name[1:]), "PatientName wildcard ?")
ecg = datasets["waveform_ecg.dcm"]
check(study_uids(AccessionNumber="ACC-2026-0042") == [ecg.StudyInstanceUID], "AccessionNumber")
check(study_uids(AccessionNumber="ACC-2026-*") == [ecg.StudyInstanceUID], "AccessionNumber wildcard")
check(study_uids(StudyDescription=ct.StudyDescription) == [ct.StudyInstanceUID], "StudyDescription")
check(ct.StudyInstanceUID in study_uids(StudyDescription=ct.StudyDescription[0] + "*"), "StudyDescription wildcard")
t = ct.StudyTime
check(ct.StudyInstanceUID in study_uids(StudyTime=f"{t}-{t}"), "StudyTime range")
check(ct.StudyInstanceUID in study_uids(StudyTime=f"-{t}"), "StudyTime open start")
check(ct.StudyInstanceUID not in study_uids(StudyTime="000000-000001"), "StudyTime excludes")
check(study_uids(ModalitiesInStudy="MR") == sorted({d.StudyInstanceUID for d in datasets.values() if d.get("Modality") == "MR"}), "ModalitiesInStudy")
d = ct.StudyDate
check(ct.StudyInstanceUID in study_uids(StudyDate=f"{d}-{d}"), "StudyDate range")
check(ct.StudyInstanceUID in study_uids(StudyDate=f"-{d}"), "StudyDate open start")
check(ct.StudyInstanceUID in study_uids(StudyDate=f"{d}-"), "StudyDate open end")
check(ct.StudyInstanceUID not in study_uids(StudyDate="19000101-19000102"), "StudyDate excludes")
both = sorted([ct.StudyInstanceUID, mr.StudyInstanceUID])
check(study_uids(StudyInstanceUID=",".join(both)) == both, "UID list, comma")
check(study_uids(StudyInstanceUID="\\".join(both)) == both, "UID list, backslash")
check(study_uids(fuzzymatching="true", PatientID=ct.PatientID) == [ct.StudyInstanceUID], "fuzzymatching accepted")
one = hospital.search_for_studies(search_filters={"StudyInstanceUID": ct.StudyInstanceUID, "includefield": "all"})[0]
check(values(one, "00201208") == [1] and values(one, "00201206") == [1], "counts in study")
check(values(one, "00080061") == ["CT"], "ModalitiesInStudy returned")
check(values(one, "00100020") == [ct.PatientID], "PatientID returned")
one = hospital.search_for_studies(search_filters={"StudyInstanceUID": ct.StudyInstanceUID, "includefield": "00100010,StudyDate"})[0]
check(values(one, "00100010")[0]["Alphabetic"] == name, "PatientName returned")

series = hospital.search_for_series(ct.StudyInstanceUID)
check([values(s, "0020000E")[0] for s in series] == [ct.SeriesInstanceUID], "series of a study")
series = hospital.search_for_series(search_filters={"Modality": "MR"})
check({values(s, "0020000E")[0] for s in series} == {mr.SeriesInstanceUID}, "Modality at series level")
series = hospital.search_for_series(search_filters={"SeriesInstanceUID": ct.SeriesInstanceUID})
check(len(series) == 1, "SeriesInstanceUID")
insts = hospital.search_for_instances(ct.StudyInstanceUID, ct.SeriesInstanceUID)
check([values(i, "00080018")[0] for i in insts] == [ct.SOPInstanceUID], "instances of a series")
insts = hospital.search_for_instances(get_remaining=True, search_filters={"limit": 3})
check(sorted(values(i, "00080018")[0] for i in insts) == sorted(sent), "all instances, paged")
# Attributes without a column: matched and returned from what the index keeps per
# instance, as dicomweb-client asks for them (`fields`, filters by keyword).
insts = hospital.search_for_instances(search_filters={"Rows": ct.Rows, "Columns": ct.Columns},
                                      fields=["SliceThickness", "PixelSpacing"])
want = sorted(ds.SOPInstanceUID for ds in datasets.values()
              if ds.get("Rows") == ct.Rows and ds.get("Columns") == ct.Columns)
check(sorted(values(i, "00080018")[0] for i in insts) == want, "Rows and Columns matched")
mine = [i for i in insts if values(i, "00080018")[0] == ct.SOPInstanceUID][0]
check(values(mine, "00180050") == [float(ct.SliceThickness)], f"SliceThickness: {mine}")
check(values(mine, "00280030") == [float(v) for v in ct.PixelSpacing], f"PixelSpacing: {mine}")
summary["studies"] = len(studies)

# WADO-RS: instances (bytes as stored), series, study, metadata, frames.
for n, ds in datasets.items():
    got = hospital.retrieve_instance(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    check(got.SOPInstanceUID == ds.SOPInstanceUID, f"retrieve {n}")
    url = f"{ROOT}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    raw = session(TOKEN).get(url, headers={"Accept": 'multipart/related; type="application/dicom"'})
    check(raw.status_code == 200, f"raw retrieve {n}: {raw.status_code}")
    check(parts(raw) == [sent[ds.SOPInstanceUID]], f"bytes of {n} as stored")
    meta = hospital.retrieve_instance_metadata(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    back = pydicom.Dataset.from_json(meta, bulk_data_uri_handler=lambda *a: b"")
    for kw in ["SOPInstanceUID", "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID", "PatientID", "Modality", "Rows", "Columns", "StudyDate"]:
        if kw in ds:
            check(back.get(kw) == ds.get(kw), f"metadata {kw} of {n}: {back.get(kw)} vs {ds.get(kw)}")
    if "PixelData" in ds:
        check("BulkDataURI" in meta.get("7FE00010", {}), f"pixel data as BulkDataURI in {n}")
study = hospital.retrieve_study(ct.StudyInstanceUID)
check([x.SOPInstanceUID for x in study] == [ct.SOPInstanceUID], "retrieve study")
ser = hospital.retrieve_series(mr.StudyInstanceUID, mr.SeriesInstanceUID)
check([x.SOPInstanceUID for x in ser] == [mr.SOPInstanceUID], "retrieve series")
metas = hospital.retrieve_study_metadata(ct.StudyInstanceUID)
check(len(metas) == 1, "study metadata")

frames = hospital.retrieve_instance_frames(ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID, frame_numbers=[1])
check(frames == [ct.PixelData], "CT frame 1 = its pixel data")
dose = datasets["rtdose.dcm"]
size = dose.Rows * dose.Columns * dose.SamplesPerPixel * dose.BitsAllocated // 8
frames = hospital.retrieve_instance_frames(dose.StudyInstanceUID, dose.SeriesInstanceUID, dose.SOPInstanceUID, frame_numbers=[2, 15])
check(frames == [dose.PixelData[size:2 * size], dose.PixelData[14 * size:15 * size]], "RT dose frames 2 and 15")
jp = datasets["JPEG2000.dcm"]
r = session(TOKEN).get(
    f"{ROOT}/studies/{jp.StudyInstanceUID}/series/{jp.SeriesInstanceUID}/instances/{jp.SOPInstanceUID}/frames/1",
    headers={"Accept": 'multipart/related; type="application/octet-stream"'},
)
check(r.status_code == 406 and r.json()["code"] == "dicomweb.frames_unsupported", f"compressed frames: {r.status_code}")
summary["frames_checked"] = 3

# Failure cases, with raw requests.
post = session(TOKEN)
body, b = multipart_body([("application/dicom", x) for x in as_shipped])
r = post.post(f"{ROOT}/studies", data=body, headers={"Content-Type": f'multipart/related; type="application/dicom"; boundary={b}'})
check(r.status_code == 409, f"inconsistent meta groups: {r.status_code} {r.text}")
check([i["00081197"]["Value"] for i in values(r.json(), "00081198")] == [[0xC000], [0xC000]], f"reasons: {r.text}")
body, b = multipart_body([("application/dicom", b"%PDF-1.7 not dicom at all")])
r = post.post(f"{ROOT}/studies", data=body, headers={"Content-Type": f'multipart/related; type="application/dicom"; boundary={b}'})
check(r.status_code == 409, f"non-DICOM part: {r.status_code} {r.text}")
check(values(r.json(), "00081198")[0]["00081197"]["Value"] == [0xC000], f"non-DICOM reason: {r.text}")

again = encoded(ct)
body, b = multipart_body([("application/dicom", again)])
r = post.post(f"{ROOT}/studies/1.2.3.4.5", data=body, headers={"Content-Type": f"multipart/related; type=application/dicom; boundary={b}"})
check(r.status_code == 409, f"wrong study: {r.status_code} {r.text}")
item = values(r.json(), "00081198")[0]
check(item["00081197"]["Value"] == [0xA900], f"wrong study reason: {r.text}")
check(item["00081155"]["Value"] == [ct.SOPInstanceUID], f"wrong study names the instance: {r.text}")

body, b = multipart_body([("application/dicom", again), ("application/dicom", b"junk")])
r = post.post(f"{ROOT}/studies/{ct.StudyInstanceUID}", data=body, headers={"Content-Type": f"multipart/related; type=application/dicom; boundary={b}"})
check(r.status_code == 202, f"one stored, one failed: {r.status_code} {r.text}")
check(len(values(r.json(), "00081199")) == 1 and len(values(r.json(), "00081198")) == 1, "202 lists both")

r = post.post(f"{ROOT}/studies", data=b"{}", headers={"Content-Type": "application/json"})
check(r.status_code == 415, f"unsupported media type: {r.status_code}")
r = post.post(f"{ROOT}/studies", data=body, headers={"Content-Type": f"multipart/related; type=application/dicom+xml; boundary={b}"})
check(r.status_code == 415, f"XML parts: {r.status_code}")
r = post.post(f"{ROOT}/studies", data=b"--x\r\n\r\nunfinished", headers={"Content-Type": "multipart/related; type=application/dicom; boundary=x"})
check(r.status_code == 400, f"cut body: {r.status_code}")

r = session(None).get(f"{ROOT}/studies")
check(r.status_code == 401, f"unauthenticated: {r.status_code}")
other = client(OTHER)
check(other.search_for_studies() == [], "another hospital sees no studies")
url = f"{ROOT}/studies/{ct.StudyInstanceUID}/series/{ct.SeriesInstanceUID}/instances/{ct.SOPInstanceUID}"
r = session(OTHER).get(url, headers={"Accept": 'multipart/related; type="application/dicom"'})
check(r.status_code == 404, f"another hospital's instance: {r.status_code}")
reviewer = client(REVIEWER)
check({values(s, "0020000D")[0] for s in reviewer.search_for_studies()} == studies, "a reviewer granted the hospital sees its studies")

# Multi-valued Specific Character Set (ISO 2022 code extensions, an empty first value for
# the default repertoire): metadata gives every value back, and text as pydicom reads it.
from pydicom.data import get_charset_files
charsets = {}
for name in ["chrH31.dcm", "chrH32.dcm", "chrKoreanMulti.dcm"]:
    found = get_charset_files(name)
    check(found, f"pydicom ships {name}")
    charsets[name] = pydicom.dcmread(found[0])
result = hospital.store_instances(list(charsets.values()))
check(len(result.get("ReferencedSOPSequence", [])) == len(charsets) and "FailedSOPSequence" not in result, f"charset files stored: {result}")
for name, ds in charsets.items():
    meta = hospital.retrieve_instance_metadata(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    got = meta.get("00080005", {}).get("Value", [])
    want = list(ds.SpecificCharacterSet)
    check([v or "" for v in got] == want, f"SpecificCharacterSet of {name}: {got} vs {want}")
    # The name comes back decoded to Unicode, its component groups apart (PS3.18 F.2.2).
    back = pydicom.Dataset.from_json(meta, bulk_data_uri_handler=lambda *a: b"")
    check(str(back.PatientName) == str(ds.PatientName), f"PatientName of {name}: {back.PatientName!r} vs {ds.PatientName!r}")
summary["charset_files"] = len(charsets)

print(json.dumps(summary))
