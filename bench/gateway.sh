#!/usr/bin/env bash
# What the REST gateway costs: GET /v1/users/{id} through the gateway (HTTP/1.1, JSON) against
# GetUser called on the users service directly (gRPC) in the same `orderly up` process and run,
# and against a bare chi server answering the same path from memory (bench/baselines/chi, skipped
# with a message where Go is missing), all driven by `orderly bench` from a second process.
#
#   bench/gateway.sh [SECONDS] [CONNECTIONS] [ROUNDS]      (defaults: 10 64 3)
#
# Rounds alternate direct and gateway runs; the medians are compared.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10} conns=${2:-64} rounds=${3:-3}
# gRPC runs multiplex: conns/4 connections x 4 streams, as many calls in flight as the HTTP/1.1 runs.
streams=4

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
source bench/lib.sh
build_release

start_up RUST_LOG=warn,orderly=info,orderly_gateway=info
field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read())[sys.argv[1]].removeprefix('http://'))" "$1"; }
gateway_addr=$(wait_line "$work/up.log" '"gateway listening"' | field addr)
users_addr=$(wait_line "$work/up.log" '"service":"users"' | field url)
user_id=$(make_user "$users_addr")
curl -sf "http://$gateway_addr/v1/users/$user_id" >/dev/null
chi_bin=$(build_go chi)
[[ -n $chi_bin ]] && start_baseline chi_addr "$chi_bin"

echo "GetUser, ${seconds}s per run, ${conns} requests in flight, ${rounds} alternating rounds, orderly bench, $(nproc) cores"
row run req/s p50_ms p90_ms p99_ms failed
direct_runs=() gateway_runs=() chi_runs=()
for round in $(seq 1 "$rounds"); do
  if [[ -n $chi_bin ]]; then
    c=$(measure_http "$chi_addr" "/v1/users/$user_id")
    row "round $round: bare chi (memory)" $c
    chi_runs+=("$c")
  fi
  d=$(conns=$((conns / streams)) measure "$users_addr" "$user_id")
  g=$(measure_http "$gateway_addr" "/v1/users/$user_id")
  row "round $round: gRPC direct" $d
  row "round $round: REST via gateway" $g
  ratio "$d" "$g" "round $round gateway/direct"
  direct_runs+=("$d") gateway_runs+=("$g")
done
d=$(median "${direct_runs[@]}") g=$(median "${gateway_runs[@]}")
row "median: gRPC direct (baseline)" $d
row "median: REST via gateway" $g
ratio "$d" "$g" "median gateway/direct"
if [[ -n $chi_bin ]]; then
  c=$(median "${chi_runs[@]}")
  row "median: bare chi (memory)" $c
  ratio "$c" "$g" "median gateway/chi"
fi
