#!/usr/bin/env bash
# The load shedder's recovery after overload: CreateOrder through `orderly up`, in one process.
# Short runs at a modest concurrency (BURST in flight for a second, shed callers waiting their
# RetryInfo) before an overload episode, then the episode (OVERLOAD in flight for SECONDS, from a
# client that re-sends a refused call at once), then the same short runs once a second for 30 s:
# the share of calls shed in each says how long the limiter remembers the episode. Before it, the
# short runs are not shed; afterwards they should be admitted again within a few seconds.
#
#   bench/recovery.sh [SECONDS] [BURST] [OVERLOAD]   (defaults: 10 16 320)
#
# All traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10} burst=${2:-16} overload=${3:-320}

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
source bench/lib.sh
[[ ${SKIP_BUILD:-0} == 1 ]] || build_release

start_up
users_url=$(up_url users)
orders_url=$(up_url orders)

# One run: $1 callers for $2 seconds, $3 extra flags; prints "accepted shed" (see create_orders).
load() {
  local run
  run=$(create_orders "$1" "$2" $3)
  echo "$(get "$run" accepted) $(get "$run" shed)"
}
short() {
  read -r ok shed < <(load "$burst" 1 --honor-retry-info)
  python3 -c 'import sys; ok, shed = int(sys.argv[1]), int(sys.argv[2]); print(f"{ok:>9} {shed:>6} {100 * shed / max(ok + shed, 1):>6.1f}%")' "$ok" "$shed"
}

echo "CreateOrder through orderly up (SQLite, plaintext), $(nproc) cores: $burst in flight for 1 s, before and after $overload in flight for ${seconds}s"
printf '%-16s %9s %6s %7s\n' when accepted shed shed%
load 4 3 --honor-retry-info >/dev/null   # warm up
for i in 1 2 3; do printf '%-16s %s\n' "before $i" "$(short)"; done
read -r ok shed < <(load "$overload" "$seconds" "")
printf '%-16s %9s %6s   (re-sent at once)\n' "overload" "$ok" "$shed"
ended=$(date +%s.%N)
for _ in $(seq 1 30); do
  printf '%-16s %s\n' "after $(python3 -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):.0f} s')" "$ended")" "$(short)"
done
