#!/usr/bin/env bash
# Runs a loadtest scenario (default bench/loadtest/standard.toml) against a release
# gateway started here with the scenario's tenants; prints the Markdown summary and
# leaves report.json / report.md, the plots (*.svg) and a /metrics scrape taken half-way
# (checked with `promtool check metrics`) in OUT (default bench/loadtest/last).
set -euo pipefail
cd "$(dirname "$0")/.."
SCENARIO=${1:-bench/loadtest/standard.toml}
OUT=${OUT:-bench/loadtest/last}
cargo build --release --locked -p gateway --bin gateway -p loadtest --bin loadtest >&2
GW=$PWD/target/release/gateway; LT=$PWD/target/release/loadtest
W=$(mktemp -d /var/tmp/gwlt.XXXXXX)
GWPID=
# KEEP=1 keeps the gateway's data directory and log (printed at the end).
cleanup() {
  kill $GWPID 2>/dev/null || true; wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "kept: $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
"$LT" tenants --scenario "$SCENARIO" > "$W/tenants.toml"
printf '[server]\ndata_dir = "%s/data"\ntenants_file = "%s/tenants.toml"\n[sftp]\nlisten = "127.0.0.1:0"\n[https]\nlisten = "127.0.0.1:0"\n[admin]\nlisten = "127.0.0.1:0"\n[log]\nlevel = "warn"\n' \
  "$W" "$W" > "$W/gateway.toml"
"$GW" serve --config "$W/gateway.toml" > "$W/gateway.log" 2>&1 & GWPID=$!
for _ in $(seq 100); do [ -f "$W/data/run/listeners.json" ] && break; sleep 0.1; done
listener() { python3 -c "import json;print(json.load(open('$W/data/run/listeners.json'))['$1'])"; }
HTTPS=$(listener https); SFTP=$(listener sftp); ADMIN=$(listener admin)
mkdir -p "$OUT"
"$LT" run --scenario "$SCENARIO" --url "https://$HTTPS" --sftp "$SFTP" \
  --ca-cert "$W/data/keys/tls-cert.pem" --pid "$GWPID" --out "$OUT" & LTPID=$!
# A scrape under load, half-way through the scenario's time bound.
HALF=$(python3 -c "import tomllib;print(tomllib.load(open('$SCENARIO','rb'))['max_seconds']//2)")
sleep "$HALF"
if curl -sf "http://$ADMIN/metrics" > "$OUT/metrics-under-load.txt"; then
  promtool check metrics < "$OUT/metrics-under-load.txt" && echo "promtool check metrics (under load): clean" >&2
fi
wait $LTPID
