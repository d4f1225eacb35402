#!/usr/bin/env bash
# What the REST gateway costs: GET /v1/users/{id} through the gateway (HTTP/1.1, JSON) against
# GetUser called on the users service directly (gRPC) in the same `orderly up` process and run,
# both driven by h2load from a second process.
#
#   bench/gateway.sh [SECONDS] [CONNECTIONS] [ROUNDS]      (defaults: 10 64 3)
#
# Rounds alternate direct and gateway runs; the medians are compared. Needs h2load (Debian
# nghttp2-client) and python3. All traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10} conns=${2:-64} rounds=${3:-3}
# gRPC runs multiplex: conns/4 connections x 4 streams, as many calls in flight as the HTTP/1.1 runs.
streams=4
command -v h2load >/dev/null || { echo "h2load missing: apt-get install -y nghttp2-client" >&2; exit 2; }
cargo build --release --quiet -p orderly-cli --bin orderly

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
source bench/lib.sh

OTEL_SDK_DISABLED=true RUST_LOG=warn,orderly=info,orderly_gateway=info target/release/orderly up \
  --data-dir "$work/data" --admin-listen 127.0.0.1:0 --users-listen 127.0.0.1:0 --orders-listen 127.0.0.1:0 \
  --payments-listen 127.0.0.1:0 --delivery-listen 127.0.0.1:0 --gateway-listen 127.0.0.1:0 >"$work/up.log" 2>&1 &
pids+=($!)
field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read())[sys.argv[1]].removeprefix('http://'))" "$1"; }
gateway_addr=$(wait_line "$work/up.log" '"gateway listening"' | field addr)
users_addr=$(wait_line "$work/up.log" '"service":"users"' | field url)
hex=$(get_user_request "$users_addr")
user_id=$(python3 -c 'import sys; b = bytes.fromhex(sys.argv[1]); print(b[2:].decode())' "$hex")
curl -sf "http://$gateway_addr/v1/users/$user_id" >/dev/null

# Drives GET $1 over HTTP/1.1 and prints: requests/s, p50, p90, p99 (ms), failed.
measure_http() {
  local log="$work/h1-$RANDOM.tsv" out
  out=$(h2load --h1 -c "$conns" -t 1 -D "$seconds" --log-file="$log" "$1" 2>&1) || { echo "$out" >&2; return 1; }
  echo "$out" | grep -qE "status codes: [1-9][0-9]* 2xx" || { echo "no successful requests: $out" >&2; return 1; }
  python3 - "$log" "$out" <<'PY'
import re, sys
lat = sorted(int(line.split("\t")[2]) / 1000 for line in open(sys.argv[1]) if line.strip())
text = sys.argv[2]
rps = float(re.search(r"finished in [^,]+, ([\d.]+) req/s", text).group(1))
failed = int(re.search(r"(\d+) failed", text).group(1)) + int(re.search(r"(\d+) 4xx, (\d+) 5xx", text).group(2))
pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))]
print(f"{rps:.0f} {pct(50):.2f} {pct(90):.2f} {pct(99):.2f} {failed}")
PY
}

echo "GetUser, ${seconds}s per run, ${conns} requests in flight, ${rounds} alternating rounds, h2load on 1 thread, $(nproc) cores"
row run req/s p50_ms p90_ms p99_ms failed
direct_runs=() gateway_runs=()
for round in $(seq 1 "$rounds"); do
  conns_saved=$conns; conns=$((conns / streams))
  d=$(measure "$users_addr" "$hex"); conns=$conns_saved
  g=$(measure_http "http://$gateway_addr/v1/users/$user_id")
  row "round $round: gRPC direct" $d
  row "round $round: REST via gateway" $g
  ratio "$d" "$g" "round $round gateway/direct"
  direct_runs+=("$d") gateway_runs+=("$g")
done
median() { printf '%s\n' "$@" | sort -n -k1,1 | sed -n "$(( ($# + 1) / 2 ))p"; }
d=$(median "${direct_runs[@]}") g=$(median "${gateway_runs[@]}")
row "median: gRPC direct (baseline)" $d
row "median: REST via gateway" $g
ratio "$d" "$g" "median gateway/direct"
