#!/usr/bin/env bash
# DICOMweb in one run:
#   1. QIDO-RS latency over INDEXED (100,000) instances: the catalog is filled through the
#      catalog API by `dicom_index` (no bytes stored), then QIDO_REQUESTS (2,000) searches
#      of a viewer's mix are timed one at a time; goal p99 < 50 ms;
#   2. STOW-RS ingest: STOW_COUNT (2,000) instances made from pydicom's CT_small.dcm with
#      fresh UIDs, sent by STOW_CLIENTS (4) parallel clients in requests of STOW_BATCH (50);
#      a STOW answer returns only once its instances are indexed, so instances/s is
#      "to indexed". The same instances go, in the same run and the same way, to Debian's
#      Orthanc with its DICOMweb plugin (`orthanc`, `orthanc-dicomweb`; installed here
#      when missing), whose STOW-RS answer also comes once they are stored and indexed.
#      Goal: ≥ 2,000 instances/s and ≥ 4× Orthanc (issue #19).
# Prints a Markdown section for bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
INDEXED=${INDEXED:-100000}; QIDO_REQUESTS=${QIDO_REQUESTS:-2000}
STOW_COUNT=${STOW_COUNT:-2000}; STOW_CLIENTS=${STOW_CLIENTS:-4}; STOW_BATCH=${STOW_BATCH:-50}
cargo build --release --locked -p gateway --bin gateway -p gateway-bench --bin dicom_index >&2
GW=$PWD/target/release/gateway
W=$(mktemp -d /var/tmp/gwdw.XXXXXX)
GWPID=
ORPID=
cleanup() { kill $GWPID $ORPID 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
TENANT=3501200000
token() { head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
hash() { printf '%s' "$1" | openssl dgst -sha256 -r | cut -d' ' -f1; }
TOKEN=bench-$(token); REV=review-$(token)
cat > "$W/tenants.toml" <<TOML_END
[[tenant]]
code = "$TENANT"
name = "Bench hospital"
profile = "generic"
token_hashes = ["sha256:$(hash "$TOKEN")"]
allow_ips = ["127.0.0.0/8"]

[[principal]]
name = "bench-viewer"
role = "reviewer"
tenants = ["*"]
token_hashes = ["sha256:$(hash "$REV")"]
allow_ips = ["127.0.0.0/8"]
TOML_END
printf '[server]\ndata_dir = "%s/data"\ntenants_file = "%s/tenants.toml"\n[sftp]\nlisten = "127.0.0.1:0"\n[https]\nlisten = "127.0.0.1:0"\n[admin]\nlisten = "127.0.0.1:0"\n[log]\nlevel = "warn"\n' \
  "$W" "$W" > "$W/gateway.toml"
s=$(date +%s)
target/release/dicom_index "$W/data" "$TENANT" "$INDEXED" >&2
fill=$(( $(date +%s) - s ))
"$GW" serve --config "$W/gateway.toml" > "$W/gateway.log" 2>&1 & GWPID=$!
for _ in $(seq 100); do [ -f "$W/data/run/listeners.json" ] && break; sleep 0.1; done
HTTPS=$(python3 -c "import json;print(json.load(open('$W/data/run/listeners.json'))['https'])")
CA="$W/data/keys/tls-cert.pem"
URL="https://$HTTPS"
python3 bench/dicomweb_load.py qido "$URL" "$REV" "$CA" 200 > /dev/null  # warm-up
Q=$(python3 bench/dicomweb_load.py qido "$URL" "$REV" "$CA" "$QIDO_REQUESTS")
S=$(python3 bench/dicomweb_load.py stow "$URL/dicomweb" "$TOKEN" "$CA" "$STOW_COUNT" "$STOW_CLIENTS" "$STOW_BATCH")
# Orthanc, the archive a PACS administrator would otherwise run, on its defaults (its
# own SQLite index, files on disk, fsync of each stored file).
if ! command -v Orthanc > /dev/null || [ ! -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends orthanc orthanc-dicomweb >&2
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
OHTTP=$(free_port); ODICOM=$(free_port)
mkdir -p "$W/orthanc"
cat > "$W/orthanc/orthanc.json" <<JSON_END
{ "Name": "bench", "StorageDirectory": "$W/orthanc/db", "IndexDirectory": "$W/orthanc/db",
  "HttpPort": $OHTTP, "DicomPort": $ODICOM, "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false, "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"],
  "DicomWeb": { "Enable": true, "Root": "/dicom-web/" } }
JSON_END
Orthanc "$W/orthanc/orthanc.json" > "$W/orthanc.log" 2>&1 & ORPID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$OHTTP/system" > /dev/null && break; sleep 0.2; done
O=$(python3 bench/dicomweb_load.py stow "http://127.0.0.1:$OHTTP/dicom-web" - - "$STOW_COUNT" "$STOW_CLIENTS" "$STOW_BATCH")
ORTHANC_VERSION=$(curl -sf "http://127.0.0.1:$OHTTP/system" | python3 -c "import json,sys; print(json.load(sys.stdin)['Version'])")
kill $ORPID; wait $ORPID 2>/dev/null || true; ORPID=
field() { printf '%s' "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"; }
rate=$(field "$S" per_second)
echo "## DICOMweb ($(date -u +%Y-%m-%d), \`bench/run-dicomweb.sh\`)"
echo
echo "QIDO-RS over ${INDEXED} indexed instances (catalog filled in ${fill} s by \`dicom_index\`),"
echo "${QIDO_REQUESTS} searches of a viewer's mix (patient id, name wildcard, date range, modality"
echo "with offset, accession, series of a study, instances of a series), one at a time:"
echo
echo "| p50 | p95 | p99 | max | goal |"
echo "|---|---|---|---|---|"
echo "| $(field "$Q" p50_ms) ms | $(field "$Q" p95_ms) ms | $(field "$Q" p99_ms) ms | $(field "$Q" max_ms) ms | p99 < 50 ms |"
echo
echo "STOW-RS: ${STOW_COUNT} instances (CT_small.dcm with fresh UIDs, $(stat -c %s "$(python3 -c 'from pydicom.data import get_testdata_file as g; print(g("CT_small.dcm"))')") bytes each),"
echo "${STOW_CLIENTS} clients, ${STOW_BATCH} per request, each answer after its instances are indexed:"
echo
orate=$(field "$O" per_second)
echo "| server | stored | failed | seconds | instances/s to indexed |"
echo "|---|---|---|---|---|"
echo "| gateway | $(field "$S" stored) | $(field "$S" failed) | $(field "$S" seconds) | ${rate} |"
echo "| Orthanc ${ORTHANC_VERSION} + DICOMweb plugin (Debian) | $(field "$O" stored) | $(field "$O" failed) | $(field "$O" seconds) | ${orate} |"
echo
echo "Gateway / Orthanc: **$(printf "%.2f" "$(echo "scale=4; $rate / $orate" | bc)")×** (goal ≥ 4×; ≥ 2,000 instances/s)."
