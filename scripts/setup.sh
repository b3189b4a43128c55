#!/usr/bin/env bash
# Installs what scripts/test.sh needs on a fresh Debian machine (as root), and nothing that is there already:
# - Debian's chromium (browser end-to-end tests of the recorder and the UI), curl;
# - Debian's clickhouse-server and clickhouse-client (the ClickHouse store's tests; test.sh starts its own
#   throwaway servers on loopback, never the system service);
# - .venv: a Python virtual environment with the OpenTelemetry SDK, its OTLP exporters and `mcp` (the
#   real-client, Python-service and MCP tests).
# Node.js/npm and the Rust toolchain are expected on the machine. Used by .ci/run; run it once by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v curl >/dev/null || missing+=(curl)
[ -x /usr/sbin/clickhouse-server ] || command -v clickhouse-server >/dev/null || missing+=(clickhouse-server clickhouse-client)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: needs root to apt-get install ${missing[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check \
  opentelemetry-sdk opentelemetry-exporter-otlp-proto-http opentelemetry-exporter-otlp-proto-grpc mcp
echo "setup: chromium, clickhouse-server and .venv (opentelemetry-sdk, mcp) are ready"
