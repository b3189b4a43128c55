#!/usr/bin/env bash
# The test command of README.md: Rust gates and tests, then the recorder's and the UI's builds, unit tests
# and browser end-to-end tests against the real server binary. The Python-client test runs when
# SESSIONTRACE_PYTHON names a Python with opentelemetry-sdk (.ci/run builds that virtual environment);
# browser tests need /usr/bin/chromium (Debian's chromium) and skip without it unless
# SESSIONTRACE_E2E_REQUIRED is set.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${SESSIONTRACE_PYTHON:-}" ] && [ -x .venv/bin/python ]; then
  export SESSIONTRACE_PYTHON="$PWD/.venv/bin/python"
fi

echo "== cargo fmt / clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== cargo test"
cargo build --quiet -p sessiontrace-cli
cargo test --workspace --quiet 2>&1

export SESSIONTRACE_BIN="$PWD/target/debug/sessiontrace"
echo "== recorder (npm)"
(cd recorder && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build && npm test)
echo "== ui (npm)"
(cd ui && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build && npm test && npm run test:e2e)
echo "all test suites passed"
