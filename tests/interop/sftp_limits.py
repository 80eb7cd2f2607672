#!/usr/bin/env python3
"""Probes the SFTP listener's limits with paramiko and prints what it found as JSON.

usage: sftp_limits.py HOST PORT USER KEY

- handles: how many directory handles one session could open (the gateway advertises
  1,024 in limits@openssh.com) and the refusal after that;
- channels: how many session channels one connection could open;
- login: seconds until a connection that never says anything is closed, while a
  logged-in session outlives that deadline.
"""
import json
import socket
import sys
import time

import paramiko
from paramiko import sftp as proto

host, port, user, key = sys.argv[1:5]
out = {}

t = paramiko.Transport((host, int(port)))
t.connect(username=user, pkey=paramiko.Ed25519Key.from_private_key_file(key))
s = paramiko.SFTPClient.from_transport(t)
opened = 0
refusal = ""
for _ in range(1100):
    try:
        s._request(proto.CMD_OPENDIR, "/inbox")
        opened += 1
    except IOError as e:
        refusal = str(e)
        break
out["handles"] = opened
out["handle_refusal"] = refusal
channels = 1  # the SFTP session above
for _ in range(20):
    try:
        t.open_session(timeout=5)
        channels += 1
    except Exception as e:  # paramiko raises ChannelException
        out["channel_refusal"] = type(e).__name__
        break
out["channels"] = channels
# A logged-in session outlives the login deadline (the test sets it to 3 s).
time.sleep(4)
s.stat("/inbox")
out["alive_after_deadline"] = True
t.close()

silent = socket.create_connection((host, int(port)))
silent.settimeout(30)
start = time.time()
try:
    while silent.recv(4096):
        pass
except OSError:
    pass
out["login_closed_after"] = round(time.time() - start, 2)
print(json.dumps(out))
