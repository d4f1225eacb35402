#!/usr/bin/env bash
# Heavy readers against everyone else: 150 connections listing one user's 400 orders of 100 lines
# (page_size=400) through the gateway, while another user reads one order; and the process's memory
# before, during and after the burst. All in one `orderly up`, load from a second process.
#
#   bench/heavy_lists.sh [SECONDS]      (default: 10)
#
# Load from `orderly bench rest-get`. Needs curl and python3. All traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
source bench/lib.sh
build_release

start_up
rest=$(up_url gateway)
gateway=${rest#http://}
rss() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$up_pid/status"; }

user() { curl -sf "$rest/v1/users" -H 'content-type: application/json' -d "{\"name\":\"$1\",\"email\":\"$1-$RANDOM@example.com\"}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }
heavy=$(user heavy) light=$(user light)
python3 - "$heavy" "$work/big.json" <<'PY'
import json, sys
items = [{"sku": f"SKU-{i:04d}-{'x' * 48}", "quantity": 1, "unitPrice": {"currencyCode": "EUR", "amountMinor": "100"}} for i in range(100)]
address = {"recipient": "Heavy", "line1": "1 Way", "city": "Oslo", "postalCode": "0150", "countryCode": "NO"}
json.dump({"userId": sys.argv[1], "items": items, "shippingAddress": address}, open(sys.argv[2], "w"))
PY
seq 1 400 | xargs -P 8 -I{} curl -sf -o /dev/null "$rest/v1/orders" -H 'content-type: application/json' \
  -H "Idempotency-Key: big-{}" --data-binary @"$work/big.json"
order=$(curl -sf "$rest/v1/orders" -H 'content-type: application/json' -H 'Idempotency-Key: light-1' -d "{
  \"userId\":\"$light\",\"items\":[{\"sku\":\"PEN\",\"quantity\":1,\"unitPrice\":{\"currencyCode\":\"EUR\",\"amountMinor\":\"100\"}}],
  \"shippingAddress\":{\"recipient\":\"Light\",\"line1\":\"1 Way\",\"city\":\"Oslo\",\"postalCode\":\"0150\",\"countryCode\":\"NO\"}}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
page_bytes=$(curl -s "$rest/v1/orders?user_id=$heavy&page_size=400" | wc -c)

echo "heavy user: 400 orders of 100 lines; one page_size=400 page is $page_bytes bytes of JSON"
before=$(rss)
( peak=0; while kill -0 "$up_pid" 2>/dev/null; do
    peak=$(awk -v a="$peak" -v b="$(rss)" 'BEGIN { print (b > a) ? b : a }'); echo "$peak" >"$work/peak"; sleep 0.1
  done ) 2>/dev/null &
pids+=($!)
target/release/orderly bench rest-get --gateway-url "$rest" --path "/v1/orders?user_id=$heavy&page_size=400" \
  --connections 150 --concurrency 150 --duration "${seconds}s" --warmup 0s --output json >"$work/burst.json" 2>/dev/null &
burst=$!
conns=4 light_run=$(measure_http "$gateway" "/v1/orders/$order")
wait "$burst"
peak=$(cat "$work/peak")
sleep 5
after=$(rss)
sleep 10
later=$(rss)
python3 - "$work/burst.json" "$light_run" "$before" "$peak" "$after" "$later" <<'PY'
import json, sys
burst = json.load(open(sys.argv[1]))
outcomes = burst["outcomes"]
answered = sum(n for code, n in outcomes.items() if code.startswith("2"))
shed = outcomes.get("429", 0)
server_errors = sum(n for code, n in outcomes.items() if code.startswith("5"))
light = sys.argv[2].split()
before, peak, after, later = (float(x) for x in sys.argv[3:7])
print(f"burst: {burst['rate']:.0f} listing calls/s, {answered} answered, {shed} shed (429), {server_errors} 5xx")
print(f"the other user's GetOrder during the burst: {light[0]} req/s, p50 {light[1]} ms, p99 {light[3]} ms, {light[4]} failed (target p99 < 100 ms, none failed)")
print(f"RSS: {before:.1f} MB before, {peak:.1f} MB at peak, {after:.1f} MB 5 s after ({after / before:.2f}x), {later:.1f} MB 15 s after ({later / before:.2f}x) (target <= 2x)")
PY
