#!/usr/bin/env bash
# Ingest benchmark (issue 3). Starts the server on the embedded store pinned to CPU 0, drives it with
# `sessiontrace loadgen` pinned to CPU 1 (200-span OTLP/HTTP protobuf requests of realistic spans, encoded
# before the clock starts), and prints accepted spans/s, server CPU seconds, spans per CPU-second, idle and
# peak RSS, bytes on disk per span, and whether every acknowledged span is queryable afterwards.
#
#   bench/ingest.sh [--duration S] [--connections N] [--protocol http-protobuf|http-json|grpc]
#                   [--alloc system|jemalloc] [--peer rotel] [--auth] [--rate SPANS_PER_S] [--tool loadgen|wrk]
#
# --server-cpus LIST / --load-cpus LIST (taskset lists; default 0 and 1) place the server and the load:
# `--server-cpus 0 --load-cpus 0,1` vs `--server-cpus 0,1 --load-cpus 0,1` is the 1-core vs 2-core
# comparison. Every sessiontrace line also gives the SQLite writer thread's own CPU per span: that one
# thread is the ceiling no number of cores lifts (1 / its CPU per span).
#
# --tool wrk drives the same kind of load with wrk (Debian's package; an independent HTTP load tool) and
# bench/ingest-wrk.lua instead of `sessiontrace loadgen`: 256 bodies written first by
# `sessiontrace loadgen --write-bodies`, each with its own trace ids, POSTed in turn (so a trace id comes back
# every 256 requests, where loadgen makes every request's ids new). OTLP/HTTP protobuf only; no --rate.
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
DURATION=20 CONNECTIONS=8 PROTOCOL=http-protobuf ALLOC=system PEER="" AUTH="" RATE=0 TOOL=loadgen SERVER_CPUS=0 LOAD_CPUS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --protocol) PROTOCOL=$2; shift 2 ;;
    --alloc) ALLOC=$2; shift 2 ;;
    --peer) PEER=$2; shift 2 ;;
    --auth) AUTH=1; shift ;;
    --rate) RATE=$2; shift 2 ;;
    --tool) TOOL=$2; shift 2 ;;
    --server-cpus) SERVER_CPUS=$2; shift 2 ;;
    --load-cpus) LOAD_CPUS=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
JEMALLOC=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
need_jemalloc() {
  [ -f "$JEMALLOC" ] || { apt-get install -y -qq libjemalloc2 >/dev/null || { echo "libjemalloc2 is needed" >&2; exit 1; }; }
}
. bench/lib.sh

WRK_THREADS=$(taskset -c "$LOAD_CPUS" nproc)

