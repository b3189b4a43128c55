#!/usr/bin/env bash
# ClickHouse outage under load (issue 17). Starts a throwaway ClickHouse (scripts/clickhouse.sh) and
# `sessiontrace serve --store clickhouse`, drives a steady OTLP/HTTP load for --duration seconds, stops
# ClickHouse --down seconds after the start for --outage seconds, then starts it again on the same data.
# Prints what the load generator saw (accepted, refused with a retryable 503 + Retry-After, other errors:
# there should be none), per-second accepted spans around the outage, the server's /healthz during it,
# and whether every acknowledged span is stored once ClickHouse is back (no restart of sessiontrace).
#
#   bench/clickhouse-outage.sh [--duration S] [--down S] [--outage S] [--rate SPANS_PER_S]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=75 DOWN=15 OUTAGE=30 RATE=20000
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --down) DOWN=$2; shift 2 ;;
    --outage) OUTAGE=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
. bench/lib.sh
WORK=$(mktemp -d)
CH_HTTP=$(free_port) CH_TCP=$(free_port)
cleanup() {
  kill ${SERVER:-} ${PROBE:-} 2>/dev/null || true
  bash scripts/clickhouse.sh stop "$WORK/clickhouse" || true
  rm -rf "$WORK"
}
trap cleanup EXIT
export SESSIONTRACE_CLICKHOUSE_URL
SESSIONTRACE_CLICKHOUSE_URL=$(bash scripts/clickhouse.sh start "$WORK/clickhouse" "$CH_HTTP" "$CH_TCP")
start_server "$WORK/data" --store clickhouse --clickhouse-database outage_bench
API="http://127.0.0.1:$HTTP"

probe() {
  while kill -0 "$SERVER" 2>/dev/null; do
    echo "healthz $(date +%s.%N) $(curl -s -o /dev/null -m 5 -w '%{http_code}' "$API/healthz" || echo 000)"
    sleep 1
  done
}
probe > "$WORK/probe.log" &
PROBE=$!
"$BIN" loadgen --endpoint "http://127.0.0.1:$OTLP_HTTP" --api "$API" --rate "$RATE" --connections 8 \
  --duration "$DURATION" --verify --json > "$WORK/load.json" 2> "$WORK/progress.log" &
LOAD=$!
sleep "$DOWN"
echo "[$DOWN s] stopping clickhouse for $OUTAGE s"
bash scripts/clickhouse.sh stop "$WORK/clickhouse"
sleep "$OUTAGE"
echo "[$((DOWN + OUTAGE)) s] starting clickhouse again"
bash scripts/clickhouse.sh start "$WORK/clickhouse" "$CH_HTTP" "$CH_TCP" >/dev/null
wait "$LOAD" || true
kill "$PROBE" 2>/dev/null || true

python3 - "$WORK/load.json" "$WORK/progress.log" "$WORK/probe.log" "$DOWN" "$OUTAGE" "$RATE" <<'PY'
import json, sys
load, progress, probe, down, outage, rate = sys.argv[1:]
r = json.loads(open(load).read().strip().splitlines()[-1])
print(f"offered           {rate} spans/s for {r['seconds']:.0f} s; clickhouse down from {down} s for {outage} s")
print(f"requests          {r['requests']:,}: accepted spans {r['spans_accepted']:,}, refused (503 + Retry-After) {r['refused']:,}, other errors {r['errors']}"
      + (f" (first: {r['first_error']})" if r["errors"] else ""))
if r.get("first_refusal"):
    print(f"first refusal     {r['first_refusal'][:160]}")
timeline = " ".join(f"{line.split('/s')[0].split()[-1]}" for line in open(progress) if line.startswith("["))
print(f"accepted per s    {timeline}")
codes = [l.split()[2] for l in open(probe) if l.startswith("healthz")]
print(f"/healthz          {len(codes)} probes, {sum(1 for c in codes if c != '200')} not 200")
print(f"acknowledged      {r['spans_accepted']:,} spans, stored {r.get('spans_stored', 0):,}: "
      + ("every acknowledged span is stored" if r.get("verified") else "MISMATCH"))
PY
