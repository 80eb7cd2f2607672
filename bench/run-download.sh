#!/usr/bin/env bash
# Content download beside a plain static file server, in one run, same client (curl):
#   reference: `python3 -m http.server` serving the stored object (the sealed bytes as
#              they sit on disk) over plain HTTP, nothing decrypted;
#   gateway:   GET /v1/files/{id}/content over HTTPS, decrypting the same stored object
#              on the fly, with a reviewer's token.
# One SIZE_MIB (1024) MiB file, median of RUNS (3) alternating runs after a warm-up; the
# gateway's download is checked against the file's SHA-256 once. Prints a Markdown
# section for bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-1024}; RUNS=${RUNS:-3}
command -v age >/dev/null || { apt-get update -qq && apt-get install -y -qq age >/dev/null; }
cargo build --release --locked -p gateway --bin gateway >&2
GW=$PWD/target/release/gateway
W=$(mktemp -d /var/tmp/gwdl.XXXXXX)
GWPID=; PYPID=
cleanup() { kill $GWPID $PYPID 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"; }
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
name = "bench-reviewer"
role = "reviewer"
tenants = ["*"]
token_hashes = ["sha256:$(hash "$REV")"]
allow_ips = ["127.0.0.0/8"]
TOML_END
printf '[server]\ndata_dir = "%s/data"\ntenants_file = "%s/tenants.toml"\n[sftp]\nlisten = "127.0.0.1:0"\n[https]\nlisten = "127.0.0.1:0"\n[admin]\nlisten = "127.0.0.1:0"\n[log]\nlevel = "warn"\n' \
  "$W" "$W" > "$W/gateway.toml"
"$GW" serve --config "$W/gateway.toml" > "$W/gateway.log" 2>&1 & GWPID=$!
for _ in $(seq 100); do [ -f "$W/data/run/listeners.json" ] && break; sleep 0.1; done
HTTPS=$(python3 -c "import json;print(json.load(open('$W/data/run/listeners.json'))['https'])")
ADMIN=$(python3 -c "import json;print(json.load(open('$W/data/run/listeners.json'))['admin'])")
R=$("$GW" keys show --config "$W/gateway.toml" 2>/dev/null | grep -o 'age1[0-9a-z]*' | head -1)
{ printf '\0\0\0\030ftypmp42\0\0\0\0mp42isom'; head -c "$((SIZE_MIB << 20))" /dev/urandom; } > "$W/plain"
PLAIN_SHA=$(openssl dgst -sha256 -r "$W/plain" | cut -d' ' -f1)
age -r "$R" -o "$W/big.age" "$W/plain"
rm -f "$W/plain"
C=(curl -sk --http1.1 -H 'Tus-Resumable: 1.0.0' -H "Authorization: Bearer $TOKEN")
len=$(stat -c %s "$W/big.age")
loc=$("${C[@]}" -o /dev/null -D - -X POST "https://$HTTPS/v1/uploads" -H "Upload-Length: $len" \
      -H "Upload-Metadata: filename $(printf big.mp4 | base64 -w0)" | tr -d '\r' | awk 'tolower($1)=="location:" {print $2}')
"${C[@]}" -o /dev/null -X PATCH -T "$W/big.age" -H 'Upload-Offset: 0' \
    -H 'Content-Type: application/offset+octet-stream' "https://$HTTPS$loc"
rm -f "$W/big.age"
for _ in $(seq 600); do
  n=$(curl -s "http://$ADMIN/metrics" | awk '/^gateway_uploads_checked_total/ {s += $NF} END {print s + 0}')
  [ "$n" -ge 1 ] && break; sleep 0.1
done
FILES=$(curl -sk -H "Authorization: Bearer $REV" "https://$HTTPS/v1/files")
ID=$(printf '%s' "$FILES" | python3 -c "import json,sys; print(json.load(sys.stdin)['files'][0]['id'])")
OBJ=$(find "$W/data/objects" -type f -size +1M | head -1)
OBJDIR=$(dirname "$OBJ"); OBJNAME=$(basename "$OBJ")
PYPORT=$(( ${HTTPS##*:} + 1 ))
python3 -m http.server --bind 127.0.0.1 --directory "$OBJDIR" "$PYPORT" > "$W/py.log" 2>&1 & PYPID=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PYPORT/" && break; sleep 0.1; done
REF_URL="http://127.0.0.1:$PYPORT/$OBJNAME"
GW_URL="https://$HTTPS/v1/files/$ID/content"
got=$(curl -sk -H "Authorization: Bearer $REV" "$GW_URL" | openssl dgst -sha256 -r | cut -d' ' -f1)
[ "$got" = "$PLAIN_SHA" ] || { echo "download does not match: $got vs $PLAIN_SHA" >&2; exit 1; }
now() { date +%s%N; }
secs() { echo "scale=3; ($2 - $1) / 1000000000" | bc; }
one_ref() { curl -s -o /dev/null "$REF_URL"; }
one_gw() { curl -sk --http1.1 -o /dev/null -H "Authorization: Bearer $REV" "$GW_URL"; }
one_ref; one_gw
: > "$W/t_r"; : > "$W/t_g"
for _ in $(seq "$RUNS"); do
  s=$(now); one_ref; e=$(now); secs "$s" "$e" >> "$W/t_r"
  s=$(now); one_gw; e=$(now); secs "$s" "$e" >> "$W/t_g"
done
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
t_r=$(median < "$W/t_r"); t_g=$(median < "$W/t_g")
sealed=$(stat -c %s "$OBJ"); plain=$((SIZE_MIB << 20)); plain=$((plain + 24))
echo "## Content download (${SIZE_MIB} MiB, $(date -u +%Y-%m-%d), \`bench/run-download.sh\`)"
echo
echo "The same stored object fetched by \`curl -o /dev/null\`, median of ${RUNS} alternating runs"
echo "after a warm-up; the gateway's download was checked against the file's SHA-256."
echo
echo "| server | seconds | MB/s | vs reference |"
echo "|---|---|---|---|"
echo "| \`python3 -m http.server\` (Python $(python3 -c 'import platform;print(platform.python_version())')), the sealed object as stored, plain HTTP — reference | ${t_r} | $(echo "scale=0; $sealed / $t_r / 1000000" | bc) | 1.00× |"
echo "| gateway \`GET /v1/files/{id}/content\`, decrypting on the fly, HTTPS | ${t_g} | $(echo "scale=0; $plain / $t_g / 1000000" | bc) | $(echo "scale=2; $t_r / $t_g" | bc)× |"
