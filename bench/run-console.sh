#!/usr/bin/env bash
# The web console's upload path beside the command line, in one run, same gateway, same
# machine: a SIZE_MIB (256) MiB file from plaintext until the gateway has indexed it,
#   reference: `age -r` (the Go CLI) seals it, then `curl` sends it with tus (one PATCH);
#   console:   headless chromium seals it in the page (age-encryption in a worker, into
#              OPFS) and sends it with tus-js-client (8 MiB PATCHes) while sealing goes
#              on, bench/console.mjs.
# Alternating pairs after a warm-up, RUNS (3) each, medians; a fresh file each run (so
# no duplicate findings). Prints a Markdown section for bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-256}; RUNS=${RUNS:-3}
[ -d tests/browser/node_modules/puppeteer-core ] || (cd tests/browser && npm ci --silent --no-audit --no-fund)
cargo build --release --locked -p gateway --bin gateway >&2
. bench/lib/gateway.sh
W=$(mktemp -d /var/tmp/gwconsole.XXXXXX)
GWPID=
cleanup() { kill $GWPID 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
start_gateway "$W"
# A video-like plaintext (the generic profile takes it; nothing to parse at length).
mk() { { printf '\0\0\0\030ftypmp42\0\0\0\0mp42isom'; head -c "$((SIZE_MIB << 20))" /dev/urandom; } > "$1"; cat "$1" > /dev/null; }
now() { date +%s%N; }
secs() { echo "scale=3; ($2 - $1) / 1000000000" | bc; }
checked() { curl -s "http://$ADMIN/metrics" | awk '/^gateway_uploads_checked_total/ {s += $NF} END {print s + 0}'; }
wait_checked() { while [ "$(checked)" -lt "$1" ]; do sleep 0.02; done; }
C=(curl -sk --http1.1 -H 'Tus-Resumable: 1.0.0' -H "Authorization: Bearer $TOKEN")
tus_put() {
  local len loc
  len=$(stat -c %s "$1")
  loc=$("${C[@]}" -o /dev/null -D - -X POST "https://$HTTPS/v1/uploads" -H "Upload-Length: $len" \
        -H "Upload-Metadata: filename $(printf '%s' "$2" | base64 -w0)" | tr -d '\r' | awk 'tolower($1)=="location:" {print $2}')
  "${C[@]}" -o /dev/null -X PATCH -T "$1" -H 'Upload-Offset: 0' \
      -H 'Content-Type: application/offset+octet-stream' -w '%{http_code}\n' "https://$HTTPS$loc" | grep -q 204
}
n=0
# Reference: seal with the age CLI, send with curl, until checked. Prints seal send total.
one_cli() {
  n=$((n + 1)); mk "$W/cli$n.mp4"; sync
  local s m e c
  s=$(now); age -r "$R" -o "$W/cli$n.mp4.age" "$W/cli$n.mp4"; m=$(now)
  tus_put "$W/cli$n.mp4.age" "cli$n.mp4"; e=$(now); wait_checked "$n"; c=$(now)
  echo "$(secs "$s" "$m") $(secs "$m" "$e") $(secs "$s" "$c")"
  rm -f "$W/cli$n.mp4" "$W/cli$n.mp4.age"
}
one_console() {
  n=$((n + 1)); mk "$W/page$n.mp4"; sync
  GW="https://$HTTPS" ADMIN="$ADMIN" TOKEN="$TOKEN" FILE="$W/page$n.mp4" CHECKED="$n" \
    node bench/console.mjs | python3 -c "import json,sys; d=json.load(sys.stdin); print(f\"{d['seal_s']:.3f} {d['send_s']:.3f} {d['total_s']:.3f}\")"
  rm -f "$W/page$n.mp4"
}
one_cli > /dev/null; one_console > /dev/null
: > "$W/cli"; : > "$W/page"
for _ in $(seq "$RUNS"); do one_cli >> "$W/cli"; one_console >> "$W/page"; done
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
col() { awk -v c="$2" '{print $c}' "$1" | median; }
cs=$(col "$W/cli" 1); cu=$(col "$W/cli" 2); ct=$(col "$W/cli" 3)
ps=$(col "$W/page" 1); pu=$(col "$W/page" 2); pt=$(col "$W/page" 3)
mb=$(( (SIZE_MIB << 20) / 1000000 ))
rate() { echo "scale=0; $mb / $1" | bc; }
ver=$(chromium --version 2>/dev/null | awk '{print $2}')
echo "## Web console upload ($(date -u +%Y-%m-%d), \`bench/run-console.sh\`)"
echo
echo "One ${SIZE_MIB} MiB file from plaintext until the gateway has **indexed** it (release build, generic"
echo "profile), median of ${RUNS} alternating runs after a warm-up, a fresh file each run. *seal s*:"
echo "until the last byte is sealed; *send s*: from then until accepted (the console sends while it"
echo "seals, so this is only what did not overlap); MB/s is of the plaintext over the whole."
echo
echo "| client | seal s | send s | until indexed s | MB/s | vs CLI |"
echo "|---|---|---|---|---|---|"
echo "| \`age -r\` $(age --version) + \`curl\` tus, one PATCH — reference | ${cs} | ${cu} | ${ct} | $(rate "$ct") | 1.00× |"
echo "| console in headless chromium ${ver}: age-encryption in a worker into OPFS, tus-js-client 8 MiB PATCHes while sealing | ${ps} | ${pu} | ${pt} | $(rate "$pt") | $(echo "scale=2; $ct / $pt" | bc)× |"
