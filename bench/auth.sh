#!/usr/bin/env bash
# The cost of authentication on GetUser: the same users service accepting every caller
# (--insecure-no-auth) and checking each call's bearer token (--jwks-file, an EdDSA key made by
# `orderly token`), measured in the same run by orderly bench from a second process, with the
# servers' CPU per call; the ratio is the figure that matters (issue goal: at least 0.9x).
#
#   bench/auth.sh [SECONDS] [CONNECTIONS] [STREAMS] [ROUNDS]    (defaults: 8 16 32 3)
#
# Off and on alternate for ROUNDS rounds; the ratio is taken between the medians. Needs curl and
# python3. All traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-8} conns=${2:-16} streams=${3:-32} rounds=${4:-3}
cargo build --release --quiet -p orderly-cli --bin orderly

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
source bench/lib.sh

# A signing key, its JWKS, and an admin's token (it may read any user).
token=$(target/release/orderly token --data-dir "$work/keys" --sub bench --admin --ttl 1h)
BENCH_DB=sqlite://$work/users.db
start_users off_addr OTEL_SDK_DISABLED=true
off_pid=${pids[-1]}
AUTH_ARGS="--jwks-file $work/keys/auth/jwks.json" start_users on_addr OTEL_SDK_DISABLED=true
on_pid=${pids[-1]}
user_id=$(make_user "$off_addr")

echo "GetUser, ${seconds}s per run, ${conns} connections x ${streams} streams, orderly bench, $(nproc) cores"
row6 server req/s p50_ms p90_ms p99_ms failed cpu_us/call
offs=() ons=()
for round in $(seq 1 "$rounds"); do
  off=$(measure_cpu "$off_pid" "$off_addr" "$user_id"); offs+=("$off"); row6 "no authentication (round $round)" $off
  on=$(ORDERLY_TOKEN=$token measure_cpu "$on_pid" "$on_addr" "$user_id"); ons+=("$on"); row6 "EdDSA token checked (round $round)" $on
done
off=$(median "${offs[@]}") on=$(median "${ons[@]}")
row6 "no authentication (median)" $off
row6 "EdDSA token checked (median)" $on
ratio "$off" "$on" "on/off (medians)"
cpu_ratio "$off" "$on" "on/off (medians)"
