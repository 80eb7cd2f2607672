"""DICOMweb load for bench/run-dicomweb.sh (same run as the gateway it measures).

  dicomweb_load.py stow ROOT TOKEN CA COUNT CLIENTS BATCH
      COUNT instances made from pydicom's CT_small.dcm with fresh UIDs (made before the
      clock starts), sent by CLIENTS parallel STOW-RS clients in requests of BATCH
      instances to ROOT/studies (the gateway's https://…/dicomweb, or Orthanc's
      http://…/dicom-web with TOKEN and CA given as "-"); every answer comes only once
      its instances are indexed. Prints JSON.
  dicomweb_load.py qido URL TOKEN CA REQUESTS
      REQUESTS QIDO-RS searches of a mix viewers send, one at a time on a kept-alive
      connection. Prints latency percentiles as JSON.
"""
import io
import json
import sys
import threading
import time

import pydicom
import requests
import urllib3
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

urllib3.disable_warnings()


def session(token, ca):
    s = requests.Session()
    s.trust_env = False
    if ca != "-":
        s.verify = ca
    if token != "-":
        s.headers["Authorization"] = f"Bearer {token}"
    return s


def body(encoded, boundary="bench-boundary"):
    out = bytearray()
    for e in encoded:
        out += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + e + b"\r\n"
    return bytes(out + f"--{boundary}--\r\n".encode()), boundary


def stow(url, token, ca, count, clients, batch):
    base = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    study = generate_uid()
    encoded = []
    for i in range(count):
        ds = base.copy()
        ds.StudyInstanceUID = study if i % 100 else generate_uid()
        study = ds.StudyInstanceUID
        ds.SeriesInstanceUID = generate_uid()
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        b = io.BytesIO()
        pydicom.dcmwrite(b, ds)
        encoded.append(b.getvalue())
    requests_ = [body(encoded[i:i + batch]) for i in range(0, count, batch)]
    stored, failed, lock = [0], [0], threading.Lock()

    def worker(k):
        s = session(token, ca)
        for data, boundary in requests_[k::clients]:
            r = s.post(f"{url}/studies", data=data, headers={
                "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
                "Accept": "application/dicom+json",
            })
            doc = r.json() if r.content else {}
            if r.status_code >= 400 and not doc:
                with lock:
                    failed[0] += data.count(b"Content-Type: application/dicom\r\n")
                continue
            with lock:
                stored[0] += len(doc.get("00081199", {}).get("Value", []))
                failed[0] += len(doc.get("00081198", {}).get("Value", []))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.monotonic() - t0
    print(json.dumps({"instances": count, "stored": stored[0], "failed": failed[0],
                      "seconds": round(secs, 3), "per_second": round(stored[0] / secs, 1)}))


def qido(url, token, ca, n):
    s = session(token, ca)
    root = f"{url}/dicomweb"
    mix = [
        ("/studies", {"PatientID": "P00042"}),
        ("/studies", {"PatientName": "PATIENT^001*", "limit": "25"}),
        ("/studies", {"StudyDate": "20260301-20260331", "limit": "50"}),
        ("/studies", {"ModalitiesInStudy": "MR", "limit": "25", "offset": "100"}),
        ("/studies", {"AccessionNumber": "A0000420"}),
        ("/studies/2.25.1000000420/series", {}),
        ("/studies/2.25.1000000420/series/2.25.2000000840/instances", {}),
        ("/studies", {"limit": "25"}),
    ]
    lat = []
    for i in range(n):
        path, params = mix[i % len(mix)]
        t0 = time.perf_counter()
        r = s.get(root + path, params=params, headers={"Accept": "application/dicom+json"})
        r.raise_for_status()
        r.json()
        lat.append((time.perf_counter() - t0) * 1000)
    lat.sort()
    pct = lambda p: round(lat[min(len(lat) - 1, int(p / 100 * len(lat)))], 2)
    print(json.dumps({"requests": n, "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99), "max_ms": round(lat[-1], 2)}))


if __name__ == "__main__":
    if sys.argv[1] == "stow":
        stow(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]))
    else:
        qido(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
