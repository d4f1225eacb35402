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

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
source bench/lib.sh
build_release

# A signing key, its JWKS, and an admin's token (it may read any user).
token=$(target/release/orderly token --data-dir "$work/keys" --sub bench --admin --ttl 1h)
BENCH_DB=sqlite://$work/users.db
start_users off_addr OTEL_SDK_DISABLED=true
off_pid=${pids[-1]}
AUTH_ARGS="--jwks-file $work/keys/auth/jwks.json --page-token-secret bench-only-page-token-secret-of-32-bytes" start_users on_addr OTEL_SDK_DISABLED=true
on_pid=${pids[-1]}
user_id=$(make_user "$off_addr")

compare_rounds "no authentication" "$off_pid" "$off_addr" \
  "EdDSA token checked" "$on_pid" "$on_addr" ORDERLY_TOKEN="$token"
