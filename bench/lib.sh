# Shared by the benchmarks: start servers, make a user, drive GetUser with `orderly bench` (h2load
# as a cross-check where installed), report.
# Source it from a script that has set `work` (a temporary directory) and `pids` (an array).

# `orderly bench` looks for a suite's certificates under its data directory (`data` by default):
# point it at the benchmark's own, so that a developer's ./data from an earlier `orderly up` does
# not turn its calls to a plaintext suite into TLS.
export ORDERLY_DATA_DIR="$work/data"

# Builds the release `orderly` binary the benchmarks run, with the allocator the container image
# ships (jemalloc), and any extra targets "$@" (e.g. --example bare_users).
build_release() {
  cargo build --release --quiet -p orderly-cli --features jemalloc --bin orderly "$@"
}

# Builds the Go baseline bench/baselines/$1 into $work/$1 (GOPATH mode, against Debian's Go
# packages under /usr/share/gocode: no module proxy) and prints its path; prints nothing, with the
# reason on stderr, where Go or those packages are missing (the benchmark then skips that row).
build_go() {
  if ! command -v go >/dev/null; then
    echo "skipped: the $1 baseline needs Go (Debian: golang-go and the package its main.go names)" >&2
    return 0
  fi
  if ! (cd "bench/baselines/$1" && GOPATH=/usr/share/gocode GO111MODULE=off GOCACHE="$work/go-cache" \
      go build -o "$work/$1" . >"$work/go-build-$1.log" 2>&1); then
    echo "skipped: the $1 baseline did not build (see its main.go for the Debian packages it needs):" >&2
    sed 's/^/  /' "$work/go-build-$1.log" >&2
    return 0
  fi
  echo "$work/$1"
}

# Starts the baseline binary $2 on a free port (with any further arguments "${@:3}") and stores its
# address in the variable named $1.
start_baseline() {
  local var=$1 log="$work/baseline-$RANDOM.log"
  "$2" 127.0.0.1:0 "${@:3}" >"$log" 2>&1 &
  pids+=($!)
  printf -v "$var" '%s' "$(wait_line "$log" '^listening' | awk '{print $2}')"
}

# Waits for a line matching $2 in file $1 and prints it.
wait_line() {
  for _ in $(seq 1 300); do grep -m1 "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for $2 in $1" >&2
  return 1
}

# Starts `orderly serve --target users` on a free port over the database $BENCH_DB, with extra
# environment "${@:2}" (NAME=VALUE ...), and stores its address in the variable named $1. It accepts
# every caller (--insecure-no-auth) unless $AUTH_ARGS gives other flags (e.g. --jwks-file FILE), and
# speaks plaintext (--insecure-plaintext) unless $TLS_ARGS gives other flags (--tls-dir DIR).
# (Not in a command substitution: the server's pid must reach `pids` in this shell.)
start_users() {
  local var=$1 log="$work/orderly-$RANDOM.log"
  shift
  env "$@" RUST_LOG="${RUST_LOG:-warn,orderly_kit::server=info}" target/release/orderly serve --target users ${AUTH_ARGS:---insecure-no-auth} ${TLS_ARGS:---insecure-plaintext} \
    --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --database-url "$BENCH_DB" >"$log" 2>&1 &
  pids+=($!)
  printf -v "$var" '%s' "$(wait_line "$log" '"listening"' | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["addr"])')"
}

# Starts `orderly up` (release, telemetry off, accepting every caller, in plaintext unless TLS=1:
# then over the certificates it makes under $work/data/tls) on free ports with its data under
# $work/data and its log in $work/up.log; stores its pid in `up_pid` and waits until it is up.
# Extra environment "$@" (NAME=VALUE ...), e.g. a RUST_LOG.
start_up() {
  local plaintext=--insecure-plaintext
  [[ ${TLS:-0} == 1 ]] && plaintext=""
  env OTEL_SDK_DISABLED=true RUST_LOG=warn,orderly=info "$@" target/release/orderly up --insecure-no-auth $plaintext \
    --data-dir "$work/data" --admin-listen 127.0.0.1:0 --users-listen 127.0.0.1:0 --orders-listen 127.0.0.1:0 \
    --payments-listen 127.0.0.1:0 --delivery-listen 127.0.0.1:0 --catalog-listen 127.0.0.1:0 --gateway-listen 127.0.0.1:0 >"$work/up.log" 2>&1 &
  up_pid=$!
  pids+=($up_pid)
  wait_line "$work/up.log" '"orderly is up' >/dev/null
}

