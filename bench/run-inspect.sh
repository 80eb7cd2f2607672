#!/usr/bin/env bash
# The inspectors beside their references, in one run:
#   1. DICOM header indexing of N_DICOM (10,000) files vs pydicom
#      `dcmread(stop_before_pixels=True)` reading the same fields from the same files;
#   2. PDF inspection of N_PDF (200) 40-page PDFs vs `qpdf --check` per file.
# Files are read once first so both sides read from the page cache.
# Prints a Markdown section for bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
N_DICOM=${N_DICOM:-10000}; N_PDF=${N_PDF:-200}
bash scripts/test-setup.sh >&2
cargo build --release --locked -p gateway-bench --bin inspect_bench >&2
B=$PWD/target/release/inspect_bench
W=$(mktemp -d /var/tmp/gwinspect.XXXXXX); trap 'rm -rf "$W"' EXIT
python3 bench/make_inspect_corpus.py "$W" "$N_DICOM" "$N_PDF" >&2
cat "$W"/dicom/* "$W"/pdf/* > /dev/null
py=$(python3 - "$W/dicom" <<'PY'
import os, sys, time
import pydicom
d = sys.argv[1]
files = sorted(os.path.join(d, f) for f in os.listdir(d))
t = time.perf_counter()
for f in files:
    ds = pydicom.dcmread(f, stop_before_pixels=True)
    _ = (ds.PatientID, ds.PatientName, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID,
         ds.SOPClassUID, ds.file_meta.TransferSyntaxUID, ds.get("Modality"), ds.get("StudyDate"),
         ds.get("AccessionNumber"), ds.get("InstitutionName"), ds.get("NumberOfFrames"))
s = time.perf_counter() - t
print(f"{s:.3f} {len(files) / s:.0f}")
PY
)
py_s=${py% *}; py_rate=${py#* }
ours=$("$B" dicom "$W/dicom"); echo "$ours" >&2
our_s=$(echo "$ours" | sed 's/.*seconds=\([0-9.]*\).*/\1/'); our_rate=$(echo "$ours" | sed 's/.*per_s=\([0-9]*\).*/\1/')
one=$(RAYON_NUM_THREADS=1 "$B" dicom "$W/dicom"); one_rate=$(echo "$one" | sed 's/.*per_s=\([0-9]*\).*/\1/')
s=$(date +%s%N); for f in "$W"/pdf/*; do qpdf --check "$f" > /dev/null; done; e=$(date +%s%N)
q_ms=$(echo "scale=3; ($e - $s) / 1000000 / $N_PDF" | bc)
pdf=$("$B" pdf "$W/pdf"); echo "$pdf" >&2
p_ms=$(echo "$pdf" | sed 's/.*ms_per_file=\([0-9.]*\).*/\1/')
cat <<MD
## Inspectors ($(date -u +%Y-%m-%d), \`bench/run-inspect.sh\`)

DICOM header indexing, ${N_DICOM} Part-10 files (pydicom's CT, MR, liver and RLE test files
with fresh UIDs), page-cached, same fields on both sides:

| reader | seconds | instances/s | vs pydicom |
|---|---|---|---|
| pydicom 3.0 \`dcmread(stop_before_pixels=True)\` — reference | ${py_s} | ${py_rate} | 1.00× |
| gateway (\`dicom-object\`, read until PixelData), 1 thread | — | ${one_rate} | $(echo "scale=1; $one_rate / $py_rate" | bc)× |
| gateway, all cores (rayon) | ${our_s} | ${our_rate} | $(echo "scale=1; $our_rate / $py_rate" | bc)× |

PDF inspection, ${N_PDF} files of 40 pages with an outline (qpdf-written):

| tool | ms per file | vs qpdf |
|---|---|---|
| \`qpdf --check\` (a process per file) — reference | ${q_ms} | 1.00× |
| gateway (\`lopdf\`: parse, pages, info, outline, encryption, active content) | ${p_ms} | $(echo "scale=1; $q_ms / $p_ms" | bc)× |
MD
