#!/usr/bin/env python3
"""Seal and open files with pyrage (rage's Rust implementation, from PyPI), so the
gateway's age code is checked against software nobody here wrote.

usage: pyrage_tool.py encrypt RECIPIENT IN OUT
       pyrage_tool.py decrypt IDENTITY_FILE IN OUT
       pyrage_tool.py passphrase PASSWORD IN OUT
"""
import sys

import pyrage


def identity_from_file(path):
    with open(path) as f:
        lines = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    return pyrage.x25519.Identity.from_str(lines[0])


def main(argv):
    cmd, key, src, dst = argv[1:5]
    if cmd == "encrypt":
        pyrage.encrypt_file(src, dst, [pyrage.x25519.Recipient.from_str(key)])
    elif cmd == "decrypt":
        pyrage.decrypt_file(src, dst, [identity_from_file(key)])
    elif cmd == "passphrase":
        with open(src, "rb") as f:
            data = f.read()
        with open(dst, "wb") as f:
            f.write(pyrage.passphrase.encrypt(data, key))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
