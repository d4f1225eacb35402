# Shared by the benchmarks: start servers, make a user, drive GetUser with h2load, report.
# Source it from a script that has set `work` (a temporary directory) and `pids` (an array).

# Waits for a line matching $2 in file $1 and prints it.
wait_line() {
  for _ in $(seq 1 300); do grep -m1 "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for $2 in $1" >&2
  return 1
}

# Starts `orderly serve --target users` on a free port over the database $BENCH_DB, with extra
# environment "${@:2}" (NAME=VALUE ...), and stores its address in the variable named $1.
# (Not in a command substitution: the server's pid must reach `pids` in this shell.)
start_users() {
  local var=$1 log="$work/orderly-$RANDOM.log"
  shift
  env "$@" RUST_LOG="${RUST_LOG:-warn,orderly_kit::server=info}" target/release/orderly serve --target users \
    --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --database-url "$BENCH_DB" >"$log" 2>&1 &
  pids+=($!)
  printf -v "$var" '%s' "$(wait_line "$log" '"listening"' | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["addr"])')"
}

# Starts `orderly up` (release, telemetry off) on free ports with its data under $work/data and its
# log in $work/up.log; stores its pid in `up_pid` and waits until it is up. Extra environment
# "$@" (NAME=VALUE ...), e.g. a RUST_LOG.
start_up() {
  env OTEL_SDK_DISABLED=true RUST_LOG=warn,orderly=info "$@" target/release/orderly up \
    --data-dir "$work/data" --admin-listen 127.0.0.1:0 --users-listen 127.0.0.1:0 --orders-listen 127.0.0.1:0 \
    --payments-listen 127.0.0.1:0 --delivery-listen 127.0.0.1:0 --gateway-listen 127.0.0.1:0 >"$work/up.log" 2>&1 &
  up_pid=$!
  pids+=($up_pid)
  wait_line "$work/up.log" '"orderly is up' >/dev/null
}

# Prints field $1 of the JSON log line of `orderly up` that matches $2.
up_field() { wait_line "$work/up.log" "$2" | python3 -c "import json,sys; print(json.loads(sys.stdin.read())[sys.argv[1]])" "$1"; }

# Creates a user through the users service at $1 and prints the hex of a GetUserRequest for it.
get_user_request() {
  python3 - "$work/create.bin" <<'PY'
import struct, sys, uuid
def field(num, s): b = s.encode(); return bytes([num << 3 | 2, len(b)]) + b
msg = field(1, "Bench User") + field(2, f"bench-{uuid.uuid4().hex[:12]}@example.com")
open(sys.argv[1], "wb").write(struct.pack(">BI", 0, len(msg)) + msg)
PY
  curl -s --http2-prior-knowledge -X POST -H 'content-type: application/grpc' -H 'te: trailers' \
    --data-binary @"$work/create.bin" -o "$work/created.bin" "http://$1/orderly.users.v1.UserService/CreateUser"
  python3 -c '
import sys
d = open(sys.argv[1], "rb").read()[5:]
assert d[0] == 0x0a and d[2] == 0x0a, "CreateUser failed"
user_id = d[4:4 + d[3]]
print((bytes([0x0a, len(user_id)]) + user_id).hex())' "$work/created.bin"
}

# Drives the unary gRPC method $2 at $1 with h2load, the request being the protobuf message whose
# hex is $3, and h2load options "${@:4}". First one call with curl prints its grpc-status trailer:
# h2load counts HTTP statuses only, and a failed gRPC call is still HTTP 200.
grpc_load() {
  local addr=$1 method=$2 hex=$3 body="$work/grpc-body-$RANDOM.bin"
  shift 3
  command -v h2load >/dev/null || { echo "h2load missing: apt-get install -y nghttp2-client" >&2; return 2; }
  python3 -c 'import struct, sys; m = bytes.fromhex(sys.argv[2]); open(sys.argv[1], "wb").write(struct.pack(">BI", 0, len(m)) + m)' \
    "$body" "$hex"
  echo "one call: $(curl -s --http2-prior-knowledge -X POST -H 'content-type: application/grpc' -H 'te: trailers' \
    --data-binary @"$body" -o /dev/null -D - "http://$addr$method" 2>/dev/null | tr -d '\r' | grep -i '^grpc-status' || echo 'no grpc-status trailer')"
  h2load "$@" -d "$body" -H 'content-type: application/grpc' -H 'te: trailers' "http://$addr$method"
}

# Drives GetUser ($2: request hex) at $1 and prints: requests/s, p50, p90, p99 (ms), failed.
measure() {
  local addr=$1 hex=$2 log="$work/h2load-$RANDOM.tsv" out
  out=$(grpc_load "$addr" /orderly.users.v1.UserService/GetUser "$hex" \
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

# Drives GET $1 over HTTP/1.1 with $conns connections and prints: requests/s, p50, p90, p99 (ms), failed.
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

# The run (a `measure` result) of median throughput among the arguments.
median() { printf '%s\n' "$@" | sort -n -k1,1 | sed -n "$(( ($# + 1) / 2 ))p"; }

# Prints a table row: label, then the five figures of `measure`.
row() { printf '%-34s %10s %9s %9s %9s %7s\n' "$@"; }

# Prints the ratio line of two `measure` results: $1 the baseline, $2 the measured, $3 a label.
ratio() {
  python3 - "$1" "$2" "$3" <<'PY'
import sys
b = list(map(float, sys.argv[1].split())); o = list(map(float, sys.argv[2].split()))
print(f"ratio {sys.argv[3]}: throughput {o[0]/b[0]:.2f}x, p50 {o[1]/b[1]:.2f}x, p99 {o[3]/b[3]:.2f}x")
PY
}
