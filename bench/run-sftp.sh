#!/usr/bin/env bash
# SFTP upload beside a stock OpenSSH server, in one run, same client, same sealed file:
#   1. OpenSSH `sftp put` of a SIZE_MIB (1024) MiB sealed file to a stock sshd +
#      sftp-server on another loopback port (raw transfer, nothing checked) vs the same
#      put to the gateway *until the file is indexed* (verified, decrypted, inspected,
#      stored); alternating pairs after a warm-up, RUNS (3) each, medians;
#   2. PAR (8) concurrent uploads of PAR_MIB (256) MiB each, aggregate MB/s;
#   3. server CPU seconds per GiB on both sides (from /proc: the gateway process; the
#      sshd master with its reaped session children);
#   4. one hospital, one connection: SMALL (2000) sealed 64 KiB files in one `sftp`
#      session (`put DIR/*`), to sshd vs to the gateway until all are indexed: files/s.
# Prints a Markdown section for bench/RESULTS.md. Needs root (sshd) and openssh-server.
# ONLY_SMALL=1 runs part 4 alone; GW=path/to/gateway measures that build (A/B of two
# builds) instead of building this tree; GW_CONFIG_EXTRA is TOML appended to the
# gateway's config (other backends: bench/run-scaleout.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-1024}; RUNS=${RUNS:-3}; PAR=${PAR:-8}; PAR_MIB=${PAR_MIB:-256}
SMALL=${SMALL:-2000}; ONLY_SMALL=${ONLY_SMALL:-0}
CIPHER=${CIPHER:-aes256-gcm@openssh.com}
command -v age >/dev/null || { apt-get update -qq && apt-get install -y -qq age >/dev/null; }
[ -x /usr/sbin/sshd ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server >/dev/null; }
if [ -z "${GW:-}" ]; then
  cargo build --release --locked -p gateway --bin gateway >&2
  GW=$PWD/target/release/gateway