# Starts the five gRPC services as `orderly serve` processes (release, telemetry off, plaintext,
# accepting every caller) over PostgreSQL: $1 is a URL of the server whose databases
# orderly_bench_<service> it creates afresh (e.g. postgres://postgres:PASSWORD@127.0.0.1:5432).
# Sets users_url and orders_url, and suite_pids to the five processes (the first is users).
start_suite_pg() {
  local base=$1 name db log addr extra
  suite_pids=()
  declare -A urls=()
  for name in users catalog payments delivery orders; do
    db="orderly_bench_$name"
    PGOPTIONS="-c client_min_messages=warning" psql -q "$base/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
    log="$work/serve-$name.log" extra=()
    [[ $name == catalog ]] && extra=(--demo-catalog)
    [[ $name == orders ]] && extra=(--users-url "${urls[users]}" --catalog-url "${urls[catalog]}" \
      --payments-url "${urls[payments]}" --delivery-url "${urls[delivery]}")
    env OTEL_SDK_DISABLED=true RUST_LOG=warn,orderly_kit::server=info target/release/orderly serve --target "$name" \
      --insecure-no-auth --insecure-plaintext --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
      --database-url "$base/$db" "${extra[@]}" >"$log" 2>&1 &
    pids+=($!) suite_pids+=($!)
    addr=$(wait_line "$log" '"listening"' | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["addr"])')
    urls[$name]="http://$addr"
  done
  users_url=${urls[users]} orders_url=${urls[orders]}
}

# Prints the URL of service $1 (users, orders, ..., gateway) from `orderly up`'s line listing them.
up_url() {
  wait_line "$work/up.log" '"orderly is up' | python3 -c "
import json, sys
line = json.loads(sys.stdin.read())
print(dict(pair.split('=', 1) for pair in line['services'].split())[sys.argv[1]])" "$1"
}

# Creates a user through the users service at $1 and prints its id.
make_user() {
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
print(d[4:4 + d[3]].decode())' "$work/created.bin"
}

# One closed-loop CreateOrder run through `orderly up` ($users_url, $orders_url): $1 callers for $2
# seconds, with any further `orderly bench` flags "${@:3}" (e.g. --honor-retry-info); prints, as
# one JSON line, the confirmed orders/s (goodput: orders confirmed inside the $2 seconds), the
# confirmed calls' p50/p99 (ms), the confirmed, shed (RESOURCE_EXHAUSTED) and failed counts, and
# the confirmed orders per second until the last call ended (until_last_ended: lower than the
# goodput by the time held refusals of the last calls took to end).
create_orders() {
  target/release/orderly bench create-order --users-url "$users_url" --orders-url "$orders_url" \
    --users 1 --connections 4 --concurrency "$1" --duration "${2}s" --warmup 0s "${@:3}" \
    --output json 2>/dev/null | python3 -c '
import json, sys
s = json.loads(sys.stdin.read()); o = s["outcomes"]; ok = o.get("OK", 0); shed = o.get("RESOURCE_EXHAUSTED", 0)
print(json.dumps({"goodput": round(s["goodput"], 1), "p50_ms": s["latency_successful"]["p50_ms"],
  "p99_ms": s["latency_successful"]["p99_ms"], "accepted": ok, "shed": shed, "failed": s["calls"] - ok - shed,
  "until_last_ended": round(ok / s["seconds"], 1)}))'
}

# Prints field $2 of the JSON object $1.
get() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

# Prints "requests/s p50 p90 p99 failed" (ms) from an `orderly bench --output json` summary on stdin.
summary_row() {
  python3 -c '
import json, sys
s = json.loads(sys.stdin.read()); l = s["latency"]
print("%.0f %.2f %.2f %.2f %d" % (s["rate"], l["p50_ms"], l["p90_ms"], l["p99_ms"], s["errors"]))'
}

# Drives GetUser of user $2 at $1 with `orderly bench` ($conns connections, $conns x $streams calls
# in flight, $seconds counted after a second's warm-up; over TLS with $BENCH_TLS, e.g.
# "--tls-dir DIR") and prints: requests/s, p50, p90, p99 (ms), failed.
measure() {
  target/release/orderly bench get-user --users-url "http://$1" --user-ids "$2" ${BENCH_TLS:-} \
    --connections "$conns" --concurrency $((conns * streams)) --duration "${seconds}s" --warmup 1s \
    --output json 2>/dev/null | summary_row
}

