#!/usr/bin/env python3
"""The bad-input corpus (docs/bad-input.md): one file per class of hostile or broken
input a hospital could send, made with real tools where they exist (pydicom, qpdf,
Python's zipfile, the `age` CLI) and by hand where no tool writes such a file on
purpose. Reuses the inspectors' interop data (make_inspect_data.py) and adds to it.

usage: make_bad_corpus.py OUT_DIR GATEWAY_RECIPIENT

Writes OUT_DIR/corpus.json: a list of {class, file, name, sealed}: `file` holds the
plaintext (to be sealed to the gateway by the test) unless `sealed` is true, in which
case it is already the bytes to upload (the age-layer classes). The expected codes live
in the test (tests/tests/bad_input.rs), not here.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile

import pydicom
from pydicom.data import get_testdata_file

OUT, RECIPIENT = sys.argv[1], sys.argv[2]
os.makedirs(OUT, exist_ok=True)
here = os.path.dirname(os.path.abspath(__file__))
inspect_dir = os.path.join(OUT, "inspect")
subprocess.run([sys.executable, os.path.join(here, "make_inspect_data.py"), inspect_dir],
               check=True, capture_output=True)
corpus = []


def add(cls, file, name=None, sealed=False):
    corpus.append({"class": cls, "file": file, "name": name or os.path.basename(file), "sealed": sealed})


def write(name, data):
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


# --- reused: made by pydicom, qpdf and zipfile in make_inspect_data.py ---------------
for cls, f in [
    ("exe renamed .pdf", "program.pdf"), ("pdf with javascript", "script.pdf"),
    ("pdf with rc4", "rc4.pdf"), ("dicom meta length beyond file", "broken.dcm"),
    ("dicom bad uid syntax", "bad_uid.dcm"), ("dicom missing uid", "missing_uid.dcm"),
    ("dicom meta mismatch", "meta_mismatch.dcm"), ("zip ratio bomb", "bomb.zip"),
    ("zip slip", "slip.zip"), ("zip symlink", "link.zip"), ("zip case collision", "case.zip"),
    ("zip encrypted entry", "encrypted.zip"), ("zip executable inside", "exe_inside.zip"),
    ("zip not a zip", "not_a.zip"), ("dicomdir missing file", "missing.zip"),
    ("dicomdir mismatching file", "mismatch.zip"), ("dicomdir orphan file", "orphan.zip"),
    ("dicomdir file not part10", "not_part10.zip"), ("dicomdir bad offset", "badoffset.zip"),
    ("dicomdir offset cycle", "cycle.zip"), ("dicomdir zero root", "zeroroot.zip"),
]:
    add(cls, os.path.join(inspect_dir, f))

# --- executables and unknown bytes ---------------------------------------------------
add("elf renamed .pdf", write("elf.pdf", b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 120))
add("shell script renamed .pdf", write("shell.pdf", b"#!/bin/sh\nrm -rf /\n"))
add("unknown binary", write("unknown.bin", bytes(range(256)) * 16))


# --- PDFs ----------------------------------------------------------------------------
def pdf(objs, trailer_extra=""):
    out = "%PDF-1.7\n"
    for i, o in enumerate(objs, 1):
        out += f"{i} 0 obj\n{o}\nendobj\n"
    out += f"trailer\n<< /Root 1 0 R /Size {len(objs) + 1}{trailer_extra} >>\n%%EOF\n"
    return out.encode()


page = ["<< /Type /Catalog /Pages 2 0 R{} >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>"]
add("pdf with launch action", write("launch.pdf", pdf(
    [page[0].format(" /OpenAction 4 0 R"), page[1], page[2], "<< /S /Launch /F (cmd.exe) >>"])))
add("pdf with embedded file", write("embedded.pdf", pdf(
    [page[0].format(" /Names << /EmbeddedFiles 4 0 R >>"), page[1], page[2],
     "<< /Names [(x.exe) 5 0 R] >>", "<< /Type /Filespec /F (x.exe) /EF << /F 6 0 R >> >>",
     "<< /Type /EmbeddedFile /Length 2 >>\nstream\nMZ\nendstream"])))
add("pdf broken xref", write("broken_xref.pdf", b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 9 0 R >>\n"
                                                b"xref\n0 99\nzzzz\ntrailer\n<< /Root 7 0 R >>\nstartxref\n999999\n%%EOF\n"))
add("pdf garbage body", write("garbage.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 8))
add("pdf without pages", write("nopages.pdf", pdf(["<< /Type /Catalog /Pages 2 0 R >>",
                                                   "<< /Type /Pages /Kids [] /Count 0 >>"])))
add("pdf deep nesting", write("deep.pdf", b"%PDF-1.7\n1 0 obj\n" + b"[" * 5000 + b"\nendobj\n%%EOF\n"))
many = [page[0].format(""), page[1], page[2]] + ["null"] * 60000
add("pdf huge object count", write("many_objects.pdf", pdf(many)))
add("pdf too large", write("too_large.pdf", pdf([page[0].format(""), page[1], page[2],
                                                  "<< /Length 3000000 >>\nstream\n" + "x" * 3000000 + "\nendstream"])))


# --- DICOM ---------------------------------------------------------------------------
def el(group, elem, vr, value):
    if len(value) % 2:
        value += b"\0" if vr in (b"UI", b"OB") else b" "
    head = struct.pack("<HH", group, elem) + vr
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT"):
        return head + b"\0\0" + struct.pack("<I", len(value)) + value
    return head + struct.pack("<H", len(value)) + value


def part10(sop, dataset, preamble=True):
    group = (el(2, 1, b"OB", b"\0\1") + el(2, 2, b"UI", b"1.2.840.10008.5.1.4.1.1.2")
             + el(2, 3, b"UI", sop.encode()) + el(2, 0x10, b"UI", b"1.2.840.10008.1.2.1"))
    head = (b"\0" * 128 + b"DICM") if preamble else b""
    return head + el(2, 0, b"UL", struct.pack("<I", len(group))) + group + dataset


def ident(sop):
    return (el(8, 0x16, b"UI", b"1.2.840.10008.5.1.4.1.1.2") + el(8, 0x18, b"UI", sop.encode())
            + el(8, 0x60, b"CS", b"CT") + el(0x10, 0x20, b"LO", b"P-1")
            + el(0x20, 0xD, b"UI", b"1.2.826.0.1.3680043.10.2.1")
            + el(0x20, 0xE, b"UI", b"1.2.826.0.1.3680043.10.2.2"))


sop = "1.2.826.0.1.3680043.10.2.{}"
add("dicom without preamble", write("no_preamble.dcm", part10(sop.format(3), ident(sop.format(3)), preamble=False)))
add("dicom huge length", write("huge_length.dcm", part10(sop.format(4), ident(sop.format(4))
                                                         + struct.pack("<HH", 9, 0x1010) + b"OB\0\0" + struct.pack("<I", 0x7FFFFFF0) + b"\0" * 64)))
deep = b""
for _ in range(20000):
    deep += struct.pack("<HH", 0x40, 0xA730) + b"SQ\0\0" + b"\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
deep += (b"\xfe\xff\x0d\xe0\0\0\0\0" + b"\xfe\xff\xdd\xe0\0\0\0\0") * 20000
add("dicom deep sequences", write("deep.dcm", part10(sop.format(5), ident(sop.format(5)) + deep)))
add("dicom header too large", write("big_header.dcm", part10(sop.format(6), ident(sop.format(6))
                                                             + el(9, 0x1010, b"OB", b"\0" * (1536 << 10)))))
whole = part10(sop.format(7), ident(sop.format(7)))
add("dicom truncated mid-element", write("truncated.dcm", whole[:-9]))
# A DICOMDIR whose record names a file outside its folder: the first ReferencedFileID
# overwritten in place with `..` components of the same length, so every record offset
# stays right.
raw = bytearray(open(get_testdata_file("DICOMDIR"), "rb").read())
at = raw.index(b"\x04\x00\x00\x15")  # (0004,1500) ReferencedFileID
vlen = struct.unpack("<H", raw[at + 6:at + 8])[0]
escape = b"\\".join([b".."] * ((vlen + 1) // 3)).ljust(vlen, b" ")[:vlen]
raw[at + 8:at + 8 + vlen] = escape
esc = os.path.join(OUT, "DICOMDIR.escape")
open(esc, "wb").write(bytes(raw))
with zipfile.ZipFile(os.path.join(OUT, "escape.zip"), "w") as z:
    z.write(esc, "case-1/DICOMDIR")
add("dicomdir escaping path", os.path.join(OUT, "escape.zip"))

# --- ZIP -----------------------------------------------------------------------------
with zipfile.ZipFile(os.path.join(OUT, "count_bomb.zip"), "w") as z:
    for i in range(150):
        z.writestr(f"f{i}.txt", b"x")
add("zip entry-count bomb", os.path.join(OUT, "count_bomb.zip"))
with zipfile.ZipFile(os.path.join(OUT, "inner.zip"), "w") as z:
    z.writestr("a.txt", b"inner")
with zipfile.ZipFile(os.path.join(OUT, "nested.zip"), "w") as z:
    z.write(os.path.join(OUT, "inner.zip"), "inner.zip")
add("zip nested zip", os.path.join(OUT, "nested.zip"))
import warnings
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    with zipfile.ZipFile(os.path.join(OUT, "dup.zip"), "w") as z:
        z.writestr("same.txt", b"one")
        z.writestr("same.txt", b"two")
add("zip duplicate names", os.path.join(OUT, "dup.zip"))
eocd = b"PK\x05\x06\0\0\0\0" + struct.pack("<HHII", 60000, 60000, 60000 * 46, 0) + b"\0\0"
add("zip huge central directory", write("huge_cd.zip", eocd))

# --- names and batches (rule 7, 8; the session's name rules) -------------------------
text = write("record.txt", b"record\n" + b"abcdefghij" * 100)
add("name non-ascii", text, name="na\u00efve.txt")
add("name too long", text, name="a" * 300 + ".txt")
add("name control character", text, name="a\tb.txt")
add("name path escape", text, name="../escape.txt")
add("name hidden dot file", text, name=".hidden.txt")
add("nhi-review case name invalid", text, name="nhi/not-a-case.txt")
shutil.copy(os.path.join(inspect_dir, "3501200000_1151101_001.zip"), os.path.join(OUT, "batch_other.zip"))
add("nhi-review batch of another hospital", os.path.join(OUT, "batch_other.zip"), name="nhi/1101020018_1151101_001.zip")
add("manifest not json", write("bad.manifest.json", b"{ this is not json"), name="b1.manifest.json")
add("manifest lists a missing file", write("missing.manifest.json", json.dumps({"files": [
    {"name": "b2/never-sent.txt", "size": 5, "sha256": "0" * 64}]}).encode()), name="b2.manifest.json")
add("file larger than max_file_bytes", write("too_big.txt", b"x" * (9 << 20)))
add("duplicate content", text, name="again.txt")


# --- the age layer (sealed here, with the age CLI) -----------------------------------
def age(args, data):
    return subprocess.run(["age", *args], input=data, capture_output=True, check=True).stdout


plain = b"record\n" + b"0123456789" * 20000
good = age(["-r", RECIPIENT], plain)
add("age truncated", write("truncated.age", good[: len(good) - 500]), sealed=True)
tampered = bytearray(good)
tampered[len(good) // 2] ^= 1
add("age tampered chunk", write("tampered.age", bytes(tampered)), sealed=True)
bad_mac = bytearray(good)
mac_at = good.index(b"\n--- ") + 6
bad_mac[mac_at] = ord("A") if bad_mac[mac_at] != ord("A") else ord("B")
add("age tampered header mac", write("bad_mac.age", bytes(bad_mac)), sealed=True)
other = subprocess.run(["age-keygen"], capture_output=True, check=True, text=True).stdout
other_recipient = next(l.split(": ")[1] for l in other.splitlines() if "public key" in l)
add("age wrong key", write("wrong_key.age", age(["-r", other_recipient], plain)), sealed=True)
add("age two recipients", write("two.age", age(["-r", RECIPIENT, "-r", other_recipient], plain)), sealed=True)
# Armored files (`age -a`) are accepted; one whose armor is broken (a character no
# base64 has, in its second line) is refused with its own code.
armored = age(["-a", "-r", RECIPIENT], plain).split(b"\n")
armored[2] = b"*" + armored[2][1:]
add("age armor malformed", write("bad_armor.age", b"\n".join(armored)), sealed=True)
env = dict(os.environ, AGE_PASSPHRASE="x")
scrypt = subprocess.run(["python3", "-c", "import pyrage,sys;sys.stdout.buffer.write(pyrage.passphrase.encrypt(b'data', 'pw'))"],
                        capture_output=True, check=True).stdout
add("age scrypt passphrase", write("scrypt.age", scrypt), sealed=True)
add("age trailing data", write("trailing.age", good + b"junk after the final chunk"), sealed=True)
add("not sealed at all", write("plain.pdf", pdf([page[0].format(""), page[1], page[2]])), sealed=True)

json.dump(corpus, open(os.path.join(OUT, "corpus.json"), "w"), indent=1)
print(len(corpus))
