#!/usr/bin/env bash
# Bounded fuzzing of every parser of untrusted bytes (not part of CI: it needs a
# sanitizer build of its own and minutes per target).
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   (default 60 s, every target)
# Seeds come from real files: pydicom's test data (DICOM, DICOMDIR), the PDFs and ZIPs
# tests/interop/make_inspect_data.py makes with qpdf and Python's zipfile, sealed files
# for the age targets, and hand-written multipart bodies, SFTP packets, tus headers,
# manifests and names. Each run's last lines (executions, crashes) go to
# fuzz/logs/<target>.log; a crash leaves its input under fuzz/artifacts/<target>/, to be
# kept as a regression test (gateway/tests/fuzz_regressions.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
all=(header stream_open inspect dicom_header dicomdir pdf zip cab multipart sftp_packet tus_headers manifest names)
targets=("${@:-${all[@]}}")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
# cargo-fuzz needs nightly flags; a stable toolchain accepts them with RUSTC_BOOTSTRAP.
if rustup toolchain list 2>/dev/null | grep -q nightly; then tc=(+nightly); else tc=(); export RUSTC_BOOTSTRAP=1; fi

cargo build --locked --bin gateway
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
corpus=fuzz/corpus
for t in "${all[@]}"; do mkdir -p "$corpus/$t"; done

# age: files sealed to the fuzz identity, so mutations reach the payload.
id_line=$(grep -o 'AGE-SECRET-KEY-1[A-Z0-9]*' fuzz/fuzz_targets/common.rs)
printf '%s\n' "$id_line" > "$tmp/id"
recipient=$(age-keygen -y "$tmp/id")
for len in 0 1 100 65535 65536 65537 140000; do
  head -c "$len" /dev/urandom > "$tmp/p"
  target/debug/gateway seal -r "$recipient" -o "$tmp/s" "$tmp/p"
  cp "$tmp/s" "$corpus/header/seed-$len"
  { printf '\x07'; cat "$tmp/s"; } > "$corpus/stream_open/seed-$len"
done

# DICOM: every file of pydicom's test data (small ones; the fuzzer caps input length).
pyd=$(python3 -c 'import pydicom, os; print(os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files"))')
find "$pyd" -type f -size -200k \( -name '*.dcm' -o -name 'DICOMDIR*' -o -name '*.dicom' \) | while read -r f; do
  n=$(basename "$f")
  cp "$f" "$corpus/dicom_header/$n"; cp "$f" "$corpus/inspect/$n"
  case "$n" in DICOMDIR*) cp "$f" "$corpus/dicomdir/$n" ;; esac
done
# PDFs and ZIPs made by qpdf and zipfile (the inspectors' interop data).
python3 tests/interop/make_inspect_data.py "$tmp/inspect" >/dev/null
for f in "$tmp"/inspect/*.pdf; do cp "$f" "$corpus/pdf/"; cp "$f" "$corpus/inspect/"; done
for f in "$tmp"/inspect/*.zip; do cp "$f" "$corpus/zip/"; cp "$f" "$corpus/inspect/"; done
# CABs packed by gcab: a small DICOMDIR set, MSZIP and stored.
python3 tests/interop/make_set.py "$tmp/cabset" 3 0 >/dev/null
(cd "$tmp/cabset" && gcab -c -z "$OLDPWD/$corpus/cab/set-mszip.cab" DICOMDIR $(find PT* -type f | sort) \
  && gcab -c "$OLDPWD/$corpus/cab/set-stored.cab" DICOMDIR $(find PT* -type f | sort))
# STOW bodies (first byte: the piece size the body is fed in).
printf '\x07preamble\r\n--b0undary\r\nContent-Type: application/dicom\r\n\r\nDICM..\r\n--b0undary\r\n\r\nsecond\r\n--b0undary--\r\nepilogue' > "$corpus/multipart/two-parts"
printf '\x01--b0undary  \r\nX: y\r\n\r\n\r\n--b0undary--' > "$corpus/multipart/padding"
# SFTP requests without their length prefix: init, open, write, close, rename, stat.
printf '\x01\x00\x00\x00\x03' > "$corpus/sftp_packet/init"
printf '\x03\x00\x00\x00\x01\x00\x00\x00\x0e/inbox/a.pdf.age\x00\x00\x00\x1a\x00\x00\x00\x00' > "$corpus/sftp_packet/open"
printf '\x06\x00\x00\x00\x02\x00\x00\x00\x01h\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x04data' > "$corpus/sftp_packet/write"
printf '\x04\x00\x00\x00\x03\x00\x00\x00\x01h' > "$corpus/sftp_packet/close"
printf '\x12\x00\x00\x00\x04\x00\x00\x00\x05/a.tm\x00\x00\x00\x05/a.pd' > "$corpus/sftp_packet/rename"
printf '\x11\x00\x00\x00\x05\x00\x00\x00\x06/inbox' > "$corpus/sftp_packet/stat"
printf 'filename MTJBMDMxMjMzNDUucGRm,filetype YXBwbGljYXRpb24vcGRm' > "$corpus/tus_headers/metadata"
printf 'sha256 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=' > "$corpus/tus_headers/checksum"
printf '18446744073709551615' > "$corpus/tus_headers/length"
printf '{"files":[{"name":"a/12A03123345.pdf","size":10,"sha256":"%064d","record_date":"2026-01-02"}]}' 0 > "$corpus/manifest/one"
for n in 12A03123345.pdf 22A1123456.pdf 13B19012345_1.pdf 3501200000_1030101_001.zip case-7/DICOMDIR; do
  printf '%s' "$n" > "$corpus/names/$(echo "$n" | tr '/' '_')"
done

mkdir -p fuzz/logs
for t in "${targets[@]}"; do
  echo "fuzz: $t for ${secs}s"
  (cd fuzz && cargo "${tc[@]}" fuzz run -O "$t" -- -max_total_time="$secs" -max_len=300000 \
      -rss_limit_mb=4096 -timeout=30 -print_final_stats=1) > "fuzz/logs/$t.log" 2>&1 \
    || echo "fuzz: $t FOUND A CRASH (see fuzz/logs/$t.log and fuzz/artifacts/$t/)"
  grep -E '^stat::number_of_executed_units|^Done|SUMMARY|panicked' "fuzz/logs/$t.log" | tail -3
done
