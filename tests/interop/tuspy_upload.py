#!/usr/bin/env python3
"""Uploads one file with tuspy (the tus project's Python client) and prints JSON lines.

usage: tuspy_upload.py ENDPOINT TOKEN FILE NAME STORE [--chunk BYTES] [--pace SECONDS]
                       [--checksum] [--meta KEY=VALUE ...]

STORE is tuspy's URL store (a JSON file): a second run with the same STORE resumes the
upload the first run began (after the first was killed, or the gateway restarted).
Prints {"url": ..., "resumed_at": offset} once the upload is created or found, then
{"done": offset} at the end. --pace sleeps between chunks so a test can interrupt it.
"""
import argparse
import json
import sys
import time

import urllib3
from tusclient import client
from tusclient.storage.filestorage import FileStorage

p = argparse.ArgumentParser()
for a in ["endpoint", "token", "file", "name", "store"]:
    p.add_argument(a)
p.add_argument("--chunk", type=int, default=1 << 20)
p.add_argument("--pace", type=float, default=0.0)
p.add_argument("--checksum", action="store_true")
p.add_argument("--meta", action="append", default=[], help="more Upload-Metadata, KEY=VALUE")
args = p.parse_args()
urllib3.disable_warnings()  # the gateway under test has a self-signed certificate

c = client.TusClient(args.endpoint, headers={"Authorization": f"Bearer {args.token}"})
up = c.uploader(
    args.file,
    chunk_size=args.chunk,
    metadata={"filename": args.name, **dict(m.split("=", 1) for m in args.meta)},
    verify_tls_cert=False,
    store_url=True,
    url_storage=FileStorage(args.store),
    upload_checksum=args.checksum,
)
if not up.url:  # tuspy creates the upload lazily; create it now to report its URL
    up.set_url(up.create_url())
    up.offset = 0
print(json.dumps({"url": up.url, "resumed_at": up.offset}), flush=True)
while up.offset < up.get_file_size():
    up.upload_chunk()
    if args.pace:
        time.sleep(args.pace)
print(json.dumps({"done": up.offset}), flush=True)
sys.exit(0)
