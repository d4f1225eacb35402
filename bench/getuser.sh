#!/usr/bin/env bash
# GetUser throughput and latency of Orderly's UserService (release build, SQLite, real server)
# against a bare tonic handler measured in the same run, driven by h2load from a second process.
#
#   bench/getuser.sh [SECONDS] [CONNECTIONS] [STREAMS]      (defaults: 10 16 32)
#
# BENCH_DATABASE_URL=postgres://... measures on PostgreSQL (an empty or Orderly users database)
# instead of a fresh SQLite file; ORDERLY_* variables reach the server as usual.
# Needs h2load (Debian nghttp2-client) and python3. All traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10} conns=${2:-16} streams=${3:-32}
command -v h2load >/dev/null || { echo "h2load missing: apt-get install -y nghttp2-client" >&2; exit 2; }
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
hex=$(get_user_request "$orderly_addr")

echo "GetUser, ${seconds}s per run, ${conns} connections x ${streams} streams, h2load on 1 thread, $(nproc) cores"
bare=$(measure "$bare_addr" "$hex")
orderly=$(measure "$orderly_addr" "$hex")
backend=SQLite; [[ $BENCH_DB == postgres* ]] && backend=PostgreSQL
row server req/s p50_ms p90_ms p99_ms failed
row "bare tonic (baseline)" $bare
row "orderly users ($backend)" $orderly
ratio "$bare" "$orderly" "orderly/baseline"
