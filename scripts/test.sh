#!/usr/bin/env bash
# The test command of README.md. Every suite runs, or the command fails: a suite whose prerequisite is
# missing fails with what to do, unless its opt-out variable is set (then the closing lines say so):
#   SESSIONTRACE_SKIP_BROWSER=1     browser end-to-end tests of the recorder and the UI (/usr/bin/chromium)
#   SESSIONTRACE_SKIP_PYTHON=1      tests with Python's OpenTelemetry SDK and `mcp` (.venv)
#   SESSIONTRACE_SKIP_CLICKHOUSE=1  the ClickHouse store's conformance, scale-out and end-to-end tests
#                                   (clickhouse-server; two throwaway servers on loopback, started here)
#   SESSIONTRACE_SKIP_FUZZ=1        a minute of every fuzz target (scripts/fuzz.sh 60; it installs the nightly
#                                   toolchain and cargo-fuzz when missing, and is left out, said below, only
#                                   when they cannot be installed)
# scripts/setup.sh installs all three; run as root, this command runs it when one is missing. Order: the npm builds first (the binary embeds the UI and the
# recorder), then the Rust gates and tests, then the npm tests and the browser end-to-end tests against
# the binary. The closing lines count the tests of each suite.
set -euo pipefail
cd "$(dirname "$0")/.."
logs="$(mktemp -d /tmp/sessiontrace-test.XXXXXX)"
summary=()
total_passed=0 total_failed=0 total_skipped=0

opted_out() { [ -n "${!1:-}" ] && [ "${!1}" != 0 ]; }
missing() {
  echo "test.sh: $1 — run scripts/setup.sh (as root), or set $2=1 to leave these tests out" >&2
  exit 1
}

# --- prerequisites -----------------------------------------------------------------------------------
# On a fresh machine, as root, the command sets itself up first (scripts/setup.sh: apt and a venv), unless
# SESSIONTRACE_NO_SETUP=1; otherwise a missing prerequisite fails below with what to run.
prerequisites_ready() {
  { opted_out SESSIONTRACE_SKIP_BROWSER || [ -x "${CHROMIUM:-/usr/bin/chromium}" ]; } &&
  { opted_out SESSIONTRACE_SKIP_PYTHON || "${SESSIONTRACE_PYTHON:-$PWD/.venv/bin/python}" \
      -c 'import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.grpc, mcp' 2>/dev/null; } &&
  { opted_out SESSIONTRACE_SKIP_CLICKHOUSE || command -v clickhouse-server >/dev/null || [ -x /usr/sbin/clickhouse-server ]; }
}
if ! prerequisites_ready && [ "$(id -u)" = 0 ] && ! opted_out SESSIONTRACE_NO_SETUP; then
  echo "== setup (scripts/setup.sh: a prerequisite is missing)"
  bash scripts/setup.sh
fi
if ! opted_out SESSIONTRACE_SKIP_BROWSER; then
  [ -x "${CHROMIUM:-/usr/bin/chromium}" ] || missing "no Chromium at ${CHROMIUM:-/usr/bin/chromium}" SESSIONTRACE_SKIP_BROWSER
  export SESSIONTRACE_E2E_REQUIRED=1
fi
if ! opted_out SESSIONTRACE_SKIP_PYTHON; then
  python="${SESSIONTRACE_PYTHON:-$PWD/.venv/bin/python}"
  "$python" -c 'import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.grpc, mcp' 2>/dev/null \
    || missing "no Python with opentelemetry-sdk, its OTLP exporters and mcp at $python" SESSIONTRACE_SKIP_PYTHON
  export SESSIONTRACE_PYTHON="$python"
fi
if ! opted_out SESSIONTRACE_SKIP_CLICKHOUSE; then
  command -v clickhouse-server >/dev/null || [ -x /usr/sbin/clickhouse-server ] \
    || missing "no clickhouse-server" SESSIONTRACE_SKIP_CLICKHOUSE
  # Two throwaway servers (the two shards of the cluster `sessiontrace_test`) on free loopback ports,
  # stopped by a watchdog when this script ends.
  ports=($(python3 -c 'import socket
ss=[socket.socket() for _ in range(4)]
[s.bind(("127.0.0.1",0)) for s in ss]
print(" ".join(str(s.getsockname()[1]) for s in ss))'))
  clickhouse_dir="$logs/clickhouse"
  SESSIONTRACE_CLICKHOUSE_URL="$(bash scripts/clickhouse.sh start "$clickhouse_dir/1" "${ports[0]}" "${ports[2]}" "${ports[2]}" "${ports[3]}")"
  SESSIONTRACE_CLICKHOUSE_URL_2="$(bash scripts/clickhouse.sh start "$clickhouse_dir/2" "${ports[1]}" "${ports[3]}" "${ports[2]}" "${ports[3]}")"
  export SESSIONTRACE_CLICKHOUSE_URL SESSIONTRACE_CLICKHOUSE_URL_2
  test_pid=$$
  (
    while kill -0 "$test_pid" 2>/dev/null; do sleep 2; done
    bash scripts/clickhouse.sh stop "$clickhouse_dir/1"
    bash scripts/clickhouse.sh stop "$clickhouse_dir/2"
    rm -rf "$logs"
  ) >/dev/null 2>&1 </dev/null &
else
  trap 'rm -rf "$logs"' EXIT
fi

# --- counting ----------------------------------------------------------------------------------------
# count SUITE LOG KIND: adds the passed/failed/skipped tests in LOG (cargo, node or vitest output).
count() {
  local suite="$1" log="$2" kind="$3" passed failed skipped
  case "$kind" in
  cargo)
    read -r passed failed skipped < <(awk '/^test result:/ { for (i = 1; i <= NF; i++) {
        if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
        END { print p + 0, f + 0, s + 0 }' "$log")
    ;;
  fuzz)
    # A target that ran its share of the minute without a crash counts as one passed test.
    read -r passed failed skipped < <(awk '/^fuzz\.sh: .* ok, / { p++ } END { print p + 0, 0, 0 }' "$log")
    ;;
  node)
    read -r passed failed skipped < <(awk '/^(# |ℹ )pass / { p += $NF } /^(# |ℹ )fail / { f += $NF }
        /^(# |ℹ )skipped / { s += $NF } END { print p + 0, f + 0, s + 0 }' "$log")
    ;;
  vitest)
    read -r passed failed skipped < <(sed 's/\x1b\[[0-9;]*m//g' "$log" | awk '/^ +Tests +/ {
        for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i;
        if ($(i+1) ~ /^skipped/) s += $i } } END { print p + 0, f + 0, s + 0 }')
    ;;
  esac
  if [ "$passed" -eq 0 ]; then
    echo "test.sh: suite '$suite' ran no test" >&2
    exit 1
  fi
  total_passed=$((total_passed + passed)) total_failed=$((total_failed + failed))
  total_skipped=$((total_skipped + skipped))
  if [ "$skipped" -gt 0 ]; then
    summary+=("$suite $passed passed, $skipped skipped")
  else
    summary+=("$suite $passed passed")
  fi
}

