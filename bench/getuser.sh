#!/usr/bin/env bash
# GetUser throughput and latency of Orderly's UserService (release build, SQLite, real server)
# against a bare tonic handler measured in the same run, driven by `orderly bench` from a second
# process; where h2load is installed, h2load against the same bare handler states the load tool's
# own cost (what each can drive on this machine).
#
#   bench/getuser.sh [SECONDS] [CONNECTIONS] [STREAMS]      (defaults: 10 16 32)
#
# BENCH_DATABASE_URL=postgres://... measures on PostgreSQL (an empty or Orderly users database)
# instead of a fresh SQLite file; ORDERLY_* variables reach the server as usual.
# Needs curl and python3. All traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10} conns=${2:-16} streams=${3:-32}
cargo build --release --quiet -p orderly-cli --bin orderly --example bare_users

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
source bench/lib.sh

BENCH_DB=${BENCH_DATABASE_URL:-sqlite://$work/users.db}
start_users orderly_addr OTEL_SDK_DISABLED=true
target/release/examples/bare_users 127.0.0.1:0 >"$work/bare.log" 2>&1 &
pids+=($!)
bare_addr=$(wait_line "$work/bare.log" '^listening' | awk '{print $2}')
user_id=$(make_user "$orderly_addr")

echo "GetUser, ${seconds}s per run, ${conns} connections x ${streams} calls in flight each, orderly bench, $(nproc) cores"
bare=$(measure "$bare_addr" "$user_id")
orderly=$(measure "$orderly_addr" "$user_id")
backend=SQLite; [[ $BENCH_DB == postgres* ]] && backend=PostgreSQL
row server req/s p50_ms p90_ms p99_ms failed
row "bare tonic (baseline)" $bare
row "orderly users ($backend)" $orderly
ratio "$bare" "$orderly" "orderly/baseline"
if command -v h2load >/dev/null; then
  row "bare tonic, driven by h2load" $(measure_h2load "$bare_addr" "$user_id")
fi
