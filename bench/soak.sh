#!/usr/bin/env bash
# Soak (issue 17): bench/soak.py against the release binary (or SESSIONTRACE_BIN) for an hour at half the
# server's capacity with the demo's mixed traffic beside the load generator; writes docs/soak/soak.csv and
# docs/soak/soak.png (matplotlib, installed into bench/.venv-plot) and prints how flat RSS, open files,
# CPU and p99 latency stayed. Not in CI.
#
#   bench/soak.sh [--minutes 60] [--rate SPANS_PER_S] [--workers 4] [--out docs/soak]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
if [ ! -x bench/.venv-plot/bin/python ]; then python3 -m venv bench/.venv-plot; fi
bench/.venv-plot/bin/pip install --quiet --disable-pip-version-check matplotlib
exec bench/.venv-plot/bin/python bench/soak.py --binary "$BIN" "$@"
