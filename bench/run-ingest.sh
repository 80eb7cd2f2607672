#!/usr/bin/env bash
# The ingest core beside its shell reference, in one run:
#   1. a 1 GiB sealed file to *indexed* (verify and hash while arriving, durable spool,
#      inspect by decrypting on demand, move into the store, index) vs
#      `age -d -i ID FILE | tee OUT | openssl dgst -sha256; sync`;
#   2. 10,000 sealed 64 KiB files, 8 uploads at a time, to indexed: files/s;
#   3. peak RSS at 256 MiB vs 1 GiB (flat memory as files grow).
# Prints a Markdown section for bench/RESULTS.md. Env: SIZE_MIB (1024), RUNS (3), COUNT (10000).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-1024}; RUNS=${RUNS:-3}; COUNT=${COUNT:-10000}
command -v age >/dev/null || { apt-get update -qq && apt-get install -y -qq age >/dev/null; }
cargo build --release --locked -p gateway-bench --bin ingest_bench >&2
B=$PWD/target/release/ingest_bench
W=$(mktemp -d /var/tmp/gwingest.XXXXXX); trap 'rm -rf "$W"' EXIT
export BENCH_DIR=$W
age-keygen -o "$W/id" 2>/dev/null; R=$(age-keygen -y "$W/id")
{ printf '\0\0\0\030ftypmp42\0\0\0\0mp42isom'; head -c "$((SIZE_MIB << 20))" /dev/urandom; } | age -r "$R" -o "$W/big.age"
{ printf '\0\0\0\030ftypmp42\0\0\0\0mp42isom'; head -c "$((256 << 20))" /dev/urandom; } | age -r "$R" -o "$W/mid.age"
cat "$W/big.age" > /dev/null
now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
: > "$W/t_ref"; : > "$W/t_gw"
for _ in $(seq "$RUNS"); do
  sync; s=$(now)
  age -d -i "$W/id" "$W/big.age" | tee "$W/ref.out" | openssl dgst -sha256 > /dev/null; sync
  e=$(now); echo "scale=3; ($e - $s) / 1000000000" | bc >> "$W/t_ref"; rm -f "$W/ref.out"; sync
  line=$("$B" big "$W/big.age" "$W/id"); echo "$line" >&2
  echo "$line" | sed 's/.*indexed_s=\([0-9.]*\).*/\1/' >> "$W/t_gw"
  rss_big=$(echo "$line" | sed 's/.*peak_anon_kib=\([0-9]*\).*/\1/')
done
rss_mid=$("$B" big "$W/mid.age" "$W/id" | sed 's/.*peak_anon_kib=\([0-9]*\).*/\1/')
t_ref=$(median < "$W/t_ref"); t_gw=$(median < "$W/t_gw")
small=$("$B" small "$COUNT" 64); echo "$small" >&2
cat <<MD
## Ingest core ($(date -u +%Y-%m-%d), \`bench/run-ingest.sh\`)

${SIZE_MIB} MiB sealed file, from the first byte to *indexed*, median of ${RUNS} alternating runs:

| path | seconds | vs reference |
|---|---|---|
| \`age -d \\| tee OUT \\| openssl dgst -sha256; sync\` — reference | ${t_ref} | 1.00× |
| gateway core: session (verify while arriving, spool, fsync) → pipeline (decrypt, inspect, move the sealed file into the store, index) | ${t_gw} | $(echo "scale=2; $t_ref / $t_gw" | bc)× |

Peak anonymous memory of the core (RssAnon sampled every 5 ms; the mapped spool file is
page cache and not counted): $((rss_mid / 1024)) MiB for a 256 MiB file, $((rss_big / 1024)) MiB for ${SIZE_MIB} MiB.

Small files: ${small}
MD
