#!/usr/bin/env bash
# Overload: CreateOrder through `orderly up` at ten times the concurrency that gives the most
# confirmed orders per second, against that peak and against a lightly loaded run, in one process
# and one run. Accepted calls should keep their latency (p99 at most 2x the light run's) and
# goodput should hold (at least 90% of the peak): excess calls are shed, not queued.
#
#   bench/overload.sh [SECONDS] [LIGHT] [ROUNDS]   (defaults: 10 4 3)
#   TLS=1 bench/overload.sh ...                     (every hop, and the load, over mutual TLS)
#
# A sweep (LIGHT, 2x, 4x, 8x, 16x in flight) finds the concurrency of the peak; then ROUNDS rounds
# each run the light load, the peak's and ten times the peak's, one after the other, and the ratios
# are of the three medians: this machine's throughput drifts by ±10% between runs a minute apart,
# and one run's maximum would be a lucky draw rather than the peak.
#
# The load is `orderly bench create-order --honor-retry-info` (closed loop, a fresh idempotency key
# per call, a shed caller waiting its RetryInfo delay), from a second process; latencies are the
# accepted calls'. All traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10} light=${2:-4} rounds=${3:-3}

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
source bench/lib.sh
build_release

start_up
bench_tls=""
[[ ${TLS:-0} == 1 ]] && bench_tls="--tls-dir $work/data/tls"
users_url=$(up_url users)
orders_url=$(up_url orders)

# One run: $1 callers for $2 seconds, a shed caller waiting its RetryInfo delay (see create_orders).
load() { create_orders "$1" "$2" --honor-retry-info $bench_tls; }

load "$light" 3 >/dev/null   # warm up: connections, caches, the limiter's baseline
echo "CreateOrder through orderly up (SQLite, $([[ ${TLS:-0} == 1 ]] && echo mutual TLS || echo plaintext)), ${seconds}s per run, $(nproc) cores, load from a second process"
printf '%-12s %10s %10s %10s %10s %8s %8s\n' in_flight confirmed/s p50_ms p99_ms accepted shed failed
report() { printf '%-12s %10s %10s %10s %10s %8s %8s\n' "$1" "$(get "$2" goodput)" "$(get "$2" p50_ms)" \
  "$(get "$2" p99_ms)" "$(get "$2" accepted)" "$(get "$2" shed)" "$(get "$2" failed)"; }

echo "sweep"
peak_run='{"goodput": 0}' peak_at=$light
for c in $light $((light * 2)) $((light * 4)) $((light * 8)) $((light * 16)); do
  run=$(load "$c" "$seconds"); report "$c" "$run"
  if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)" \
      "$(get "$run" goodput)" "$(get "$peak_run" goodput)"; then peak_run=$run peak_at=$c; fi
done
over=$((peak_at * 10))
lights=() peaks=() overs=()
for round in $(seq 1 "$rounds"); do
  echo "round $round"
  run=$(load "$light" "$seconds"); report "$light" "$run"; lights+=("$run")
  run=$(load "$peak_at" "$seconds"); report "$peak_at" "$run"; peaks+=("$run")
  run=$(load "$over" "$seconds"); report "$over" "$run"; overs+=("$run")
done
python3 - "$peak_at" "$over" "$(get "$peak_run" goodput)" "${#lights[@]}" "${lights[@]}" "${peaks[@]}" "${overs[@]}" <<'PY'
import json, statistics, sys
peak_at, over_at, swept, n = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
runs = [json.loads(a) for a in sys.argv[5:]]
light, peak, over = runs[:n], runs[n:2 * n], runs[2 * n:]
med = lambda rs, k: statistics.median(r[k] for r in rs)
print(f"medians of {n} rounds: lightly loaded p99 {med(light, 'p99_ms'):.2f} ms; "
      f"peak {med(peak, 'goodput'):.1f}/s at {peak_at} in flight; at {over_at} in flight (10x):")
print(f"  accepted p50 {med(over, 'p50_ms'):.2f} ms, p99 {med(over, 'p99_ms'):.2f} ms: "
      f"{med(over, 'p99_ms') / med(light, 'p99_ms'):.2f}x the light run's p99 (target <= 2x)")
print(f"  goodput {med(over, 'goodput'):.1f}/s: {med(over, 'goodput') / med(peak, 'goodput'):.2f} of the peak (target >= 0.9);"
      f" {med(over, 'goodput') / swept:.2f} of the sweep's best single run ({swept}/s, before the limiter had learned anything)")
PY
