#!/usr/bin/env bash
# What isolating the inspectors costs: the standard loadtest mix, time-bounded to
# RUN_SECONDS (default 180) per run, alternately with `inspect.isolation = "process"` (the
# default) and `"in-process"`, RUNS pairs (default 1). Prints each run's throughput and
# time to indexed; the reports stay in bench/loadtest/last-isolation-<mode>-<n>.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${RUN_SECONDS:-180}; RUNS=${RUNS:-1}
S=$(mktemp /tmp/isolation.XXXXXX.toml); trap 'rm -f "$S"' EXIT
# The standard scenario, bounded in time and (proportionally) in bytes.
sed -e "s/^max_seconds = .*/max_seconds = $SECONDS_PER_RUN/" \
    -e "s/^max_bytes = 45000000000/max_bytes = $((45000000000 * SECONDS_PER_RUN / 600))/" \
    bench/loadtest/standard.toml > "$S"
for n in $(seq "$RUNS"); do
  for mode in process in-process; do
    OUT=bench/loadtest/last-isolation-$mode-$n GATEWAY_INSPECT__ISOLATION=$mode \
      bench/run-loadtest.sh "$S" > "/tmp/isolation-$mode-$n.log" 2>&1 || { tail -20 "/tmp/isolation-$mode-$n.log"; exit 1; }
    python3 - "$mode" "bench/loadtest/last-isolation-$mode-$n/report.json" <<'PY'
import json, sys
mode, path = sys.argv[1], sys.argv[2]
r = json.load(open(path))
s = r.get("summary", r)
print(mode, json.dumps({k: s[k] for k in s if isinstance(s[k], (int, float, str))})[:600])
PY
  done
done
