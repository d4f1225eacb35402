#!/usr/bin/env bash
# GetUser throughput, latency and server CPU per call of Orderly's UserService (release build,
# SQLite, default telemetry, metrics and limits, a real server) against two bare servers answering
# the same call from memory, measured in the same run: bare tonic (examples/bare_users.rs) and bare
# grpc-go (bench/baselines/grpc-go, skipped with a message where Go is missing). Load comes from a
# second process: `orderly bench`, or h2load with DRIVER=h2load (it costs less CPU, so the servers
# get more of the two cores). Rounds alternate the servers; the medians are compared.
#
#   bench/getuser.sh [SECONDS] [CONNECTIONS] [STREAMS] [ROUNDS]      (defaults: 10 16 32 3)
#
# BENCH_DATABASE_URL=postgres://... measures on PostgreSQL (an empty or Orderly users database)
# instead of a fresh SQLite file; ORDERLY_* and OTEL_* variables reach the server as usual.
# Needs curl and python3. All traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10} conns=${2:-16} streams=${3:-32} rounds=${4:-3}

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
source bench/lib.sh
build_release --example bare_users

BENCH_DB=${BENCH_DATABASE_URL:-sqlite://$work/users.db}
start_users orderly_addr
orderly_pid=${pids[-1]}
start_baseline bare_addr target/release/examples/bare_users
bare_pid=${pids[-1]}
go_bin=$(build_go grpc-go)
if [[ -n $go_bin ]]; then
  start_baseline go_addr "$go_bin"
  go_pid=${pids[-1]}
fi
user_id=$(make_user "$orderly_addr")

driver=${DRIVER:-orderly}
backend=SQLite; [[ $BENCH_DB == postgres* ]] && backend=PostgreSQL
echo "GetUser, ${seconds}s per run, ${conns} connections x ${streams} calls in flight each, ${rounds} alternating rounds, driven by ${driver}, $(nproc) cores"
row6 server req/s p50_ms p90_ms p99_ms failed cpu_us/call
bare_runs=() go_runs=() orderly_runs=()
for round in $(seq 1 "$rounds"); do
  b=$(measure_cpu "$bare_pid" "$bare_addr" "$user_id"); bare_runs+=("$b")
  row6 "round $round: bare tonic" $b
  if [[ -n $go_bin ]]; then
    g=$(measure_cpu "$go_pid" "$go_addr" "$user_id"); go_runs+=("$g")
    row6 "round $round: bare grpc-go" $g
  fi
  o=$(measure_cpu "$orderly_pid" "$orderly_addr" "$user_id"); orderly_runs+=("$o")
  row6 "round $round: orderly users ($backend)" $o
done
b=$(median "${bare_runs[@]}") o=$(median "${orderly_runs[@]}")
row6 "median: bare tonic" $b
if [[ -n $go_bin ]]; then
  g=$(median "${go_runs[@]}")
  row6 "median: bare grpc-go" $g
fi
row6 "median: orderly users ($backend)" $o
[[ -n $go_bin ]] && ratio "$g" "$o" "orderly/grpc-go"
ratio "$b" "$o" "orderly/tonic"
cpu_ratio "$b" "$o" "orderly/tonic"
