#!/usr/bin/env bash
# Builds the recorder and the UI (npm) and the binary (cargo, release), then runs `sessiontrace demo`: the
# server on its default ports with the embedded store, the demo shop's services on loopback, and one
# scripted session through them. Open the printed `demo page:` address to record a session of your own.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
exec "${CARGO_TARGET_DIR:-target}/release/sessiontrace" demo "$@"
