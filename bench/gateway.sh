#!/usr/bin/env bash
# What the REST gateway costs: GET /v1/users/{id} through the gateway (HTTP/1.1, JSON, one
# loopback gRPC hop to the users service) against, in the same run:
# - the article's Go stack doing the same hop: chi calling the grpc-go baseline over loopback
#   (bench/baselines/chi-grpc -> bench/baselines/grpc-go; the target is 1.0x);
# - its Rust limit: axum calling the bare tonic baseline over loopback, no layers
#   (crates/cli/examples/bare_rest.rs -> bare_users.rs);
# - GetUser called on the users service directly (gRPC), and a bare chi answering from memory;
# all driven by `orderly bench` from a second process. The Go rows are skipped, with a message,
# where Go or Debian's packages are missing.
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
build_release --example bare_users --example bare_rest

start_up RUST_LOG=warn,orderly=info,orderly_gateway=info
field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read())[sys.argv[1]].removeprefix('http://'))" "$1"; }
gateway_addr=$(wait_line "$work/up.log" '"gateway listening"' | field addr)
users_addr=$(wait_line "$work/up.log" '"service":"users"' | field url)
user_id=$(make_user "$users_addr")
curl -sf "http://$gateway_addr/v1/users/$user_id" >/dev/null
chi_bin=$(build_go chi)
[[ -n $chi_bin ]] && start_baseline chi_addr "$chi_bin"
grpc_go_bin=$(build_go grpc-go) chi_grpc_bin=$(build_go chi-grpc)
if [[ -n $grpc_go_bin && -n $chi_grpc_bin ]]; then
  start_baseline grpc_go_addr "$grpc_go_bin"
  start_baseline chi_grpc_addr "$chi_grpc_bin" "$grpc_go_addr"
else
  chi_grpc_bin=""
fi
start_baseline bare_users_addr target/release/examples/bare_users
start_baseline bare_rest_addr target/release/examples/bare_rest "http://$bare_users_addr"

echo "GetUser, ${seconds}s per run, ${conns} requests in flight, ${rounds} alternating rounds, orderly bench, $(nproc) cores"
row run req/s p50_ms p90_ms p99_ms failed
direct_runs=() gateway_runs=() chi_runs=() chi_grpc_runs=() bare_rest_runs=()
for round in $(seq 1 "$rounds"); do
  if [[ -n $chi_bin ]]; then
    c=$(measure_http "$chi_addr" "/v1/users/$user_id")
    row "round $round: bare chi (memory)" $c
    chi_runs+=("$c")
  fi
  if [[ -n $chi_grpc_bin ]]; then
    c=$(measure_http "$chi_grpc_addr" "/v1/users/$user_id")
    row "round $round: chi -> grpc-go" $c
    chi_grpc_runs+=("$c")
  fi
  b=$(measure_http "$bare_rest_addr" "/v1/users/$user_id")
  row "round $round: axum -> tonic" $b
  bare_rest_runs+=("$b")
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
b=$(median "${bare_rest_runs[@]}")
row "median: axum -> tonic (Rust limit)" $b
ratio "$b" "$g" "median gateway/(axum -> tonic)"
if [[ -n $chi_grpc_bin ]]; then
  c=$(median "${chi_grpc_runs[@]}")
  row "median: chi -> grpc-go (Go stack)" $c
  ratio "$c" "$g" "median gateway/(chi -> grpc-go), target >= 1.0"
fi
