#!/usr/bin/env bash
# Forwarding benchmark (issue 7): what forwarding everything to an upstream costs the server. Starts a
# second sessiontrace as the upstream (it accepts gzip and zstd; Rotel refuses zstd), then for each
# forwarding setup a fresh server pinned to CPU 0 with `--forward URL,mode=all...`, drives it with
# `sessiontrace loadgen` over OTLP/HTTP at a fixed rate (load and upstream on CPU 1), and prints spans per
# server CPU-second and how many spans the upstream got (`sessiontrace_forward_sent_total`) or were given
# up / dropped.
#
#   bench/forward.sh [--rate SPANS_PER_S] [--duration S]      (default 100,000 spans/s for 8 s)
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=100000 DURATION=8
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) RATE=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
. bench/lib.sh
UP_DATA=$(mktemp -d)
trap 'kill ${SERVER:-} ${UPSTREAM:-} 2>/dev/null || true; rm -rf "${DATA:-}" "$UP_DATA"' EXIT
SERVER_PREFIX="taskset -c 1" start_server "$UP_DATA"
UPSTREAM=$SERVER U_HTTP=$OTLP_HTTP U_GRPC=$OTLP_GRPC
echo "forwarding benchmark: OTLP/HTTP in at $RATE spans/s for ${DURATION}s, mode=all to a sessiontrace upstream"
for forward in "" "http://127.0.0.1:$U_HTTP,mode=all" "http://127.0.0.1:$U_HTTP,mode=all,compression=zstd" \
               "http://127.0.0.1:$U_HTTP,mode=all,compression=none" "http://127.0.0.1:$U_GRPC,mode=all,protocol=grpc" \
               "http://127.0.0.1:$U_GRPC,mode=all,protocol=grpc,compression=zstd"; do
  DATA=$(mktemp -d)
  SERVER_PREFIX="taskset -c 0" start_server "$DATA" ${forward:+--forward "$forward"}
  before=$(cpu_seconds "$SERVER")
  out=$(taskset -c 1 "$BIN" loadgen --protocol http-protobuf --endpoint "http://127.0.0.1:$OTLP_HTTP" \
        --connections 8 --rate "$RATE" --duration "$DURATION" --json --quiet)
  sleep 2  # let the queues drain
  after=$(cpu_seconds "$SERVER")
  counts=$(curl -s "http://127.0.0.1:$HTTP/metrics" | awk '
    /^sessiontrace_forward_sent_total\{.*traces/ {sent += $2}
    /^sessiontrace_forward_(failed|queue_full)_total\{.*traces/ {lost += $2}
    END {print sent + 0, lost + 0}')
  python3 - "${forward:-none}" "$out" "$before" "$after" $counts <<'PY'
import json, sys
name, out, before, after, sent, lost = sys.argv[1:]
r = json.loads(out)
spans = r["spans_accepted"]
per_cpu = spans / (float(after) - float(before))
print(f"{name}: {spans:,} spans accepted, {per_cpu:,.0f} spans per server CPU-second; "
      f"forwarded {int(sent):,}, given up or dropped {int(lost):,}")
PY
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; rm -rf "$DATA"
done
