#!/usr/bin/env bash
# SIGKILL soak (issue 17): bench/crash-soak.py against the release binary (or SESSIONTRACE_BIN). Mixed load
# (sessions, replay chunks, traces, logs), SIGKILL at a random moment of each round, restart, check that
# every acknowledged record is present.
#
#   bench/crash-soak.sh [--rounds 20] [--minutes 10] [--workers 4]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
exec python3 bench/crash-soak.py --binary "$BIN" "$@"
