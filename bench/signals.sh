#!/usr/bin/env bash
# Sessions-list filters on what the user did (issue 21). Creates `--sessions` sessions (default 10,000)
# through the API, each with one replay chunk (a page visit, clicks; one in 4 with a rage click, one in 5
# with a dead click, one in 6 with a failed POST /api/pay → 502 after a click and a console error), then
# measures p50/p99 latency of `GET /api/sessions` with each new filter (limit 50) and the time a chunk
# store takes with its signal derivation. Prints figures, never fails on them.
#
#   bench/signals.sh [--sessions N] [--samples N]
set -euo pipefail
cd "$(dirname "$0")/.."
SESSIONS=10000 SAMPLES=200
while [ $# -gt 0 ]; do
  case "$1" in
    --sessions) SESSIONS=$2; shift 2 ;;
    --samples) SAMPLES=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
. bench/lib.sh
DATA=$(mktemp -d)
trap 'kill ${SERVER:-} 2>/dev/null || true; rm -rf "$DATA"' EXIT
start_server "$DATA"

python3 - "http://127.0.0.1:$HTTP" "$SESSIONS" "$SAMPLES" <<'PY'
import json, sys, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
api, sessions, samples = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def call(path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(api + path, data=data, headers={"content-type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request) as response:
        answer = json.loads(response.read())
    return (time.perf_counter() - started) * 1000, answer

def click(t, node):
    return {"type": 3, "timestamp": t, "data": {"source": 2, "type": 2, "id": node, "x": 1, "y": 1}}

def events(n, t0):
    out = [
        {"type": 4, "timestamp": t0, "data": {"href": f"http://shop.test/{['cart', 'checkout/step-2', 'home'][n % 3]}?n={n}"}},
        {"type": 2, "timestamp": t0 + 1, "data": {"node": {"type": 0, "id": 1, "childNodes": [
            {"type": 2, "id": 5, "tagName": "button", "attributes": {"id": "menu"}, "childNodes": [{"type": 3, "id": 6, "textContent": "Menu"}]},
            {"type": 2, "id": 7, "tagName": "button", "attributes": {"id": "noop"}, "childNodes": [{"type": 3, "id": 8, "textContent": "Nothing"}]},
            {"type": 2, "id": 9, "tagName": "button", "attributes": {"id": "pay"}, "childNodes": [{"type": 3, "id": 10, "textContent": "Pay"}]}]}}},
        click(t0 + 100, 5),
        {"type": 3, "timestamp": t0 + 150, "data": {"source": 0, "texts": [], "attributes": [], "removes": [],
            "adds": [{"parentId": 1, "nextId": None, "node": {"type": 2, "id": 20, "tagName": "ul", "attributes": {}, "childNodes": []}}]}},
    ]
    if n % 4 == 0:
        out += [click(t0 + 1000 + i * 200, 5) for i in range(4)]
        out.append({"type": 3, "timestamp": t0 + 1700, "data": {"source": 3, "id": 1, "x": 0, "y": 10}})
    if n % 5 == 0:
        out.append(click(t0 + 5000, 7))
    if n % 6 == 0:
        out.append(click(t0 + 9000, 9))
        out.append({"type": 5, "timestamp": t0 + 9500, "data": {"tag": "sessiontrace/network", "payload": {
            "method": "POST", "url": "http://shop.test/api/pay", "status": 502, "start_ms": t0 + 9010,
            "duration_ms": 490, "trace_id": None, "span_id": None}}})
        out.append({"type": 5, "timestamp": t0 + 9510, "data": {"tag": "sessiontrace/console", "payload": {"level": "error", "message": "payment failed"}}})
    return out

def record(n):
    _, session = call("/api/sessions", {"name": f"bench {n}"})
    ms, _ = call(f"/api/sessions/{session['id']}/events", {"seq": 0, "events": events(n, 1_790_000_000_000 + n * 60_000)})
    return ms

started = time.perf_counter()
with ThreadPoolExecutor(4) as pool:
    stores = sorted(pool.map(record, range(sessions)))
pick = lambda times, p: times[min(len(times) - 1, int(round((len(times) - 1) * p)))]
print(f"recorded {sessions:,} sessions in {time.perf_counter() - started:.1f} s; "
      f"chunk store + derivation p50 {pick(stores, 0.5):.2f} ms p99 {pick(stores, 0.99):.2f} ms (4 clients)")
for query in ["", "signal=rage", "signal=dead", "signal=error", "url=/checkout/*", "url=*shop.test/home*",
              "clicked=%23pay", "clicked=nothing", "console_errors=true", "failed_requests=false",
              "failed_path=/api/pay&failed_status=502", "signal=rage&url=/cart"]:
    times, total = [], 0
    for _ in range(samples):
        ms, body = call(f"/api/sessions?limit=50&{query}")
        times.append(ms)
        total = body["total"]
    times.sort()
    print(f"{('/api/sessions?' + query):<52} p50 {pick(times, 0.5):7.2f} ms   p99 {pick(times, 0.99):7.2f} ms   total {total:,}")
PY
