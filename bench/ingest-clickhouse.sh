#!/usr/bin/env bash
# Ingest benchmark into the ClickHouse store (issue 8), next to bench/ingest.sh (SQLite). Starts a throwaway
# ClickHouse (scripts/clickhouse.sh) unless SESSIONTRACE_CLICKHOUSE_URL names one, the server pinned to CPU 0
# with --store clickhouse on a fresh database, `sessiontrace loadgen` pinned to CPU 1, and prints accepted
# spans/s, sessiontrace CPU seconds and spans per CPU-second, ClickHouse's CPU seconds (when it runs here),
# latency, and whether every acknowledged span is queryable afterwards.
#
#   bench/ingest-clickhouse.sh [--duration S] [--connections N] [--min-insert-interval MS]
#
# Writes are acknowledged only after ClickHouse accepted the insert holding them; the store group-commits
# (the writes that arrive during an insert share the next), so a lone request waits one insert round trip
# (`--connections 1` measures it) and wall throughput grows with concurrent connections; spans per
# CPU-second is the figure to compare with the SQLite store.
#
# The throwaway ClickHouse keeps its data under $TMPDIR (mktemp -d). Every insert writes a new part, two
# files per column: on an ext4 without a journal (this machine's root) creating a file scans past every
# inode deleted in the last five minutes, and ClickHouse's merges delete thousands, so that scan can take
# most of ClickHouse's CPU. `TMPDIR=/dev/shm bench/ingest-clickhouse.sh ...` measures the store without it.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=20 CONNECTIONS=64
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --min-insert-interval) INTERVAL=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
. bench/lib.sh

CH_DIR="" CH_PID=""
cleanup() {
  [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null || true
  [ -n "$CH_DIR" ] && bash scripts/clickhouse.sh stop "$CH_DIR" && rm -rf "$CH_DIR"
  [ -n "${DATA:-}" ] && rm -rf "$DATA"
}
trap cleanup EXIT
if [ -n "${SESSIONTRACE_CLICKHOUSE_URL:-}" ]; then
  CH_URL=$SESSIONTRACE_CLICKHOUSE_URL
else
  CH_DIR=$(mktemp -d)
  CH_URL=$(bash scripts/clickhouse.sh start "$CH_DIR" "$(free_port)" "$(free_port)")
  CH_PID=$(cat "$CH_DIR/clickhouse.pid")
fi
DATA=$(mktemp -d)
config=()
if [ -n "${INTERVAL:-}" ]; then
  echo "clickhouse_min_insert_interval_ms = $INTERVAL" > "$DATA/config.toml"
  config=(--config "$DATA/config.toml")
fi
DB="st_bench_$(date +%s)"
SERVER_PREFIX="taskset -c 0" start_server "$DATA" --store clickhouse --clickhouse-url "$CH_URL" --clickhouse-database "$DB" "${config[@]}"
sleep 1
server_before=$(cpu_seconds "$SERVER")
ch_before=0; [ -n "$CH_PID" ] && ch_before=$(cpu_seconds "$CH_PID")
out=$(taskset -c 1 "$BIN" loadgen --protocol http-protobuf --endpoint "http://127.0.0.1:$OTLP_HTTP" \
      --connections "$CONNECTIONS" --duration "$DURATION" --json --quiet --api "http://127.0.0.1:$HTTP" --verify || true)
server_after=$(cpu_seconds "$SERVER")
ch_after=0; [ -n "$CH_PID" ] && ch_after=$(cpu_seconds "$CH_PID")
echo "sessiontrace ingest into clickhouse ($CH_URL): http-protobuf, $CONNECTIONS connections, ${DURATION}s, min insert interval ${INTERVAL:-default} ms"
python3 - "$out" "$server_before" "$server_after" "$ch_before" "$ch_after" <<'PY'
import json, sys
out, s0, s1, c0, c1 = sys.argv[1:]
r = json.loads(out)
server = float(s1) - float(s0)
clickhouse = float(c1) - float(c0)
n = r["spans_accepted"]
line = (f"{n:,} spans accepted in {r['seconds']:.1f}s ({r['accepted_spans_per_second']:,.0f}/s wall); "
        f"sessiontrace CPU {server:.2f}s -> {n / server:,.0f} spans per CPU-second")
if clickhouse > 0:
    line += f"; clickhouse-server CPU {clickhouse:.2f}s -> {n / (server + clickhouse):,.0f} spans per CPU-second for both"
line += (f"; latency p50 {r['latency_ms']['p50']:.1f} ms p99 {r['latency_ms']['p99']:.1f} ms; errors {r['errors']}")
if "spans_stored" in r:
    line += f"; stored {r['spans_stored']:,} ({'all acknowledged spans queryable' if r['verified'] else 'MISMATCH'})"
print(line)
PY
curl -s "$CH_URL/" --data-binary "SELECT concat('clickhouse: ', formatReadableSize(sum(bytes_on_disk)), ' on disk, ', toString(sum(rows)), ' rows') FROM system.parts WHERE active AND database = '$DB'"
kill "$SERVER" && wait "$SERVER" 2>/dev/null || true
SERVER=""
curl -s "$CH_URL/" --data-binary "DROP DATABASE IF EXISTS $DB" >/dev/null
