#!/usr/bin/env bash
# Load test of the release server on its embedded defaults: 200 concurrent clients for
# 30 s (wrk), then reports requests, non-2xx/5xx answers, error log lines and peak memory
# (VmHWM of the server process). Usage: bash benches/load/serve_200.sh [seconds]
# Needs: wrk, a release build (cargo build --release -p palisade-server).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_TO_RUN=${1:-30}
BIN=target/release/palisade
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export PALISADE_METRICS_LISTEN=127.0.0.1:0

# Twenty clients whose own limits are never reached, so every request does the full work
# (one key alone would soon be throttled by the abuse monitor's response-volume rule,
# 100 MB per 10 minutes, as a scraper should be); and a key on the free plan, so the
# limiter's 429 path is loaded too.
KEYS=()
for i in $(seq 20); do
  KEYS+=("$($BIN --data-dir "$WORK/data" keys create --owner "load$i" --scopes orders:read,orders:write --rate-limit 1000000000 | head -1)")
done
KEY=${KEYS[0]}
FREE=$($BIN --data-dir "$WORK/data" keys create --owner free --scopes orders:read | head -1)
$BIN --data-dir "$WORK/data" serve --listen 127.0.0.1:$PORT --log-format json > "$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 50); do grep -q "palisade is serving" "$WORK/server.log" 2>/dev/null && break; sleep 0.1; done
for i in $(seq 20); do
  curl -s -o /dev/null -H "X-API-Key: $KEY" -H 'content-type: application/json' \
    -d "{\"items\":[{\"product_id\":\"prod_$i\",\"quantity\":1}],\"shipping_address\":{\"street\":\"1 Main\",\"city\":\"X\",\"country\":\"US\",\"postal_code\":\"12345\"}}" \
    http://127.0.0.1:$PORT/api/orders
done

for i in $(seq 2 20); do
  curl -s -o /dev/null -H "X-API-Key: ${KEYS[$((i-1))]}" -H 'content-type: application/json' \
    -d "{\"items\":[{\"product_id\":\"prod_$i\",\"quantity\":1}],\"shipping_address\":{\"street\":\"1 Main\",\"city\":\"X\",\"country\":\"US\",\"postal_code\":\"12345\"}}" \
    http://127.0.0.1:$PORT/api/orders
done
LUA_KEYS=$(printf '"%s",' "${KEYS[@]}")

cat > "$WORK/mixed.lua" <<LUA
local n = 0
local keys = { $LUA_KEYS }
request = function()
  n = n + 1
  local key = keys[(n % #keys) + 1]
  if n % 10 == 0 then key = "$FREE" end
  if n % 50 == 0 then
    return wrk.format("POST", "/api/orders", {["X-API-Key"] = key, ["Content-Type"] = "application/json"},
      '{"items":[{"product_id":"prod_9","quantity":1}],"shipping_address":{"street":"1 Main","city":"X","country":"US","postal_code":"12345"}}')
  end
  return wrk.format("GET", "/api/orders?limit=20", {["X-API-Key"] = key})
end
local codes = {}
response = function(status, headers, body) codes[status] = (codes[status] or 0) + 1 end
done = function(summary, latency, requests)
  io.write(string.format("requests %d, errors connect %d read %d write %d timeout %d, non-2xx-or-3xx %d\n",
    summary.requests, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, summary.errors.status))
  io.write(string.format("latency p50 %.2f ms, p99 %.2f ms\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA

PEAK=0
( while kill -0 $SERVER 2>/dev/null; do
    awk '/VmHWM/ {print $2}' /proc/$SERVER/status 2>/dev/null > "$WORK/hwm" || true; sleep 0.5; done ) &
wrk -t2 -c200 -d${SECONDS_TO_RUN}s --latency -s "$WORK/mixed.lua" http://127.0.0.1:$PORT/ | tee "$WORK/wrk.txt"
PEAK=$(awk '/VmHWM/ {print $2}' /proc/$SERVER/status)
RSS=$(awk '/VmRSS/ {print $2}' /proc/$SERVER/status)
curl -s "$(grep -o 'http://127.0.0.1:[0-9]*/metrics' "$WORK/server.log" | head -1)" \
  | grep '^palisade_http_requests_total' | awk '{split($0,a,"status=\""); split(a[2],b,"\""); s[b[1]]+=$NF} END {for (k in s) printf "status %s: %d\n", k, s[k]}'
ERRORS=$(grep -c '"level":"ERROR"' "$WORK/server.log" || true)
echo "server error log lines: $ERRORS"
echo "peak memory (VmHWM): $((PEAK / 1024)) MiB; resident after the run: $((RSS / 1024)) MiB"
if grep -q 'status="5' <(curl -s "$(grep -o 'http://127.0.0.1:[0-9]*/metrics' "$WORK/server.log" | head -1)"); then
  echo "FAIL: 5xx answers"; exit 1
fi
[ "$ERRORS" -eq 0 ] || { echo "FAIL: errors in the log"; exit 1; }
[ $((PEAK / 1024)) -lt 100 ] || { echo "FAIL: peak memory over 100 MiB"; exit 1; }
echo "OK"
