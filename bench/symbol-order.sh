#!/usr/bin/env bash
# Writes crates/sessiontrace-cli/symbol-order.txt: the functions of the sessiontrace binary that run when
# the server starts and takes a steady OTLP/HTTP ingest load, in the order they first run. The release
# build hands this list to the linker (crates/sessiontrace-cli/build.rs), which lays those functions out
# first and together; the rest of the program follows in its usual order.
#
#   bench/symbol-order.sh [--seconds S]
#
# Why: the kernel maps a program's code in 64 KiB runs around each page it runs (fault-around), so code
# scattered over the 20 MB binary kept ~13 MiB of it resident at 10k spans/s, where the ~2.4 MB these
# functions take would do (bench/ingest.sh --rate 10000 --connections 4 shows the server's RSS).
#
# How: the release binary runs under valgrind's callgrind (every function that runs, not a sample) while
# `sessiontrace loadgen` sends 2,000 spans/s over 4 connections; then it is stopped with SIGINT so the
# shutdown path is listed too. Symbol names are mangled names: they change when a dependency or a crate's
# version or features change, not when a function's body does, so the list ages slowly; a stale name is
# skipped by the linker. Rerun this after upgrading dependencies, and commit the file.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_UNDER_LOAD=15
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_UNDER_LOAD=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v valgrind >/dev/null || apt-get install -y -qq valgrind >/dev/null
. bench/lib.sh

work=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$work"' EXIT
HTTP=$(free_port) OTLP_HTTP=$(free_port) OTLP_GRPC=$(free_port)
SESSIONTRACE_LOG=warn valgrind --tool=callgrind --demangle=no --compress-strings=no --dump-instr=no \
  --callgrind-out-file="$work/callgrind.out" "$BIN" serve --data-dir "$work/data" \
  --http "127.0.0.1:$HTTP" --otlp-http "127.0.0.1:$OTLP_HTTP" --otlp-grpc "127.0.0.1:$OTLP_GRPC" \
  >/dev/null 2>"$work/valgrind.log" &
SERVER=$!
for _ in $(seq 600); do curl -sf -o /dev/null "http://127.0.0.1:$HTTP/healthz" && break; sleep 0.1; done
"$BIN" loadgen --endpoint "http://127.0.0.1:$OTLP_HTTP" --duration "$SECONDS_UNDER_LOAD" --rate 2000 \
  --connections 4 --quiet | grep throughput
kill -INT $SERVER
wait $SERVER || true
# callgrind lists each function once per object (`ob=`) as `fn=NAME`, with `'N` after a name for its
# recursion depths; addresses without a symbol are `0x…`.
out=crates/sessiontrace-cli/symbol-order.txt
awk -v bin="$(realpath "$BIN")" '
  /^ob=/ { mine = (substr($0, 4) == bin) }
  /^fn=/ && mine { name = substr($0, 4); sub(/'"'"'[0-9]+$/, "", name); if (name !~ /^0x/ && !seen[name]++) print name }
' "$work/callgrind.out" > "$out"
echo "$out: $(wc -l < "$out") functions"
