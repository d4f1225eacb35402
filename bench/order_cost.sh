#!/usr/bin/env bash
# What an order costs: server CPU per confirmed CreateOrder through `orderly up` on SQLite (the
# whole process, from /proc: every service and every hop of the saga), against the server CPU of
# one GetUser call on the bare tonic baseline (crates/cli/examples/bare_users.rs), in the same run.
# The goal is at most 50x.
#
#   bench/order_cost.sh [SECONDS] [ROUNDS]   (defaults: 10 3)
#   BENCH_POSTGRES_URL=postgres://USER:PASSWORD@HOST:PORT bench/order_cost.sh ...
#     the same over PostgreSQL: the five services as `orderly serve` processes, each with a fresh
#     database orderly_bench_<service> on that server (which must run on this machine: its CPU is
#     read from /proc and reported beside theirs)
#
# Rounds alternate the baseline (16 connections x 32 calls in flight), CreateOrder at 16 and at 64
# in flight (clients that honour RetryInfo); medians. All load from `orderly bench` in a second
# process; all traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10} rounds=${2:-3}
conns=16 streams=32

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
source bench/lib.sh
build_release --example bare_users

start_baseline bare_addr target/release/examples/bare_users
bare_pid=${pids[-1]}
if [[ -n ${BENCH_POSTGRES_URL:-} ]]; then
  # The five services as processes of their own over PostgreSQL, which shares the cores: their CPU
  # is the Orderly figure, PostgreSQL's (every postgres process) is reported beside it.
  start_suite_pg "$BENCH_POSTGRES_URL"
  server_pids=("${suite_pids[@]}") backend=PostgreSQL
else
  start_up
  users_url=$(up_url users)
  orders_url=$(up_url orders)
  server_pids=("$up_pid") backend=SQLite
fi

# CPU time (clock ticks) of the server processes so far; with PostgreSQL, then that of postgres.
ticks() {
  local pid total=0 db=0
  for pid in "${server_pids[@]}"; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  if [[ $backend == PostgreSQL ]]; then
    for pid in $(pgrep -x postgres); do
      db=$((db + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
  fi
  echo "$total $db"
}

# CreateOrder with $1 in flight for $seconds; prints: confirmed/s, p50, p99 (ms), refused, the
# servers' CPU per confirmed order in microseconds, and PostgreSQL's (0 on SQLite).
orders() {
  local before after run
  before=$(ticks)
  run=$(create_orders "$1" "$seconds" --honor-retry-info)
  after=$(ticks)
  python3 - "$run" $before $after "$(getconf CLK_TCK)" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); ok = max(r["accepted"], 1)
b, bdb, a, adb, tick = (float(x) for x in sys.argv[2:7])
print("%.1f %.2f %.2f %d %.1f %.1f" % (r["goodput"], r["p50_ms"], r["p99_ms"], r["shed"],
  (a - b) / tick / ok * 1e6, (adb - bdb) / tick / ok * 1e6))
PY
}

orders 4 >/dev/null   # warm up: connections, caches, the limiter's baseline
echo "server CPU per call ($backend), ${seconds}s per run, ${rounds} alternating rounds, orderly bench, $(nproc) cores"
bares=() o16=() o64=()
for round in $(seq 1 "$rounds"); do
  b=$(measure_cpu "$bare_pid" "$bare_addr" bench); bares+=("$b")
  a=$(orders 16); o16+=("$a")
  c=$(orders 64); o64+=("$c")
  echo "round $round: bare tonic GetUser $(echo "$b" | awk '{print $1 " calls/s, " $6 " us/call"}');" \
    "CreateOrder x16 $(echo "$a" | awk '{print $1 " orders/s, " $5 " us/order"}');" \
    "x64 $(echo "$c" | awk '{print $1 " orders/s, " $5 " us/order"}')"
done
python3 - "$rounds" "${bares[@]}" "${o16[@]}" "${o64[@]}" <<'PY'
import statistics, sys
n = int(sys.argv[1]); runs = [a.split() for a in sys.argv[2:]]
bare, o16, o64 = runs[:n], runs[n:2 * n], runs[2 * n:]
med = lambda rs, i: statistics.median(float(r[i]) for r in rs)
b = med(bare, 5)
print(f"medians: bare tonic GetUser {b:.1f} us/call ({med(bare, 0):.0f} calls/s)")
for label, rs in (("16", o16), ("64", o64)):
    print(f"  CreateOrder at {label} in flight: {med(rs, 0):.0f} confirmed/s, p50 {med(rs, 1):.2f} ms, "
          f"p99 {med(rs, 2):.2f} ms, {med(rs, 4):.0f} us of server CPU per order = {med(rs, 4) / b:.0f}x a bare GetUser (goal <= 50x)"
          + (f"; PostgreSQL {med(rs, 5):.0f} us per order besides" if med(rs, 5) else ""))
PY
