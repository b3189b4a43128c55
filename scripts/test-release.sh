#!/usr/bin/env bash
# Checks the release artifacts on this machine, as root: the tarball's binary runs from an empty folder;
# the .deb installs with dpkg -i (user, data folder, unit, config), the unit's ExecStart line runs as the
# unit's User in its WorkingDirectory (no systemd needed) and answers /healthz, the UI and /recorder.js,
# writes its store in /var/lib/sessiontrace; then dpkg --purge removes binary, data and user.
# Usage: scripts/test-release.sh [DEB] (default: build both with scripts/release.sh). Not part of
# scripts/test.sh: it installs a package and adds a user to the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
[ "$(id -u)" = 0 ] || { echo "test-release: must run as root (dpkg -i)" >&2; exit 1; }
if dpkg -s sessiontrace >/dev/null 2>&1; then
  echo "test-release: a sessiontrace package is installed already; not touching it" >&2
  exit 1
fi
deb="${1:-}"
if [ -z "$deb" ]; then
  scripts/release.sh
  version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
  deb="dist/sessiontrace_${version}_$(dpkg --print-architecture).deb"
fi
tarball="$(dirname "$deb")/$(basename "$deb" | sed 's/^sessiontrace_\([^_]*\)_.*$/sessiontrace-\1/')-$(uname -m)-linux.tar.gz"
work="$(mktemp -d /tmp/sessiontrace-release-test.XXXXXX)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if dpkg -s sessiontrace >/dev/null 2>&1; then dpkg --purge sessiontrace >/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "test-release: FAILED: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "== tarball $tarball"
tar -C "$work" -xzf "$tarball"
unpacked="$(find "$work" -mindepth 1 -maxdepth 1 -type d)"
for file in sessiontrace LICENSE README.md sessiontrace.example.toml sessiontrace.service; do
  [ -e "$unpacked/$file" ] || fail "$file is not in the tarball"
done
version_line="$(cd "$work" && "$unpacked/sessiontrace" --version)"
[[ "$version_line" == "sessiontrace "*" (commit "* ]] || fail "--version said: $version_line"

echo "== dpkg -i $deb"
dpkg -i "$deb"
getent passwd sessiontrace >/dev/null || fail "no user sessiontrace"
[ "$(stat -c %U /var/lib/sessiontrace)" = sessiontrace ] || fail "/var/lib/sessiontrace is not sessiontrace's"
unit=/usr/lib/systemd/system/sessiontrace.service
[ -f "$unit" ] || fail "no $unit"
[ -f /etc/sessiontrace/sessiontrace.toml ] || fail "no /etc/sessiontrace/sessiontrace.toml"
exec_start="$(sed -n 's/^ExecStart=//p' "$unit")"
user="$(sed -n 's/^User=//p' "$unit")"
workdir="$(sed -n 's/^WorkingDirectory=//p' "$unit")"
environment="$(sed -n 's/^Environment=//p' "$unit")"
echo "ExecStart: $exec_start (User=$user, WorkingDirectory=$workdir)"

# The unit's command as systemd would run it; free ports through SESSIONTRACE_* (the unit sets none), so
# a server already on 8080 here does not matter.
http_port="$(free_port)" otlp_http_port="$(free_port)" otlp_grpc_port="$(free_port)"
# shellcheck disable=SC2086 # ExecStart is split into words, as systemd does
(cd "$workdir" && exec runuser -u "$user" -- env $environment \
  SESSIONTRACE_HTTP="127.0.0.1:$http_port" SESSIONTRACE_OTLP_HTTP="127.0.0.1:$otlp_http_port" \
  SESSIONTRACE_OTLP_GRPC="127.0.0.1:$otlp_grpc_port" $exec_start) >"$work/server.log" 2>&1 &
server_pid=$!
api="http://127.0.0.1:$http_port"
for _ in $(seq 1 150); do
  curl -fsS "$api/healthz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; fail "the server exited"; }
  sleep 0.2
done
curl -fsS "$api/healthz" >/dev/null || { cat "$work/server.log"; fail "/healthz did not answer"; }
curl -fsS -o "$work/page.html" "$api/sessions/abc" && grep -q '<div id="app">' "$work/page.html" || fail "the UI is not served"
curl -fsS -o "$work/recorder.js" "$api/recorder.js" && grep -q sessiontrace "$work/recorder.js" || fail "/recorder.js is not served"
[ "$(stat -c %U /var/lib/sessiontrace/sessiontrace.db)" = sessiontrace ] || fail "the store is not in /var/lib/sessiontrace"
kill -TERM "$server_pid"
wait "$server_pid" || true
server_pid=""

echo "== dpkg --purge sessiontrace"
dpkg --purge sessiontrace >/dev/null
[ ! -e /usr/bin/sessiontrace ] || fail "/usr/bin/sessiontrace is still there"
[ ! -e /var/lib/sessiontrace ] || fail "/var/lib/sessiontrace is still there"
! getent passwd sessiontrace >/dev/null || fail "the user sessiontrace is still there"
echo "release test passed in $((SECONDS - started)) s ($(du -h "$deb" | cut -f1) .deb, $(du -h "$tarball" | cut -f1) tarball)"
