#!/usr/bin/env bash
# Overload benchmark (issue 17). Measures the server's capacity (the load generator flat out on 16
# connections against a server pinned to CPU 0, the generator on CPU 1), then offers three times that rate
# on many connections for --duration seconds and prints: offered vs accepted spans/s, requests refused
# with 503 + Retry-After (the admission budget, `max_in_flight_bytes`) and any other error (timeouts,
# resets: there should be none), p99 latency of the accepted and of the refused requests, the server's
# peak RSS against its idle RSS, /healthz and the UI's sessions list answering during the overload (p99,
# max, failures), and whether every acknowledged span is stored (`--verify`).
#
#   bench/overload.sh [--duration S] [--connections N] [--factor F] [--budget-mib M]
#
# The generator offers what one core can send: if that is less than F× capacity the script says so.
# --budget-mib sets the server's max_in_flight_bytes (default: the server's own, 64 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=60 CONNECTIONS=128 FACTOR=3 BUDGET_MIB=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --factor) FACTOR=$2; shift 2 ;;
    --budget-mib) BUDGET_MIB=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
. bench/lib.sh
DATA=$(mktemp -d)
trap 'kill ${SERVER:-} ${PROBE:-} 2>/dev/null || true; rm -rf "$DATA" "$DATA.toml"' EXIT
CONFIG=()
if [ -n "$BUDGET_MIB" ]; then
  echo "max_in_flight_bytes = $((BUDGET_MIB * 1024 * 1024))" > "$DATA.toml"
  CONFIG=(--config "$DATA.toml")
fi
SERVER_PREFIX="taskset -c 0" start_server "$DATA" "${CONFIG[@]}"
API="http://127.0.0.1:$HTTP"

echo "capacity: flat out, 16 connections, 15 s"
capacity=$(taskset -c 1 "$BIN" loadgen --endpoint "http://127.0.0.1:$OTLP_HTTP" --connections 16 --duration 15 \
  --json --quiet | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["accepted_spans_per_second"]))')
rate=$(( capacity * FACTOR ))
echo "capacity $capacity spans/s; offering $rate spans/s (${FACTOR}×) on $CONNECTIONS connections for $DURATION s"
idle_rss=$(rss_kib "$SERVER" VmRSS)

# Probes while the load runs: RSS every 0.5 s, /healthz and the sessions list every second.
probe() {
  while kill -0 "$SERVER" 2>/dev/null; do
    echo "rss $(rss_kib "$SERVER" VmRSS)"
    for path in /healthz "/api/sessions?limit=50"; do
      t=$(curl -s -o /dev/null -m 10 -w '%{http_code} %{time_total}' "$API$path" || echo "000 10")
      echo "probe $path $t"
    done
    sleep 0.5
  done
}
probe > "$DATA/probe.log" &
PROBE=$!
out=$(taskset -c 1 "$BIN" loadgen --endpoint "http://127.0.0.1:$OTLP_HTTP" --api "$API" --rate "$rate" \
  --connections "$CONNECTIONS" --duration "$DURATION" --verify --json --quiet || true)
kill "$PROBE" 2>/dev/null || true
wait "$PROBE" 2>/dev/null || true
peak_rss=$(rss_kib "$SERVER" VmHWM)
metrics=$(curl -s "$API/metrics" | grep -E '^sessiontrace_(admission|store_write)' || true)

python3 - "$out" "$capacity" "$rate" "$idle_rss" "$peak_rss" "$DATA/probe.log" "$DURATION" "$CONNECTIONS" "$BUDGET_MIB" <<'PY'
import json, sys
out, capacity, rate, idle, peak, probe_log, duration, connections, budget = sys.argv[1:]
r = json.loads(out)
capacity, rate, idle, peak = int(capacity), int(rate), int(idle), int(peak)
offered = r["spans_sent"] / r["seconds"]
print(f"offered           {offered:,.0f} spans/s ({offered / capacity:.1f}× the capacity of {capacity:,} spans/s; target {rate:,})")
print(f"accepted          {r['accepted_spans_per_second']:,.0f} spans/s")
print(f"requests          {r['requests']:,}: refused (503 + Retry-After) {r['refused']:,}, other errors {r['errors']}"
      + (f" (first: {r['first_error']})" if r["errors"] else ""))
print(f"accepted latency  p50 {r['latency_ms']['p50']:.1f} ms  p99 {r['latency_ms']['p99']:.1f} ms  max {r['latency_ms']['max']:.1f} ms")
print(f"refusal latency   p50 {r['refusal_latency_ms']['p50']:.1f} ms  p99 {r['refusal_latency_ms']['p99']:.1f} ms")
rss = [int(l.split()[1]) for l in open(probe_log) if l.startswith("rss ")]
print(f"server RSS        idle {idle / 1024:.0f} MiB, max sampled {max(rss, default=0) / 1024:.0f} MiB, peak (VmHWM) {peak / 1024:.0f} MiB")
for path in ["/healthz", "/api/sessions?limit=50"]:
    rows = [l.split() for l in open(probe_log) if l.startswith(f"probe {path} ")]
    times = sorted(float(x[3]) * 1000 for x in rows)
    failed = sum(1 for x in rows if x[2] != "200")
    if times:
        p99 = times[min(len(times) - 1, int(round((len(times) - 1) * 0.99)))]
        print(f"{path:<22}  {len(rows)} probes, {failed} failed, p99 {p99:.0f} ms, max {times[-1]:.0f} ms")
print(f"acknowledged      {r['spans_accepted']:,} spans, stored {r.get('spans_stored', 0):,}: "
      + ("every acknowledged span is stored" if r.get("verified") else "MISMATCH"))
print(f"reproduce: bench/overload.sh --duration {duration} --connections {connections}" + (f" --budget-mib {budget}" if budget else ""))
PY
echo "$metrics"
