#!/usr/bin/env bash
# Builds what the binary embeds and the binary itself: the browser recorder and the web UI (npm, into
# recorder/dist and ui/dist), then `sessiontrace` (cargo, release). Used by run.sh, demo.sh and release.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
(cd recorder && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
(cd ui && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
cargo build --release -p sessiontrace-cli
