#!/usr/bin/env bash
# The cost of mutual TLS on GetUser: the same users service in plaintext (--insecure-plaintext)
# and over mutual TLS (--tls-dir, certificates made by `orderly certs`), measured in the same run by
# orderly bench from a second process (its connections made once and reused; over TLS it presents
# the gateway's certificate), with the servers' CPU per call; the ratio is the figure that matters
# (issue goal: at least 0.85x).
#
#   bench/tls.sh [SECONDS] [CONNECTIONS] [STREAMS] [ROUNDS]    (defaults: 8 16 32 3)
#
# Plaintext and TLS alternate for ROUNDS rounds; the ratio is taken between the medians. Needs curl
# and python3. All traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-8} conns=${2:-16} streams=${3:-32} rounds=${4:-3}

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
source bench/lib.sh
build_release

target/release/orderly certs --out "$work/tls" >/dev/null
BENCH_DB=sqlite://$work/users.db
start_users plain_addr OTEL_SDK_DISABLED=true
plain_pid=${pids[-1]}
TLS_ARGS="--tls-dir $work/tls" start_users tls_addr OTEL_SDK_DISABLED=true
tls_pid=${pids[-1]}
# Made through the plaintext server; both read the same database.
user_id=$(make_user "$plain_addr")

compare_rounds plaintext "$plain_pid" "$plain_addr" \
  "mutual TLS" "$tls_pid" "$tls_addr" BENCH_TLS="--tls-dir $work/tls"
