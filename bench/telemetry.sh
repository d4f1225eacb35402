#!/usr/bin/env bash
# The cost of telemetry on GetUser: the same users service with tracing off (OTEL_SDK_DISABLED)
# and on (10% of traces sampled, exported over OTLP to a local sink), measured in the same run by
# orderly bench from a second process; the ratio is the figure that matters (goal: within 10%).
#
#   bench/telemetry.sh [SECONDS] [CONNECTIONS] [STREAMS] [ROUNDS]    (defaults: 10 16 32 3)
#
# This machine is noisy (the same server measures ±30% from one run to the next), so off and on
# alternate for ROUNDS rounds and the ratio is taken between the medians.
#
# Needs curl and python3. All traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10} conns=${2:-16} streams=${3:-32} rounds=${4:-3}

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
source bench/lib.sh
build_release --example otlp_sink

target/release/examples/otlp_sink 127.0.0.1:0 >"$work/sink.log" 2>&1 &
pids+=($!)
sink_addr=$(wait_line "$work/sink.log" '^listening' | awk '{print $2}')

BENCH_DB=sqlite://$work/users.db
start_users off_addr OTEL_SDK_DISABLED=true
start_users on_addr OTEL_EXPORTER_OTLP_ENDPOINT="http://$sink_addr" OTEL_TRACES_SAMPLER=traceidratio OTEL_TRACES_SAMPLER_ARG=0.1
user_id=$(make_user "$off_addr")

echo "GetUser, ${seconds}s per run, ${conns} connections x ${streams} streams, orderly bench, $(nproc) cores"
row server req/s p50_ms p90_ms p99_ms failed
offs=() ons=()
for round in $(seq 1 "$rounds"); do
  off=$(measure "$off_addr" "$user_id"); offs+=("$off"); row "telemetry off (round $round)" $off
  on=$(measure "$on_addr" "$user_id"); ons+=("$on"); row "telemetry on, 10% (round $round)" $on
done
off=$(median "${offs[@]}") on=$(median "${ons[@]}")
row "telemetry off (median)" $off
row "telemetry on, 10% (median)" $on
ratio "$off" "$on" "on/off (medians)"
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
grep received "$work/sink.log" || true
