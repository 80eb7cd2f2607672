#!/usr/bin/env bash
# tus upload beside the official Node tus server, in one run, same client (curl), same
# sealed file, same TLS certificate:
#   1. @tus/server + @tus/file-store (npm) receiving a SIZE_MIB (1024) MiB sealed file raw
#      (written to disk, nothing checked) vs the gateway receiving it *until the file is
#      indexed* (verified, decrypted, inspected, stored); alternating pairs after a warm-up,
#      RUNS (3) each, medians;
#   2. PAR (8) concurrent uploads of PAR_MIB (256) MiB each, aggregate;
#   3. server CPU seconds per GiB on both sides (from /proc).
# Prints a Markdown section for bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-1024}; RUNS=${RUNS:-3}; PAR=${PAR:-8}; PAR_MIB=${PAR_MIB:-256}
command -v age >/dev/null || { apt-get update -qq && apt-get install -y -qq age >/dev/null; }
[ -d bench/tus-node/node_modules/@tus/server ] || (cd bench/tus-node && npm ci --silent --no-audit --no-fund)
cargo build --release --locked -p gateway --bin gateway >&2
. bench/lib/gateway.sh
W=$(mktemp -d /var/tmp/gwtus.XXXXXX)
GWPID=; NODEPID=
cleanup() { kill $GWPID $NODEPID 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
start_gateway "$W"
NODE_PORT=$(( ${HTTPS##*:} + 1 ))
mkdir -p "$W/node-files"
node bench/tus-node/server.mjs "$NODE_PORT" "$W/node-files" "$W/data/keys/tls-cert.pem" "$W/data/keys/tls-key.pem" > "$W/node.log" 2>&1 & NODEPID=$!
for _ in $(seq 100); do grep -q listening "$W/node.log" 2>/dev/null && break; sleep 0.1; done
mk() { { printf '\0\0\0\030ftypmp42\0\0\0\0mp42isom'; head -c "$(($2 << 20))" /dev/urandom; } | age -r "$R" -o "$1"; }
mk "$W/big.age" "$SIZE_MIB"
for i in $(seq "$PAR"); do mk "$W/par$i.age" "$PAR_MIB"; done
cat "$W"/*.age > /dev/null
now() { date +%s%N; }
cpu_of() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)
checked() { curl -s "http://$ADMIN/metrics" | awk '/^gateway_uploads_checked_total/ {s += $NF} END {print s + 0}'; }
wait_checked() { while [ "$(checked)" -lt "$1" ]; do sleep 0.02; done; }
C=(curl -sk --http1.1 -H 'Tus-Resumable: 1.0.0')
# tus creation, then one streaming PATCH. $1 = uploads URL, $2 = file, $3 = name.
tus_put() {
  local len loc
  len=$(stat -c %s "$2")
  loc=$("${C[@]}" "${AUTH[@]}" -o /dev/null -D - -X POST "$1" -H "Upload-Length: $len" \
        -H "Upload-Metadata: filename $(printf '%s' "$3" | base64 -w0)" | tr -d '\r' | awk 'tolower($1)=="location:" {print $2}')
  # @tus/server behind node https still says http:// in Location.
  case "$loc" in http://*) loc="https://${loc#http://}" ;; https*) ;; *) loc="${1%%/v1/*}$loc" ;; esac
  "${C[@]}" "${AUTH[@]}" -o /dev/null -X PATCH -T "$2" -H 'Upload-Offset: 0' \
      -H 'Content-Type: application/offset+octet-stream' -w '%{http_code}\n' "$loc" | grep -q 204
}
NODE_URL="https://127.0.0.1:$NODE_PORT/files"
GW_URL="https://$HTTPS/v1/uploads"
AUTH=()
n=0
one_node() { AUTH=(); tus_put "$NODE_URL" "$W/big.age" big.age; rm -f "$W"/node-files/*; }
one_gw() { n=$((n + 1)); AUTH=(-H "Authorization: Bearer $TOKEN"); tus_put "$GW_URL" "$W/big.age" "big$n.age"; wait_checked "$n"; }
one_node; one_gw; sync
: > "$W/t_o"; : > "$W/t_g"; : > "$W/c_o"; : > "$W/c_g"
for _ in $(seq "$RUNS"); do
  sync; c0=$(cpu_of "$NODEPID"); s=$(now); one_node; e=$(now); c1=$(cpu_of "$NODEPID")
  echo "scale=3; ($e - $s) / 1000000000" | bc >> "$W/t_o"; echo "scale=3; ($c1 - $c0) / $TCK" | bc >> "$W/c_o"
  sync; c0=$(cpu_of "$GWPID"); s=$(now); one_gw; e=$(now); c1=$(cpu_of "$GWPID")
  echo "scale=3; ($e - $s) / 1000000000" | bc >> "$W/t_g"; echo "scale=3; ($c1 - $c0) / $TCK" | bc >> "$W/c_g"
done
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
t_o=$(median < "$W/t_o"); t_g=$(median < "$W/t_g"); c_o=$(median < "$W/c_o"); c_g=$(median < "$W/c_g")
bytes=$(stat -c %s "$W/big.age")
mbs() { echo "scale=0; $bytes / $1 / 1000000" | bc; }
sync; AUTH=(); s=$(now)
pids=(); for i in $(seq "$PAR"); do tus_put "$NODE_URL" "$W/par$i.age" "par$i.age" & pids+=($!); done; wait "${pids[@]}"
e=$(now); p_o=$(echo "scale=3; ($e - $s) / 1000000000" | bc); rm -f "$W"/node-files/*
base=$(checked); sync; AUTH=(-H "Authorization: Bearer $TOKEN"); s=$(now)
pids=(); for i in $(seq "$PAR"); do tus_put "$GW_URL" "$W/par$i.age" "par$i.age" & pids+=($!); done; wait "${pids[@]}"
wait_checked $((base + PAR)); e=$(now); p_g=$(echo "scale=3; ($e - $s) / 1000000000" | bc)
pbytes=$(cat "$W"/par*.age | wc -c)
passed=$(curl -s "http://$ADMIN/metrics" | awk '/^gateway_uploads_checked_total\{code="",result="passed"\}/ {print $NF}')
echo "## tus upload ($(date -u +%Y-%m-%d), \`bench/run-tus.sh\`)"
echo
echo "One ${SIZE_MIB} MiB sealed file, created and sent in one PATCH by \`curl\` over HTTPS (HTTP/1.1,"
echo "same certificate), median of ${RUNS} alternating runs after a warm-up (the gateway's time runs"
echo "until the file is **indexed**):"
echo
echo "| server | seconds | MB/s | server CPU s/GiB | vs @tus/server |"
echo "|---|---|---|---|---|"
echo "| @tus/server 2.4.5 + @tus/file-store (Node $(node --version)), raw bytes to disk — reference | ${t_o} | $(mbs "$t_o") | $(echo "scale=2; $c_o * 1073741824 / $bytes" | bc) | 1.00× |"
echo "| gateway, until verified, decrypted, inspected, stored, indexed | ${t_g} | $(mbs "$t_g") | $(echo "scale=2; $c_g * 1073741824 / $bytes" | bc) | $(echo "scale=2; $t_o / $t_g" | bc)× |"
echo
echo "${PAR} concurrent uploads of ${PAR_MIB} MiB each (aggregate; gateway until all indexed):"
echo
echo "| server | seconds | MB/s | vs @tus/server |"
echo "|---|---|---|---|"
echo "| @tus/server — reference | ${p_o} | $(echo "scale=0; $pbytes / $p_o / 1000000" | bc) | 1.00× |"
echo "| gateway | ${p_g} | $(echo "scale=0; $pbytes / $p_g / 1000000" | bc) | $(echo "scale=2; $p_o / $p_g" | bc)× |"
echo
echo "(${passed} uploads passed their checks in this run.)"
