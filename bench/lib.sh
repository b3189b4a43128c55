# Shared by the bench scripts (sourced, after `cd` to the repository): the binary under test, free
# ports, a process's CPU seconds and memory, and a server started on fresh loopback ports.
#
# SESSIONTRACE_BIN=path measures another build (e.g. the previous commit's) instead of building this tree.

if [ -n "${SESSIONTRACE_BIN:-}" ]; then
  BIN=$SESSIONTRACE_BIN
else
  cargo build --release --quiet -p sessiontrace-cli
  BIN=target/release/sessiontrace
fi
# A server's resident code is the pages it ran, each fault mapping its neighbours too when the page cache
# holds them (fault-around); reading the binary first makes that the same every run, and the worst case.
cat "$BIN" > /dev/null
TICKS=$(getconf CLK_TCK)

# cpu_seconds PID: user + system CPU seconds the process used so far.
cpu_seconds() { awk -v t="$TICKS" '{printf "%.3f", ($14 + $15) / t}' "/proc/$1/stat"; }
# rss_kib PID FIELD: a memory figure from /proc/PID/status (VmRSS, VmHWM), in KiB.
rss_kib() { awk -v f="$2" '$1 == f":" {print $2}' "/proc/$1/status"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 200); do curl -sf -o /dev/null "$1" && return 0; sleep 0.05; done; echo "no answer from $1" >&2; return 1; }

# start_server DATA_DIR [serve flags...]: `sessiontrace serve` on fresh ports, with $SERVER_PREFIX (e.g.
# "taskset -c 0") before it and $SERVER_PRELOAD as LD_PRELOAD; sets SERVER (the pid), HTTP, OTLP_HTTP and
# OTLP_GRPC, and returns once it answers /healthz.
start_server() {
  local data=$1; shift
  HTTP=$(free_port) OTLP_HTTP=$(free_port) OTLP_GRPC=$(free_port)
  LD_PRELOAD=${SERVER_PRELOAD:-} SESSIONTRACE_LOG=warn ${SERVER_PREFIX:-} "$BIN" serve --data-dir "$data" \
    --http "127.0.0.1:$HTTP" --otlp-http "127.0.0.1:$OTLP_HTTP" --otlp-grpc "127.0.0.1:$OTLP_GRPC" "$@" >/dev/null &
  SERVER=$!
  wait_http "http://127.0.0.1:$HTTP/healthz"
}

# start_rotel CPU: Rotel (pip package `rotel`, installed into bench/.venv-rotel) with its blackhole exporter,
# pinned to CPU, jemalloc preloaded when Debian's libjemalloc2 is there; sets ROTEL (the pid), R_HTTP and
# R_GRPC.
start_rotel() {
  if [ ! -x bench/.venv-rotel/bin/python ]; then python3 -m venv bench/.venv-rotel; fi
  bench/.venv-rotel/bin/pip install --quiet --disable-pip-version-check rotel
  local agent jemalloc=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
  agent=$(bench/.venv-rotel/bin/python -c 'import os, rotel; print(os.path.join(os.path.dirname(rotel.__file__), "rotel-agent"))')
  [ -f "$jemalloc" ] || jemalloc=""
  R_HTTP=$(free_port) R_GRPC=$(free_port)
  LD_PRELOAD=$jemalloc taskset -c "$1" "$agent" start --exporter blackhole \
    --otlp-http-endpoint "127.0.0.1:$R_HTTP" --otlp-grpc-endpoint "127.0.0.1:$R_GRPC" >/dev/null 2>&1 &
  ROTEL=$!
  for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$R_HTTP") 2>/dev/null && break; sleep 0.05; done
  sleep 1
}
