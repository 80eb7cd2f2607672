#!/usr/bin/env bash
# One node on the scale-out engines beside one on the embedded defaults, in one run,
# same machine, same clients:
#   1. bench/run-sftp.sh (OpenSSH `sftp`, each with its own stock-sshd reference) against
#      a gateway on the embedded defaults (SQLite, local objects), then against one on
#      PostgreSQL + an S3-compatible store (`moto` in server mode, as the tests use) with
#      partial-upload checkpoints on: 1 GiB until indexed, 8 concurrent, small files/s;
#   2. STOW-RS instances/s to indexed (bench/dicomweb_load.py) on both;
#   3. catalog round trips per small upload on PostgreSQL: statements executed
#      (pg_stat_statements, transaction control included) per upload of a small-file run.
# Prints a Markdown section for bench/RESULTS.md. Needs root (sshd, the postgres user).
# SIZE_MIB, RUNS, PAR, PAR_MIB, SMALL as for run-sftp.sh (defaults here: 1024, 1, 8, 256,
# 2000); STOW_COUNT (1000).
set -euo pipefail
cd "$(dirname "$0")/.."
export SIZE_MIB=${SIZE_MIB:-1024} RUNS=${RUNS:-1} PAR=${PAR:-8} PAR_MIB=${PAR_MIB:-256} SMALL=${SMALL:-2000}
STOW_COUNT=${STOW_COUNT:-1000}
scripts/test-setup.sh > /dev/null
cargo build --release --locked -p gateway --bin gateway >&2
export GW=$PWD/target/release/gateway
W=$(mktemp -d /var/tmp/gwscale.XXXXXX)
chown postgres "$W"
PGPID=; MOTOPID=
cleanup() { kill $PGPID $MOTOPID 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PGPORT=$(free_port); S3PORT=$(free_port)
runuser -u postgres -- "$PGBIN/initdb" -A trust -U gateway -E UTF8 -D "$W/pg" > /dev/null
# PostgreSQL's defaults (fsync on, synchronous_commit on): the same promise as the
# embedded catalog's synchronous = full.
runuser -u postgres -- "$PGBIN/postgres" -D "$W/pg" -k "$W" -p "$PGPORT" \
  -c listen_addresses=127.0.0.1 -c shared_preload_libraries=pg_stat_statements \
  > "$W/pg.log" 2>&1 & PGPID=$!
for _ in $(seq 100); do "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT" && break; sleep 0.1; done
psql() { "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U gateway -v ON_ERROR_STOP=1 -qtA "$@"; }
# One database per run below: a run's names (s0001.age …) must not meet the accepted
# uploads of the one before (rule 10).
for db in sftp rt stow pglocal; do psql -d postgres -c "CREATE DATABASE $db" > /dev/null; done
psql -d rt -c "CREATE EXTENSION pg_stat_statements" > /dev/null
(cd "$W" && moto_server -H 127.0.0.1 -p "$S3PORT" > "$W/moto.log" 2>&1) & MOTOPID=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$S3PORT/" && break; sleep 0.1; done
curl -s -X PUT "http://127.0.0.1:$S3PORT/gateway" > /dev/null
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret
scale_config() {  # $1: database
  printf '[catalog]\nurl = "postgres://gateway@127.0.0.1:%s/%s"\n[objects]\nurl = "s3://gateway/%s"\nendpoint = "http://127.0.0.1:%s"\nregion = "us-east-1"\n' \
    "$PGPORT" "$1" "$1" "$S3PORT"
}

embedded=$(bench/run-sftp.sh | tee "${TMPDIR:-/tmp}/scaleout-embedded.md")
pg_local=$(GW_CONFIG_EXTRA="$(printf '[catalog]\nurl = "postgres://gateway@127.0.0.1:%s/pglocal"\n' "$PGPORT")" bench/run-sftp.sh | tee "${TMPDIR:-/tmp}/scaleout-pglocal.md")
scaled=$(GW_CONFIG_EXTRA="$(scale_config sftp)" bench/run-sftp.sh | tee "${TMPDIR:-/tmp}/scaleout-scaled.md")
# Round trips: a small-file run alone, statements counted from zero.
psql -d rt -c "SELECT pg_stat_statements_reset()" > /dev/null
small=$(ONLY_SMALL=1 GW_CONFIG_EXTRA="$(scale_config rt)" bench/run-sftp.sh)
uploads=$(psql -d rt -c "SELECT COUNT(*) FROM uploads")
calls=$(psql -d rt -c "SELECT SUM(calls) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'rt' AND query NOT LIKE '%pg_stat_statements%'")
top=$(psql -d rt -F ' | ' -c "SELECT calls, left(regexp_replace(query, '\s+', ' ', 'g'), 70) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'rt' ORDER BY calls DESC LIMIT 8" | sed 's/^/| /; s/$/ |/')

stow() {  # $1: extra config; prints instances/s
  local d; d=$(mktemp -d "$W/stow.XXXX")
  local tok; tok=bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  printf '[[tenant]]\ncode = "3501200000"\nname = "Bench"\nprofile = "generic"\ntoken_hashes = ["sha256:%s"]\nallow_ips = ["127.0.0.0/8"]\n' \
    "$(printf '%s' "$tok" | openssl dgst -sha256 -r | cut -d' ' -f1)" > "$d/tenants.toml"
  printf '[server]\ndata_dir = "%s/data"\ntenants_file = "%s/tenants.toml"\n[sftp]\nlisten = "127.0.0.1:0"\n[https]\nlisten = "127.0.0.1:0"\n[admin]\nlisten = "127.0.0.1:0"\n[log]\nlevel = "warn"\n%s\n' \
    "$d" "$d" "$1" > "$d/gateway.toml"
  "$GW" serve --config "$d/gateway.toml" > "$d/gateway.log" 2>&1 & local pid=$!
  for _ in $(seq 100); do [ -f "$d/data/run/listeners.json" ] && break; sleep 0.1; done
  local https; https=$(python3 -c "import json;print(json.load(open('$d/data/run/listeners.json'))['https'])")
  python3 bench/dicomweb_load.py stow "https://$https/dicomweb" "$tok" "$d/data/keys/tls-cert.pem" "$STOW_COUNT" 4 50 \
    | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["per_second"], "(%d stored, %d failed, %.1f s)" % (r["stored"], r["failed"], r["seconds"]))'
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
stow_embedded=$(stow "")
stow_scaled=$(stow "$(scale_config stow)")

cat <<MD
## Scale-out engines beside the embedded defaults ($(date -u +%Y-%m-%d), \`bench/run-scaleout.sh\`)

One gateway node, the same clients, in one run: first on the embedded defaults (SQLite,
local objects), then on PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') (fsync on) and an S3-compatible
store (moto $(moto_server --version 2>/dev/null | awk '{print $NF}' || true) on loopback) with partial-upload checkpoints on.
Each SFTP section carries its own stock-sshd reference, measured in the same run.

### Embedded (SQLite + local directory)

${embedded}

### PostgreSQL, objects on the node's disk (no checkpoints: the catalog's own cost)

${pg_local}

### PostgreSQL + S3 (moto), checkpoints on

${scaled}

### STOW-RS, ${STOW_COUNT} instances, 4 clients × 50 per request, to indexed

| backends | instances/s | vs embedded |
|---|---|---|
| embedded | ${stow_embedded} | 1.00× |
| PostgreSQL + S3 | ${stow_scaled} | $(echo "scale=2; ${stow_scaled%% *} / ${stow_embedded%% *}" | bc)× |

### Catalog round trips per upload on PostgreSQL

${small}

${calls} statements for ${uploads} small uploads: **$(echo "scale=1; $calls / $uploads" | bc) per upload**
(each a round trip; transaction control and the lease renewals included). The most frequent:

| calls | statement |
|---|---|
${top}
MD
