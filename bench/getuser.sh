#!/usr/bin/env bash
# GetUser throughput and latency of Orderly's UserService (release build, SQLite, real server)
# against a bare tonic handler measured in the same run, driven by h2load from a second process.
#
#   bench/getuser.sh [SECONDS] [CONNECTIONS] [STREAMS]      (defaults: 10 16 32)
#
# BENCH_DATABASE_URL=postgres://... measures on PostgreSQL (an empty or Orderly users database)
# instead of a fresh SQLite file; ORDERLY_* variables reach the server as usual.
#
# Needs h2load (Debian nghttp2-client) and python3. Prints one line per server and the ratios.
# All traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10} conns=${2:-16} streams=${3:-32}
command -v h2load >/dev/null || { echo "h2load missing: apt-get install -y nghttp2-client" >&2; exit 2; }

cargo build --release --quiet -p orderly-cli --bin orderly --example bare_users
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# Waits for a line matching $2 in file $1 and prints it.
wait_line() { for _ in $(seq 1 300); do grep -m1 "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "timed out waiting for $2 in $1" >&2; return 1; }

RUST_LOG=warn,orderly_kit::server=info target/release/orderly serve --target users --listen 127.0.0.1:0 \
  --database-url "${BENCH_DATABASE_URL:-sqlite://$work/users.db}" >"$work/orderly.log" &
pids+=($!)
orderly_addr=$(wait_line "$work/orderly.log" '"listening"' | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["addr"])')

target/release/examples/bare_users 127.0.0.1:0 >"$work/bare.log" &
pids+=($!)
bare_addr=$(wait_line "$work/bare.log" '^listening' | awk '{print $2}')

# Create one user with a raw gRPC call and read its id from the response.
python3 - "$work/create.bin" <<'PY'
import struct, sys, uuid
def field(num, s): b = s.encode(); return bytes([num << 3 | 2, len(b)]) + b
msg = field(1, "Bench User") + field(2, f"bench-{uuid.uuid4().hex[:12]}@example.com")
open(sys.argv[1], "wb").write(struct.pack(">BI", 0, len(msg)) + msg)
PY
curl -s --http2-prior-knowledge -X POST -H 'content-type: application/grpc' -H 'te: trailers' \
  --data-binary @"$work/create.bin" -o "$work/created.bin" "http://$orderly_addr/orderly.users.v1.UserService/CreateUser"
user_id=$(python3 -c 'import sys; d=open(sys.argv[1],"rb").read()[5:]; assert d[0]==0x0a and d[2]==0x0a; print(d[4:4+d[3]].decode())' "$work/created.bin")
hex=$(python3 -c 'import sys; b=sys.argv[1].encode(); print((bytes([0x0a,len(b)])+b).hex())' "$user_id")

# Runs the load against $1 and prints: requests/s, p50, p90, p99 (ms), failed requests.
measure() {
  local addr=$1 log=$work/h2load-$2.tsv out
  out=$(../shared/tools/grpc-load "$addr" /orderly.users.v1.UserService/GetUser "$hex" \
    -c "$conns" -m "$streams" -t 1 -D "$seconds" --log-file="$log" 2>&1) \
    || { echo "$out" >&2; return 1; }
  echo "$out" | grep -q "grpc-status: 0" || { echo "the probe call failed: $out" >&2; return 1; }
  python3 - "$log" "$out" <<'PY'
import re, sys
lat = sorted(int(line.split("\t")[2]) / 1000 for line in open(sys.argv[1]) if line.strip())
text = sys.argv[2]
rps = float(re.search(r"finished in [^,]+, ([\d.]+) req/s", text).group(1))
failed = int(re.search(r"(\d+) failed", text).group(1))
pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))]
print(f"{rps:.0f} {pct(50):.2f} {pct(90):.2f} {pct(99):.2f} {failed}")
PY
}

echo "GetUser, ${seconds}s per run, ${conns} connections x ${streams} streams, h2load on 1 thread, $(nproc) cores"
bare=$(measure "$bare_addr" bare)
orderly=$(measure "$orderly_addr" orderly)
printf '%-28s %10s %9s %9s %9s %7s\n' server req/s p50_ms p90_ms p99_ms failed
printf '%-28s %10s %9s %9s %9s %7s\n' "bare tonic (baseline)" $bare
backend=SQLite; [[ ${BENCH_DATABASE_URL:-} == postgres* ]] && backend=PostgreSQL
printf '%-28s %10s %9s %9s %9s %7s\n' "orderly users ($backend)" $orderly
python3 - "$bare" "$orderly" <<'PY'
import sys
b = list(map(float, sys.argv[1].split())); o = list(map(float, sys.argv[2].split()))
print(f"ratio orderly/baseline: throughput {o[0]/b[0]:.2f}x, p50 {o[1]/b[1]:.2f}x, p99 {o[3]/b[3]:.2f}x")
PY
