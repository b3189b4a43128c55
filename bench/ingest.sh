#!/usr/bin/env bash
# Ingest benchmark (issue 3). Starts the server on the embedded store pinned to CPU 0, drives it with
# `sessiontrace loadgen` pinned to CPU 1 (200-span OTLP/HTTP protobuf requests of realistic spans, encoded
# before the clock starts), and prints accepted spans/s, server CPU seconds, spans per CPU-second, idle and
# peak RSS, bytes on disk per span, and whether every acknowledged span is queryable afterwards.
#
#   bench/ingest.sh [--duration S] [--connections N] [--protocol http-protobuf|http-json|grpc]
#                   [--alloc system|jemalloc] [--peer rotel] [--auth] [--rate SPANS_PER_S]
#
# --rate offers a steady rate instead of flat out: `--rate 10000 --connections 4 --duration 60` is the
# OpenTelemetry Collector testbed's steady shape (10k spans/s), where the figures that matter are the
# server's CPU (% of a core) and RSS.
# --auth runs the same load a second time against a fresh server with authentication on, an ingest key
# on every request (`Authorization: Bearer`), and prints both and the ratio (keys checked through the
# server's key cache and rate-limit accounting; the 5%-overhead target of issue 14).
#
# --peer rotel runs the same load against Rotel (pip package `rotel`, installed into bench/.venv-rotel,
# started with --exporter blackhole and Debian's libjemalloc2 preloaded) and prints both and the ratio.
# Rotel decodes and discards; sessiontrace decodes, routes and stores durably, so the ratio is a hard test.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=20 CONNECTIONS=8 PROTOCOL=http-protobuf ALLOC=system PEER="" AUTH="" RATE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --protocol) PROTOCOL=$2; shift 2 ;;
    --alloc) ALLOC=$2; shift 2 ;;
    --peer) PEER=$2; shift 2 ;;
    --auth) AUTH=1; shift ;;
    --rate) RATE=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
JEMALLOC=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
need_jemalloc() {
  [ -f "$JEMALLOC" ] || { apt-get install -y -qq libjemalloc2 >/dev/null || { echo "libjemalloc2 is needed" >&2; exit 1; }; }
}
. bench/lib.sh

# run_load NAME PID ENDPOINT [loadgen flags...]: prints one result line and sets RESULT_RATE.
run_load() {
  local name=$1 pid=$2 endpoint=$3; shift 3
  local idle_rss cpu_before cpu_after peak_rss out
  idle_rss=$(rss_kib "$pid" VmRSS)
  cpu_before=$(cpu_seconds "$pid")
  out=$(taskset -c 1 "$BIN" loadgen --protocol "$PROTOCOL" --endpoint "$endpoint" --connections "$CONNECTIONS" \
        --duration "$DURATION" --rate "$RATE" --json --quiet "$@" || true)
  cpu_after=$(cpu_seconds "$pid")
  peak_rss=$(rss_kib "$pid" VmHWM)
  python3 - "$name" "$out" "$cpu_before" "$cpu_after" "$idle_rss" "$peak_rss" <<'PY'
import json, sys
name, out, before, after, idle, peak = sys.argv[1:]
r = json.loads(out)
cpu = float(after) - float(before)
per_cpu = r["spans_accepted"] / cpu if cpu > 0 else 0
print(f"{name}: {r['spans_accepted']:,} spans accepted in {r['seconds']:.1f}s ({r['accepted_spans_per_second']:,.0f}/s wall), "
      f"server CPU {cpu:.2f}s ({cpu / r['seconds'] * 100:.1f}% of a core) -> {per_cpu:,.0f} spans per CPU-second; idle RSS {int(idle)/1024:.1f} MiB, "
      f"peak RSS {int(peak)/1024:.1f} MiB; latency p50 {r['latency_ms']['p50']:.1f} ms p99 {r['latency_ms']['p99']:.1f} ms; "
      f"errors {r['errors']}" + (f"; stored {r['spans_stored']:,} ({'all acknowledged spans queryable' if r['verified'] else 'MISMATCH'})" if 'spans_stored' in r else ""))
open("/tmp/sessiontrace-bench-rate", "w").write(str(per_cpu))
PY
  RESULT_RATE=$(cat /tmp/sessiontrace-bench-rate)
}

DATA=$(mktemp -d)
trap 'kill ${SERVER:-} 2>/dev/null || true; [ -n "${ROTEL:-}" ] && kill $ROTEL 2>/dev/null; rm -rf "$DATA"' EXIT
if [ "$ALLOC" = jemalloc ]; then need_jemalloc; SERVER_PRELOAD=$JEMALLOC; fi
SERVER_PREFIX="taskset -c 0" start_server "$DATA"
sleep 1
ENDPOINT="http://127.0.0.1:$OTLP_HTTP"
[ "$PROTOCOL" = grpc ] && ENDPOINT="http://127.0.0.1:$OTLP_GRPC"
echo "sessiontrace ingest benchmark: $PROTOCOL, $CONNECTIONS connections, ${DURATION}s, $([ "$RATE" = 0 ] && echo "flat out" || echo "$RATE spans/s"), allocator $ALLOC, server on CPU 0, load on CPU 1"
run_load "sessiontrace (durable SQLite store)" "$SERVER" "$ENDPOINT" --api "http://127.0.0.1:$HTTP" --verify
OURS=$RESULT_RATE
sleep 1
BYTES=$(du -sb "$DATA" | cut -f1)
SPANS=$(curl -s "http://127.0.0.1:$HTTP/api/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["spans"])')
echo "disk: $BYTES bytes for $SPANS spans = $((BYTES / (SPANS > 0 ? SPANS : 1))) bytes per span (database + WAL)"

if [ -n "$AUTH" ]; then
  kill "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  AUTH_DATA="$DATA/with-keys"
  INGEST_KEY=$("$BIN" keys create --data-dir "$AUTH_DATA" --project bench --kind ingest 2>/dev/null | head -1)
  READ_KEY=$("$BIN" keys create --data-dir "$AUTH_DATA" --project bench --kind read 2>/dev/null | head -1)
  SERVER_PREFIX="taskset -c 0" start_server "$AUTH_DATA"
  sleep 1
  ENDPOINT="http://127.0.0.1:$OTLP_HTTP"
  [ "$PROTOCOL" = grpc ] && ENDPOINT="http://127.0.0.1:$OTLP_GRPC"
  run_load "sessiontrace with an ingest key on every request" "$SERVER" "$ENDPOINT" \
    --api "http://127.0.0.1:$HTTP" --verify --key "$INGEST_KEY" --read-key "$READ_KEY"
  python3 -c "import sys; a, o = float(sys.argv[1]), float(sys.argv[2]); print(f'auth: with keys / without = {a / o:.3f}x spans per CPU-second' if o else 'auth: n/a')" "$RESULT_RATE" "$OURS"
fi

if [ "$PEER" = rotel ]; then
  need_jemalloc
  start_rotel 0
  R_ENDPOINT="http://127.0.0.1:$R_HTTP"
  [ "$PROTOCOL" = grpc ] && R_ENDPOINT="http://127.0.0.1:$R_GRPC"
  run_load "rotel (decode and discard, jemalloc)" "$ROTEL" "$R_ENDPOINT"
  python3 -c "import sys; o, r = float(sys.argv[1]), float(sys.argv[2]); print(f'ratio: sessiontrace / rotel = {o / r:.2f}x spans per CPU-second' if r else 'ratio: n/a')" "$OURS" "$RESULT_RATE"
fi
