#!/usr/bin/env bash
# Bounded fuzzing of the sealed-file parser and openers (not part of CI).
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
# Seeds: valid files sealed to the fuzz identity, so mutations reach the payload.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
# cargo-fuzz needs nightly flags; a stable toolchain accepts them with RUSTC_BOOTSTRAP.
if rustup toolchain list 2>/dev/null | grep -q nightly; then tc=(+nightly); else tc=(); export RUSTC_BOOTSTRAP=1; fi

cargo build --locked --bin gateway
id_line=$(grep -o 'AGE-SECRET-KEY-1[A-Z0-9]*' fuzz/fuzz_targets/common.rs)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
printf '%s\n' "$id_line" > "$tmp/id"
recipient=$(age-keygen -y "$tmp/id")
for t in header stream_open; do mkdir -p "fuzz/corpus/$t"; done
for len in 0 1 100 65535 65536 65537 140000; do
  head -c "$len" /dev/urandom > "$tmp/p"
  target/debug/gateway seal -r "$recipient" -o "$tmp/s" "$tmp/p"
  cp "$tmp/s" "fuzz/corpus/header/seed-$len"
  { printf '\x07'; cat "$tmp/s"; } > "fuzz/corpus/stream_open/seed-$len"
done
for t in header stream_open; do
  (cd fuzz && cargo "${tc[@]}" fuzz run "$t" -- -max_total_time="$secs" -max_len=300000 -rss_limit_mb=4096)
done