# writer_cpu PID: CPU seconds of the process's thread named sqlite-writer (0 when there is none).
writer_cpu() {
  local task
  for task in /proc/"$1"/task/*; do
    if [ "$(cat "$task/comm" 2>/dev/null)" = sqlite-writer ]; then
      awk -v t="$TICKS" '{printf "%.3f", ($14 + $15) / t}' "$task/stat"
      return
    fi
  done
  echo 0
}

# run_load NAME PID ENDPOINT [loadgen flags...]: prints one result line and sets RESULT_RATE.
run_load() {
  local name=$1 pid=$2 endpoint=$3; shift 3
  local idle_rss cpu_before cpu_after peak_rss out writer_before writer_after
  idle_rss=$(rss_kib "$pid" VmRSS)
  cpu_before=$(cpu_seconds "$pid")
  writer_before=$(writer_cpu "$pid")
  if [ "$TOOL" = wrk ]; then
    out=$(wrk_load "$endpoint" "$@")
  else
    out=$(taskset -c "$LOAD_CPUS" "$BIN" loadgen --protocol "$PROTOCOL" --endpoint "$endpoint" --connections "$CONNECTIONS" \
          --duration "$DURATION" --rate "$RATE" --json --quiet "$@" || true)
  fi
  cpu_after=$(cpu_seconds "$pid")
  writer_after=$(writer_cpu "$pid")
  peak_rss=$(rss_kib "$pid" VmHWM)
  python3 - "$name" "$out" "$cpu_before" "$cpu_after" "$idle_rss" "$peak_rss" "$writer_before" "$writer_after" <<'PY'
import json, sys
name, out, before, after, idle, peak, writer_before, writer_after = sys.argv[1:]
r = json.loads(out)
cpu = float(after) - float(before)
per_cpu = r["spans_accepted"] / cpu if cpu > 0 else 0
print(f"{name}: {r['spans_accepted']:,} spans accepted in {r['seconds']:.1f}s ({r['accepted_spans_per_second']:,.0f}/s wall), "
      f"server CPU {cpu:.2f}s ({cpu / r['seconds'] * 100:.1f}% of a core) -> {per_cpu:,.0f} spans per CPU-second; idle RSS {int(idle)/1024:.1f} MiB, "
      f"peak RSS {int(peak)/1024:.1f} MiB; latency p50 {r['latency_ms']['p50']:.1f} ms p99 {r['latency_ms']['p99']:.1f} ms; "
      f"errors {r['errors']}" + (f"; stored {r['spans_stored']:,} ({'all acknowledged spans queryable' if r['verified'] else 'MISMATCH'})" if 'spans_stored' in r else "")
      + (f" ({r['spans_stored'] - r['spans_accepted']:,} more: answers still in flight when wrk stopped)" if r.get('spans_stored', 0) > r['spans_accepted'] else ""))
writer = float(writer_after) - float(writer_before)
if writer > 0 and r["spans_accepted"]:
    per_span = writer / r["spans_accepted"] * 1e6
    print(f"  writer thread: {writer:.2f}s CPU = {per_span:.3f} µs per span -> one writer thread saturates at "
          f"{1e6 / per_span:,.0f} spans/s; the rest of the server {(cpu - writer) / r['spans_accepted'] * 1e6:.3f} µs per span "
          f"(spread over the cores)")
open("/tmp/sessiontrace-bench-rate", "w").write(str(per_cpu))
PY
  RESULT_RATE=$(cat /tmp/sessiontrace-bench-rate)
}

# wrk_load ENDPOINT [loadgen flags]: the load through wrk, one JSON line like loadgen's; --api URL and
# --verify (from those flags) add the stored-span check through /api/stats; --key sends an ingest key.
wrk_load() {
  local endpoint=$1 api="" verify="" key="" before after; shift
  while [ $# -gt 0 ]; do
    case "$1" in
      --api) api=$2; shift 2 ;;
      --verify) verify=1; shift ;;
      --key) key=$2; shift 2 ;;
      *) shift ;;
    esac
  done
  stats() { curl -sf ${READ_KEY:+-H "Authorization: Bearer $READ_KEY"} "$api/api/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["spans"])'; }
  [ -n "$verify" ] && before=$(stats)
  local out
  out=$(BODIES_DIR="$DATA-bodies" BODIES=256 SPANS_PER_BODY=$SPANS_PER_BODY INGEST_KEY=$key taskset -c "$LOAD_CPUS" \
        wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 30s -s bench/ingest-wrk.lua "$endpoint/v1/traces" | tail -1)
  if [ -n "$verify" ]; then
    sleep 1
    after=$(stats)
    # wrk stops with a request in flight on each connection: the server may have stored those without wrk
    # seeing the answer, so stored may exceed what wrk counted by up to one body per connection.
    python3 -c 'import json,sys; r=json.loads(sys.argv[1]); s=int(sys.argv[3])-int(sys.argv[2]); slack=int(sys.argv[4])*int(sys.argv[5]); r["spans_stored"]=s; r["verified"]=r["spans_accepted"]<=s<=r["spans_accepted"]+slack; print(json.dumps(r))' "$out" "$before" "$after" "$CONNECTIONS" "$SPANS_PER_BODY"
  else
    echo "$out"
  fi
}

DATA=$(mktemp -d)
if [ "$TOOL" = wrk ]; then
  command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
  [ "$PROTOCOL" = http-protobuf ] && [ "$RATE" = 0 ] || { echo "--tool wrk: OTLP/HTTP protobuf flat out only" >&2; exit 2; }
  SPANS_PER_BODY=$("$BIN" loadgen --write-bodies 256 --bodies-dir "$DATA-bodies")
fi
trap 'kill ${SERVER:-} 2>/dev/null || true; [ -n "${ROTEL:-}" ] && kill $ROTEL 2>/dev/null; rm -rf "$DATA" "$DATA-bodies"' EXIT
if [ "$ALLOC" = jemalloc ]; then need_jemalloc; SERVER_PRELOAD=$JEMALLOC; fi
SERVER_PREFIX="taskset -c $SERVER_CPUS" start_server "$DATA"
sleep 1
ENDPOINT="http://127.0.0.1:$OTLP_HTTP"
[ "$PROTOCOL" = grpc ] && ENDPOINT="http://127.0.0.1:$OTLP_GRPC"
echo "sessiontrace ingest benchmark ($TOOL): $PROTOCOL, $CONNECTIONS connections, ${DURATION}s, $([ "$RATE" = 0 ] && echo "flat out" || echo "$RATE spans/s"), allocator $ALLOC, server on CPU $SERVER_CPUS, load on CPU $LOAD_CPUS"
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
  SERVER_PREFIX="taskset -c $SERVER_CPUS" start_server "$AUTH_DATA"
  sleep 1
  ENDPOINT="http://127.0.0.1:$OTLP_HTTP"
  [ "$PROTOCOL" = grpc ] && ENDPOINT="http://127.0.0.1:$OTLP_GRPC"
  run_load "sessiontrace with an ingest key on every request" "$SERVER" "$ENDPOINT" \
    --api "http://127.0.0.1:$HTTP" --verify --key "$INGEST_KEY" --read-key "$READ_KEY"
  python3 -c "import sys; a, o = float(sys.argv[1]), float(sys.argv[2]); print(f'auth: with keys / without = {a / o:.3f}x spans per CPU-second' if o else 'auth: n/a')" "$RESULT_RATE" "$OURS"
fi

if [ "$PEER" = rotel ]; then
  need_jemalloc
  start_rotel "$SERVER_CPUS"
  R_ENDPOINT="http://127.0.0.1:$R_HTTP"
  [ "$PROTOCOL" = grpc ] && R_ENDPOINT="http://127.0.0.1:$R_GRPC"
  run_load "rotel (decode and discard, jemalloc)" "$ROTEL" "$R_ENDPOINT"
  python3 -c "import sys; o, r = float(sys.argv[1]), float(sys.argv[2]); print(f'ratio: sessiontrace / rotel = {o / r:.2f}x spans per CPU-second' if r else 'ratio: n/a')" "$OURS" "$RESULT_RATE"
fi
