#!/usr/bin/env python3
"""A download client that sends its request and then reads nothing (a stalled reader).

usage: stalled_reader.py HOST PORT PATH TOKEN SECONDS

It only goes away after SECONDS; the test looks at what the gateway did meanwhile.
"""
import socket
import ssl
import sys
import time

host, port, path, token, secs = sys.argv[1:6]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection((host, int(port))), server_hostname="localhost")
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
time.sleep(float(secs))
# Whatever the gateway does meanwhile, this reader never reads: it goes away.
s.close()