fi
W=$(mktemp -d /var/tmp/gwsftp.XXXXXX)
cleanup() { kill "$GWPID" "$SSHDPID" 2>/dev/null || true; wait "$GWPID" "$SSHDPID" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
TENANT=3501200000
ssh-keygen -q -t ed25519 -N '' -f "$W/key"
ssh-keygen -q -t ed25519 -N '' -f "$W/hostkey"
cp "$W/key.pub" "$W/authorized_keys"
cat > "$W/tenants.toml" <<EOF
[[tenant]]
code = "$TENANT"
name = "Bench hospital"
profile = "generic"
ssh_keys = ["$(cat "$W/key.pub")"]
allow_ips = ["127.0.0.0/8"]
EOF
cat > "$W/gateway.toml" <<EOF
[server]
data_dir = "$W/data"
tenants_file = "$W/tenants.toml"
[sftp]
listen = "127.0.0.1:0"
[https]
listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
[log]
level = "warn"
${GW_CONFIG_EXTRA:-}
EOF
"$GW" serve --config "$W/gateway.toml" > "$W/gateway.log" 2>&1 & GWPID=$!
for _ in $(seq 100); do [ -f "$W/data/run/listeners.json" ] && break; sleep 0.1; done
GW_PORT=$(python3 -c "import json;print(json.load(open('$W/data/run/listeners.json'))['sftp'].split(':')[-1])")
ADMIN=$(python3 -c "import json;print(json.load(open('$W/data/run/listeners.json'))['admin'])")
SSHD_PORT=$((GW_PORT + 1))
mkdir -p /run/sshd "$W/remote"
cat > "$W/sshd_config" <<EOF
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $W/hostkey
AuthorizedKeysFile $W/authorized_keys
PidFile $W/sshd.pid
PermitRootLogin yes
StrictModes no
UsePAM no
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
/usr/sbin/sshd -D -f "$W/sshd_config" & SSHDPID=$!
sleep 0.5
R=$("$GW" keys show --config "$W/gateway.toml" 2>/dev/null | grep -o 'age1[0-9a-z]*' | head -1)
mk() { { printf '\0\0\0\030ftypmp42\0\0\0\0mp42isom'; head -c "$(($2 << 20))" /dev/urandom; } | age -r "$R" -o "$1"; }
mkdir -p "$W/small" "$W/remote/small"
head -c $((64 << 10)) /dev/urandom > "$W/small.plain"
for i in $(seq -w "$SMALL"); do
  { printf '\0\0\0\030ftypmp42\0\0\0\0mp42isom%s' "$i"; cat "$W/small.plain"; } | age -r "$R" -o "$W/small/s$i.age"
done
SFTP_OPTS=(-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o LogLevel=ERROR -c "$CIPHER" -i "$W/key")
now() { date +%s%N; }
cpu_of() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat"; }   # clock ticks
TCK=$(getconf CLK_TCK)
checked() { curl -s "http://$ADMIN/metrics" | awk '/^gateway_uploads_checked_total/ {s += $NF} END {print s + 0}'; }
wait_checked() { while [ "$(checked)" -lt "$1" ]; do sleep 0.02; done; }
n=0
ossh_put() { sftp "${SFTP_OPTS[@]}" -b - -P "$SSHD_PORT" "root@127.0.0.1" > /dev/null; }
gw_put() { sftp "${SFTP_OPTS[@]}" -b - -P "$GW_PORT" "$TENANT@127.0.0.1" > /dev/null; }
one_ossh() { echo "put $W/big.age $W/remote/big.age" | ossh_put; rm -f "$W/remote/big.age"; }
one_gw() { n=$((n + 1)); echo "put $W/big.age /inbox/big$n.age" | gw_put; wait_checked "$n"; }
# One connection, many small files (part 4): the whole folder in one session.
sync; c0=$(cpu_of "$SSHDPID"); s=$(now)
echo "put $W/small/* $W/remote/small/" | ossh_put
e=$(now); c1=$(cpu_of "$SSHDPID"); s_o=$(echo "scale=3; ($e - $s) / 1000000000" | bc); sc_o=$(echo "scale=3; ($c1 - $c0) / $TCK" | bc)
base=$(checked); sync; c0=$(cpu_of "$GWPID"); s=$(now)
echo "put $W/small/* /inbox/" | gw_put
a=$(now); wait_checked $((base + SMALL)); e=$(now); c1=$(cpu_of "$GWPID")
s_a=$(echo "scale=3; ($a - $s) / 1000000000" | bc); s_g=$(echo "scale=3; ($e - $s) / 1000000000" | bc); sc_g=$(echo "scale=3; ($c1 - $c0) / $TCK" | bc)
n=$((base + SMALL))
SMALL_MD="One connection: ${SMALL} sealed 64 KiB files in one OpenSSH \`sftp\` session (\`put DIR/*\`):

| server | seconds | files/s | server CPU ms/file | vs OpenSSH |
|---|---|---|---|---|
| stock OpenSSH sshd + sftp-server, raw transfer — reference | ${s_o} | $(echo "scale=0; $SMALL / $s_o" | bc) | $(echo "scale=2; $sc_o * 1000 / $SMALL" | bc) | 1.00× |
| gateway, until the last is indexed (all acknowledged after ${s_a} s) | ${s_g} | $(echo "scale=0; $SMALL / $s_g" | bc) | $(echo "scale=2; $sc_g * 1000 / $SMALL" | bc) | $(echo "scale=2; $s_o / $s_g" | bc)× |
"
if [ "$ONLY_SMALL" = 1 ]; then printf '## SFTP, one connection (%s, `bench/run-sftp.sh`, cipher %s)\n\n%s' "$(date -u +%Y-%m-%d)" "$CIPHER" "$SMALL_MD"; exit 0; fi
mk "$W/big.age" "$SIZE_MIB"
for i in $(seq "$PAR"); do mk "$W/par$i.age" "$PAR_MIB"; done
cat "$W"/*.age > /dev/null
# Warm-up, not timed.
one_ossh; one_gw; sync
: > "$W/t_o"; : > "$W/t_g"; : > "$W/c_o"; : > "$W/c_g"
for _ in $(seq "$RUNS"); do
  sync; c0=$(cpu_of "$SSHDPID"); s=$(now); one_ossh; e=$(now); c1=$(cpu_of "$SSHDPID")
  echo "scale=3; ($e - $s) / 1000000000" | bc >> "$W/t_o"; echo "scale=3; ($c1 - $c0) / $TCK" | bc >> "$W/c_o"
  sync; c0=$(cpu_of "$GWPID"); s=$(now); one_gw; e=$(now); c1=$(cpu_of "$GWPID")
  echo "scale=3; ($e - $s) / 1000000000" | bc >> "$W/t_g"; echo "scale=3; ($c1 - $c0) / $TCK" | bc >> "$W/c_g"
done
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
t_o=$(median < "$W/t_o"); t_g=$(median < "$W/t_g"); c_o=$(median < "$W/c_o"); c_g=$(median < "$W/c_g")
bytes=$(stat -c %s "$W/big.age")
mbs() { echo "scale=0; $bytes / $1 / 1000000" | bc; }
# Concurrent uploads.
sync; s=$(now)
pids=(); for i in $(seq "$PAR"); do { echo "put $W/par$i.age $W/remote/par$i.age" | ossh_put; } & pids+=($!); done; wait "${pids[@]}"
e=$(now); p_o=$(echo "scale=3; ($e - $s) / 1000000000" | bc); rm -f "$W"/remote/par*
base=$(checked); sync; s=$(now)
pids=(); for i in $(seq "$PAR"); do { echo "put $W/par$i.age /inbox/par$i.age" | gw_put; } & pids+=($!); done; wait "${pids[@]}"
wait_checked $((base + PAR)); e=$(now); p_g=$(echo "scale=3; ($e - $s) / 1000000000" | bc)
pbytes=$(cat "$W"/par*.age | wc -c)
passed=$(curl -s "http://$ADMIN/metrics" | awk '/^gateway_uploads_checked_total\{code="",result="passed"\}/ {print $NF}')
cat <<MD
## SFTP upload ($(date -u +%Y-%m-%d), \`bench/run-sftp.sh\`, cipher ${CIPHER})

One ${SIZE_MIB} MiB sealed file with the OpenSSH \`sftp\` client, median of ${RUNS} alternating runs
after a warm-up (the gateway's time runs until the file is **indexed**):

| server | seconds | MB/s | server CPU s/GiB | vs OpenSSH |
|---|---|---|---|---|
| stock OpenSSH sshd + sftp-server, raw transfer — reference | ${t_o} | $(mbs "$t_o") | $(echo "scale=2; $c_o * 1073741824 / $bytes" | bc) | 1.00× |
| gateway, put → verified, decrypted, inspected, stored, indexed | ${t_g} | $(mbs "$t_g") | $(echo "scale=2; $c_g * 1073741824 / $bytes" | bc) | $(echo "scale=2; $t_o / $t_g" | bc)× |

${PAR} concurrent uploads of ${PAR_MIB} MiB each (aggregate, until all indexed on the gateway):

| server | seconds | MB/s | vs OpenSSH |
|---|---|---|---|
| stock OpenSSH — reference | ${p_o} | $(echo "scale=0; $pbytes / $p_o / 1000000" | bc) | 1.00× |
| gateway | ${p_g} | $(echo "scale=0; $pbytes / $p_g / 1000000" | bc) | $(echo "scale=2; $p_o / $p_g" | bc)× |

${SMALL_MD}
(${passed} uploads passed their checks in this run.)
MD
