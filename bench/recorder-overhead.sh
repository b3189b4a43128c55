#!/usr/bin/env bash
# Main-thread time the browser recorder adds to a scripted interaction on a heavy page (issue 21), measured
# in Chromium through the DevTools protocol: the overhead percentage (Performance.getMetrics TaskDuration,
# with vs without the recorder, median of RUNS alternating runs) and the longest task the recorder causes
# (a CDP trace with the V8 sampling profiler: recorder.js time per main-thread task). How, in detail: the
# header of bench/recorder-overhead.mjs. Also prints the gzip size of the recorder bundles. Figures only,
# never fails on them.
#
#   bench/recorder-overhead.sh            RUNS=5 DURATION_S=10 by default
#   RUNS=3 DURATION_S=5 bench/recorder-overhead.sh
#
# Needs Chromium (/usr/bin/chromium, or CHROMIUM=path) and a sessiontrace binary (SESSIONTRACE_BIN, default
# target/debug/sessiontrace; it only receives the uploads). Builds the recorder bundle (npm run build).
set -euo pipefail
cd "$(dirname "$0")/.."
(cd recorder && { [ -d node_modules ] || npm ci --silent; } && npm run --silent build >/dev/null 2>&1)
exec node bench/recorder-overhead.mjs
