#!/usr/bin/env bash
# Runs a loadtest scenario (default bench/loadtest/standard.toml) against a release
# gateway started here with the scenario's tenants; prints the Markdown summary and
# leaves report.json / report.md in OUT (default bench/loadtest/last).
set -euo pipefail
cd "$(dirname "$0")/.."
SCENARIO=${1:-bench/loadtest/standard.toml}
OUT=${OUT:-bench/loadtest/last}
cargo build --release --locked -p gateway --bin gateway -p loadtest --bin loadtest >&2
GW=$PWD/target/release/gateway; LT=$PWD/target/release/loadtest
W=$(mktemp -d /var/tmp/gwlt.XXXXXX)
GWPID=
cleanup() { kill $GWPID 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
"$LT" tenants --scenario "$SCENARIO" > "$W/tenants.toml"
printf '[server]\ndata_dir = "%s/data"\ntenants_file = "%s/tenants.toml"\n[sftp]\nlisten = "127.0.0.1:0"\n[https]\nlisten = "127.0.0.1:0"\n[admin]\nlisten = "127.0.0.1:0"\n[log]\nlevel = "warn"\n' \
  "$W" "$W" > "$W/gateway.toml"
"$GW" serve --config "$W/gateway.toml" > "$W/gateway.log" 2>&1 & GWPID=$!
for _ in $(seq 100); do [ -f "$W/data/run/listeners.json" ] && break; sleep 0.1; done
HTTPS=$(python3 -c "import json;print(json.load(open('$W/data/run/listeners.json'))['https'])")
"$LT" run --scenario "$SCENARIO" --url "https://$HTTPS" --ca-cert "$W/data/keys/tls-cert.pem" \
  --pid "$GWPID" --out "$OUT"
