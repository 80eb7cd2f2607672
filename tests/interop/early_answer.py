#!/usr/bin/env python3
"""A client whose request body is still on its way when the gateway answers.

usage: early_answer.py HOST PORT PATH MODE

MODE late: sends a PATCH's headers with a wrong token, waits, then its 64 KiB body,
then the same request again on the same connection; prints both status lines. Both
must be answers (401): the first must not cost the connection (a server that closes
with the body unread makes the kernel reset it, which loses the answer).

MODE never: sends the headers of a PATCH claiming 100 bytes and never the body; prints
the answer with its headers (the gateway gives up waiting and says it closes).
"""
import socket
import ssl
import sys
import time

host, port, path, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection((host, port)), server_hostname="localhost")
s.settimeout(20)


def head(length):
    return (
        f"PATCH {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer not-a-token\r\n"
        "Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
        f"Content-Type: application/offset+octet-stream\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def answer():
    """One response (headers and its Content-Length body), or what came before EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = s.recv(65536)
        if not piece:
            return data
        data += piece
    top, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in top.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        piece = s.recv(65536)
        if not piece:
            break
        rest += piece
    return top


body = b"x" * 65536
try:
    if mode == "late":
        for _ in range(2):
            s.sendall(head(len(body)))
            time.sleep(0.5)
            s.sendall(body)
            time.sleep(0.2)
            print(answer().split(b"\r\n")[0].decode(), flush=True)
    else:
        s.sendall(head(100))
        print(answer().decode(errors="replace").lower(), flush=True)
except OSError as e:
    print(f"error: {type(e).__name__}: {e}", flush=True)