# run SUITE KIND COMMAND...: runs the command with its output shown and kept, then counts it.
run() {
  local suite="$1" kind="$2" log="$logs/$1.log"
  shift 2
  "$@" 2>&1 | tee "$log"
  count "$suite" "$log" "$kind"
}

# --- builds ------------------------------------------------------------------------------------------
echo "== npm builds (embedded in the binary)"
(cd recorder && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
(cd ui && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)

echo "== cargo fmt / clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== cargo test"
# One build of the workspace's tests (the binary, target/debug/sessiontrace, included); the ClickHouse runs
# below reuse its test binaries: `cargo test -p sessiontrace-cli` would build everything again with other
# features (cargo unifies features over the packages it builds), twice the time and disk.
run cargo cargo cargo test --workspace --quiet
if ! opted_out SESSIONTRACE_SKIP_CLICKHOUSE; then
  echo "== cargo test, end-to-end tests on the ClickHouse store"
  clickhouse_tests=(real_clients crash auth grafana signals)
  mapfile -t executables < <(cargo test --workspace --no-run --quiet --message-format=json | python3 -c '
import json, sys
wanted = set(sys.argv[1:])
for line in sys.stdin:
    message = json.loads(line)
    target = message.get("target", {})
    if message.get("reason") == "compiler-artifact" and target.get("kind") == ["test"] \
            and target.get("name") in wanted and "/sessiontrace-cli#" in message["package_id"]:
        print(message["executable"])' "${clickhouse_tests[@]}")
  if [ "${#executables[@]}" -ne "${#clickhouse_tests[@]}" ]; then
    echo "test.sh: found ${#executables[@]} of the ${#clickhouse_tests[@]} ClickHouse test binaries" >&2
    exit 1
  fi
  run cargo-clickhouse cargo bash -c 'cd crates/sessiontrace-cli && for test in "$@"; do
      SESSIONTRACE_TEST_STORE=clickhouse "$test" --quiet || exit 1; done' - "${executables[@]}"
fi

fuzz_left_out=""
if ! opted_out SESSIONTRACE_SKIP_FUZZ; then
  echo "== fuzz (scripts/fuzz.sh 60: every fuzz target, a minute in all)"
  fuzz_status=0
  bash scripts/fuzz.sh 60 2>&1 | tee "$logs/fuzz.log" || fuzz_status=$?
  if [ "$fuzz_status" -eq 3 ]; then
    fuzz_left_out="fuzz (nightly or cargo-fuzz could not be installed)"
  elif [ "$fuzz_status" -ne 0 ]; then
    echo "test.sh: a fuzz target failed (scripts/fuzz.sh above)" >&2
    exit 1
  else
    count fuzz "$logs/fuzz.log" fuzz
  fi
fi

export SESSIONTRACE_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/sessiontrace"
echo "== recorder (npm test)"
run recorder node bash -c 'cd recorder && npm test'
echo "== ui (npm test, npm run test:e2e)"
run ui-unit vitest bash -c 'cd ui && npm test'
run ui-e2e node bash -c 'cd ui && npm run test:e2e'

opted=()
for variable in SESSIONTRACE_SKIP_BROWSER SESSIONTRACE_SKIP_PYTHON SESSIONTRACE_SKIP_CLICKHOUSE SESSIONTRACE_SKIP_FUZZ; do
  if opted_out "$variable"; then opted+=("$variable=1"); fi
done
if [ -n "$fuzz_left_out" ]; then opted+=("$fuzz_left_out"); fi
echo "suites: $(IFS=';'; echo "${summary[*]}" | sed 's/;/; /g')${opted:+ (left out: ${opted[*]})}"
echo "total: $total_passed passed, $total_failed failed, $total_skipped skipped"
[ "$total_failed" -eq 0 ]
