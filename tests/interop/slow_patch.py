#!/usr/bin/env python3
"""A tus PATCH that stalls: sends the headers and the first FIRST bytes of FILE, then
nothing, and prints the gateway's answer when it comes (a slow-drip client).

usage: slow_patch.py HOST PORT PATH TOKEN FILE FIRST [CLAIMED_EXTRA]

With CLAIMED_EXTRA, Content-Length claims that many bytes more than the file has, so
a client that sends every byte of the file still stalls after its last one.
"""
import socket
import ssl
import sys

host, port, path, token, file, first = sys.argv[1:7]
extra = int(sys.argv[7]) if len(sys.argv) > 7 else 0
data = open(file, "rb").read()
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection((host, int(port))), server_hostname="localhost")
head = (
    f"PATCH {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
    "Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
    f"Content-Type: application/offset+octet-stream\r\nContent-Length: {len(data) + extra}\r\n\r\n"
)
s.sendall(head.encode() + data[: int(first)])
print("stalled", flush=True)
answer = b""
while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
    piece = s.recv(65536)
    if not piece:
        break
    answer += piece
print(answer.decode(errors="replace"), flush=True)
