#!/usr/bin/env bash
# Query benchmark (issue 3). Fills a fresh embedded store through the real ingest path with `--spans`
# spans (default 10,000,000) in traces of 100 spans spread over 2,000 sessions, then measures p50/p99
# latency of: a session's timeline, a trace by id, the sessions list with a filter, Grafana's Tempo trace by
# id (protobuf) and TraceQL search `{resource.service.name="x" && status=error}` over the last hour; and
# bytes on disk per span (while serving, WAL included; and the database file alone after a clean stop).
#
#   bench/query.sh [--spans N] [--sessions N] [--samples N]
set -euo pipefail
cd "$(dirname "$0")/.."
SPANS=10000000 SESSIONS=2000 SAMPLES=300
while [ $# -gt 0 ]; do
  case "$1" in
    --spans) SPANS=$2; shift 2 ;;
    --sessions) SESSIONS=$2; shift 2 ;;
    --samples) SAMPLES=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
. bench/lib.sh
DATA=$(mktemp -d)
trap 'kill ${SERVER:-} 2>/dev/null || true; rm -rf "$DATA"' EXIT
start_server "$DATA"

echo "filling: $SPANS spans, traces of 100 spans, $SESSIONS sessions"
"$BIN" loadgen --endpoint "http://127.0.0.1:$OTLP_HTTP" --api "http://127.0.0.1:$HTTP" --spans "$SPANS" \
  --spans-per-trace 100 --session-share 1.0 --create-sessions "$SESSIONS" --connections 4 --verify --quiet
sleep 1
BYTES=$(du -sb "$DATA" | cut -f1)

python3 - "http://127.0.0.1:$HTTP" "$SAMPLES" "$BYTES" <<'PY'
import json, random, sys, time, urllib.parse, urllib.request
api, samples, disk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def get(path):
    started = time.perf_counter()
    with urllib.request.urlopen(api + path) as response:
        body = response.read()
    return (time.perf_counter() - started) * 1000, json.loads(body)
def report(name, times):
    times.sort()
    pick = lambda p: times[min(len(times) - 1, int(round((len(times) - 1) * p)))]
    print(f"{name:<34} p50 {pick(0.5):7.2f} ms   p99 {pick(0.99):7.2f} ms   ({len(times)} requests)")
random.seed(7)
_, page = get("/api/sessions?limit=1000")
sessions = [s["id"] for s in page["sessions"]]
stats = get("/api/stats")[1]
print(f"store: {stats['spans']:,} spans in {stats['span_blocks']:,} blocks, {stats['sessions']:,} sessions")
timeline, traces, listing, trace_ids = [], [], [], []
for _ in range(samples):
    ms, body = get(f"/api/sessions/{random.choice(sessions)}/timeline")
    timeline.append(ms)
    trace_ids.extend(i["trace_id"] for i in body["items"] if i["kind"] == "trace")
for _ in range(samples):
    ms, body = get(f"/api/traces/{random.choice(trace_ids)}")
    assert body["spans"], "empty trace"
    traces.append(ms)
for service in ["gateway", "orders", "inventory", "payments"] * (samples // 4):
    ms, _ = get(f"/api/sessions?service={service}&limit=50")
    listing.append(ms)
# Grafana's Tempo data source: a trace by id as protobuf, and a TraceQL search over the last hour.
def get_raw(path, accept):
    request = urllib.request.Request(api + path, headers={"Accept": accept})
    started = time.perf_counter()
    with urllib.request.urlopen(request) as response:
        body = response.read()
    return (time.perf_counter() - started) * 1000, body
tempo_trace, tempo_search, found = [], [], []
for _ in range(samples):
    ms, body = get_raw(f"/tempo/api/v2/traces/{random.choice(trace_ids)}", "application/protobuf")
    assert body, "empty trace"
    tempo_trace.append(ms)
# The load generator writes fixed timestamps: "the last hour" is the hour before its newest trace.
_, newest = get("/tempo/api/search?q=%7B%7D&limit=1")
now = int(newest["traces"][0]["startTimeUnixNano"]) // 1_000_000_000
for service in ["gateway", "orders", "inventory", "payments"] * (samples // 4):
    query = urllib.parse.quote('{resource.service.name="%s" && status=error}' % service)
    ms, body = get(f"/tempo/api/search?q={query}&limit=20&spss=3&start={now - 3600}&end={now + 60}")
    tempo_search.append(ms)
    found.append(len(body["traces"]))
# The UI's trace search (/traces): the same engine, the filters of its form, one hour, newest first.
ui_search = []
for service in ["gateway", "orders", "inventory", "payments"] * (samples // 4):
    ms, body = get(f"/api/traces/search?service={service}&status=error&from={(now - 3600) * 1000}&to={(now + 60) * 1000}&limit=20")
    ui_search.append(ms)
report("session timeline", timeline)
report("trace by id", traces)
report("sessions list (service filter)", listing)
report("tempo trace by id (protobuf)", tempo_trace)
report("tempo search, error traces of a service, last hour", tempo_search)
print(f"  (traces found per search: min {min(found)}, max {max(found)})")
report("ui trace search, service + status=error, hour", ui_search)
print(f"disk: {disk:,} bytes for {stats['spans']:,} spans = {disk / max(stats['spans'], 1):.1f} bytes per span (database + WAL while serving)")
PY

# The WAL is bounded (64 MiB, whatever the store holds), so the figure that scales is the database file
# once a clean stop has checkpointed the WAL into it and truncated it.
kill -INT "$SERVER"; wait "$SERVER" || true
FILE=$(stat -c %s "$DATA/sessiontrace.db")
python3 -c "import sys; f, n = int(sys.argv[1]), int(sys.argv[2]); print(f'database file after a clean stop: {f:,} bytes = {f / n:.1f} bytes per span')" "$FILE" "$SPANS"
