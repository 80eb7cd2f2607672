#!/usr/bin/env bash
# Memory under concurrency and what bounding it costs: the suite's 50 OpenSSH `sftp` +
# 50 tus uploads of 16 MiB each (tests/tests/concurrency.rs) against the release
# gateway, alternately with the shared buffer budgets at their defaults
# (`sftp.write_buffer_mib = 32`, `https.upload_buffer_mib = 32`, `https.upload_write_kib =
# 256`) and effectively unbounded as before them (4096 MiB each, 1 MiB tus writes: each
# SFTP session may queue a full SSH window, each tus upload two blocks), RUNS pairs
# (default 3).
# Each SFTP connection is offered its share of the pool as SSH window (2–16 MiB).
# Prints each run's aggregate MB/s and peak RSS, then the ratio bounded / unbounded.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
cargo build --release --locked -p gateway --bin gateway >&2
cargo build --locked -p gateway-tests --tests >&2
export GATEWAY_BIN=$PWD/target/release/gateway
run() {
  local kib=256; [ "$1" = 4096 ] && kib=1024
  GATEWAY_SFTP__WRITE_BUFFER_MIB=$1 GATEWAY_HTTPS__UPLOAD_BUFFER_MIB=$1 GATEWAY_HTTPS__UPLOAD_WRITE_KIB=$kib cargo test --locked -q -p gateway-tests --test concurrency \
    -- --nocapture 2>&1 | grep -o '[0-9.]* MB/s aggregate); gateway peak RSS [0-9]* MiB' || true
}
for n in $(seq "$RUNS"); do
  for mib in 32 4096; do
    line=$(run "$mib")
    echo "run $n write_buffer_mib=$mib: $line"
  done
done | tee /tmp/concurrency-runs.txt
python3 - <<'PY'
import re, math
rows = [l for l in open('/tmp/concurrency-runs.txt')]
get = lambda mib: [float(re.search(r': ([0-9.]+) MB/s', l).group(1)) for l in rows if f'={mib}:' in l]
b, u = get(32), get(4096)
ratios = [x / y for x, y in zip(b, u) if y]
if ratios:
    g = math.exp(sum(map(math.log, ratios)) / len(ratios))
    print('bounded/unbounded per pair:', ', '.join(f'{r:.2f}x' for r in ratios), f'geomean {g:.2f}x')
PY
