#!/usr/bin/env python3
"""Uploads a file and reads back its check result with paramiko's SFTP client.

usage: paramiko_sftp.py HOST PORT USER KEY LOCAL REMOTE_NAME

Puts LOCAL as /inbox/REMOTE_NAME.filepart, renames it to /inbox/REMOTE_NAME (the
posix-rename extension, as WinSCP-style clients do), then polls
/results/REMOTE_NAME.json (up to 30 s) and prints it. Exits 1 with the error on any
failure.
"""
import sys
import json
import time

import paramiko

host, port, user, key, local, name = sys.argv[1:7]
t = paramiko.Transport((host, int(port)))
t.connect(username=user, pkey=paramiko.Ed25519Key.from_private_key_file(key))
sftp = paramiko.SFTPClient.from_transport(t)
sftp.put(local, f"/inbox/{name}.filepart", confirm=True)
sftp.posix_rename(f"/inbox/{name}.filepart", f"/inbox/{name}")
deadline = time.time() + 30
while True:
    try:
        with sftp.open(f"/results/{name}.json") as f:
            text = f.read().decode()
        # The result shows "checking" until the checks are over.
        if json.loads(text)["status"] != "checking":
            print(text)
            break
    except IOError:
        pass
    if time.time() > deadline:
        raise SystemExit(f"no final result for {name}")
    time.sleep(0.2)
sftp.close()
t.close()