# The same load as `measure`, driven by h2load instead (a cross-check of the load tool): GetUser
# of user $2 at $1.
measure_h2load() {
  local addr=$1 body="$work/grpc-body-$RANDOM.bin" log="$work/h2load-$RANDOM.tsv" out
  python3 -c 'import struct, sys; u = sys.argv[2].encode(); m = bytes([0x0a, len(u)]) + u; open(sys.argv[1], "wb").write(struct.pack(">BI", 0, len(m)) + m)' \
    "$body" "$2"
  out=$(h2load -c "$conns" -m "$streams" -t 1 -D "$seconds" --log-file="$log" -d "$body" \
    -H 'content-type: application/grpc' -H 'te: trailers' "http://$addr/orderly.users.v1.UserService/GetUser" 2>&1) \
    || { echo "$out" >&2; return 1; }
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

# Drives GET $2 (a path) through the gateway at $1 over HTTP/1.1 with `orderly bench`, $conns
# keep-alive connections each with one request in flight, and prints: requests/s, p50, p90, p99
# (ms), failed.
measure_http() {
  target/release/orderly bench rest-get --gateway-url "http://$1" --path "$2" \
    --connections "$conns" --concurrency "$conns" --duration "${seconds}s" --warmup 1s \
    --output json 2>/dev/null | summary_row
}

# Like `measure` (or `measure_h2load` with DRIVER=h2load) against the server of pid $1 at $2 for
# user $3, with a sixth figure: the server's CPU time per call, in microseconds (user + system,
# from /proc, over the measured run and its warm-up).
measure_cpu() {
  local before after result warmup=1
  before=$(awk '{print $14 + $15}' "/proc/$1/stat")
  if [[ ${DRIVER:-orderly} == h2load ]]; then
    result=$(measure_h2load "$2" "$3") warmup=0
  else
    result=$(measure "$2" "$3")
  fi
  after=$(awk '{print $14 + $15}' "/proc/$1/stat")
  python3 - "$result" "$before" "$after" "$seconds" "$(getconf CLK_TCK)" "$warmup" <<'PY'
import sys
figures = sys.argv[1].split()
rate = float(figures[0])
before, after, seconds, tick, warmup = (float(a) for a in sys.argv[2:7])
# The CPU time covers the warm-up too (orderly bench's first second), at about the same rate.
calls = max(rate * (seconds + warmup), 1)
print(" ".join(figures), "%.1f" % ((after - before) / tick / calls * 1e6))
PY
}

# Prints the CPU-per-call ratio of two `measure_cpu` results: $1 the baseline, $2 the measured.
cpu_ratio() {
  python3 -c 'import sys; b = float(sys.argv[1].split()[5]); o = float(sys.argv[2].split()[5]); print(f"ratio {sys.argv[3]}: server CPU per call {o/b:.2f}x")' "$1" "$2" "$3"
}

# Prints a table row of seven columns: label, then the six figures of `measure_cpu`.
row6() { printf '%-36s %9s %8s %8s %8s %6s %11s\n' "$@"; }

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

# The A/B comparison of GetUser on two users servers in one run: `measure_cpu` on the baseline
# (label $1, pid $2, address $3) and on the measured server (label $4, pid $5, address $6, measured
# with the variables "${@:7}" set, e.g. BENCH_TLS=... or ORDERLY_TOKEN=...), alternating for $rounds
# rounds on user $user_id; prints every round, the medians and their throughput and CPU ratios.
compare_rounds() {
  local base_label=$1 base_pid=$2 base_addr=$3 label=$4 pid=$5 addr=$6 base measured round
  local bases=() measureds=()
  echo "GetUser, ${seconds}s per run, ${conns} connections x ${streams} streams, orderly bench, $(nproc) cores"
  row6 server req/s p50_ms p90_ms p99_ms failed cpu_us/call
  for round in $(seq 1 "$rounds"); do
    base=$(measure_cpu "$base_pid" "$base_addr" "$user_id"); bases+=("$base")
    row6 "$base_label (round $round)" $base
    # The environment holds for this measurement only (the substitution runs in a subshell).
    measured=$(export "${@:7}"; measure_cpu "$pid" "$addr" "$user_id"); measureds+=("$measured")
    row6 "$label (round $round)" $measured
  done
  base=$(median "${bases[@]}") measured=$(median "${measureds[@]}")
  row6 "$base_label (median)" $base
  row6 "$label (median)" $measured
  ratio "$base" "$measured" "$label / $base_label (medians)"
  cpu_ratio "$base" "$measured" "$label / $base_label (medians)"
}
