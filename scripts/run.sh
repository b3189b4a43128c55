#!/usr/bin/env bash
# README's run command: builds the browser recorder and the web UI (npm), builds the server (cargo,
# release), and runs `sessiontrace serve` on the embedded SQLite store in ./sessiontrace-data.
# Extra arguments go to `sessiontrace serve` (for example --http 127.0.0.1:9090).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
exec "${CARGO_TARGET_DIR:-target}/release/sessiontrace" serve "$@"
