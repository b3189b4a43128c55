#!/usr/bin/env bash
# Captures part of the fuzz seed corpus from real clients, so the fuzzers start from what is really sent
# rather than from hand-written bodies. Each client runs against capture_server.py on 127.0.0.1, which
# writes down every request; convert.py turns those into files under fuzz/corpus/<target>/ (README in
# convert.py). Nothing but 127.0.0.1 is contacted. The clients:
#
# - the Python OpenTelemetry SDK (python_client.py): OTLP/HTTP protobuf, plain and gzip;
# - the Rust sessiontrace-sdk, through the demo shop's gateway (capture_rust.py): OTLP/HTTP protobuf and
#   JSON, and the trace headers of its traced reqwest client;
# - the browser recorder in headless Chromium (capture_browser.mjs + capture_page.html): the OTel web
#   exporter's OTLP/JSON, a replay chunk, the traceparent on the page's fetch, its header and body.
#
# Needs: SESSIONTRACE_PYTHON (default .venv/bin/python, from scripts/setup.sh); the demo-shop binary
# (DEMO_SHOP_BIN, default: built with `cargo build -p demo-shop` into CARGO_TARGET_DIR or target/);
# Chromium (CHROMIUM, default /usr/bin/chromium) and the recorder's npm install and build (RECORDER_DIR,
# default recorder/: node_modules/playwright-core and dist/recorder.js). Captures are not byte-for-byte
# reproducible (ids and times are random), so re-running rewrites the seeds.
#
#   fuzz/seeds/capture.sh
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
seeds="${root}/fuzz/seeds"
python="${SESSIONTRACE_PYTHON:-${root}/.venv/bin/python}"
recorder="${RECORDER_DIR:-${root}/recorder}"
if [[ -z "${DEMO_SHOP_BIN:-}" ]]; then
  (cd "${root}" && cargo build -p demo-shop)
  DEMO_SHOP_BIN="${CARGO_TARGET_DIR:-${root}/target}/debug/demo-shop"
fi
[[ -f "${recorder}/dist/recorder.js" ]] || (cd "${recorder}" && npm run build)

work="$(mktemp -d)"
server_pid=""
cleanup() {
  [[ -n "${server_pid}" ]] && kill "${server_pid}" 2>/dev/null || true
  rm -rf "${work}"
}
trap cleanup EXIT

# Starts a capture server writing into $work/$1; sets $origin, $backend (host:port) and $server_pid.
start_capture() {
  mkdir -p "${work}/$1"
  rm -f "${work}/port"
  python3 "${seeds}/capture_server.py" "${work}/$1" "${work}/port" "${recorder}/dist/recorder.js" \
    "${seeds}/capture_page.html" &
  server_pid=$!
  for _ in $(seq 50); do [[ -s "${work}/port" ]] && break; sleep 0.1; done
  read -r port backend_port <"${work}/port"
  origin="http://127.0.0.1:${port}"
  backend="127.0.0.1:${backend_port}"
}
stop_capture() {
  kill "${server_pid}"
  wait "${server_pid}" 2>/dev/null || true
  server_pid=""
}

start_capture python
"${python}" "${seeds}/python_client.py" "${origin}"
stop_capture

for protocol in protobuf json; do
  start_capture "rust-${protocol}"
  python3 "${seeds}/capture_rust.py" "${DEMO_SHOP_BIN}" "${origin}" "${backend}" "http/${protocol}"
  stop_capture
done

start_capture browser
node "${seeds}/capture_browser.mjs" "${origin}" "http://${backend}" "${recorder}"
stop_capture

python3 "${seeds}/convert.py" "${work}" "${root}/fuzz/corpus"
