#!/usr/bin/env bash
# Release artifacts, in dist/ (ignored by git):
# - sessiontrace-VERSION-ARCH-linux.tar.gz: the binary (UI and recorder inside), LICENSE, README.md, an
#   example config (packaging/sessiontrace.toml) and the systemd unit;
# - sessiontrace_VERSION_DEBARCH.deb (dpkg-deb): /usr/bin/sessiontrace, the systemd unit running
#   `sessiontrace serve` as the system user `sessiontrace` with data in /var/lib/sessiontrace, the config in
#   /etc/sessiontrace/sessiontrace.toml (a conffile); purge removes the data and the user.
# Builds with scripts/build.sh (npm, then cargo --release) unless SESSIONTRACE_BINARY names a binary to pack.
# scripts/test-release.sh installs the .deb and checks it.
set -euo pipefail
cd "$(dirname "$0")/.."
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
binary="${SESSIONTRACE_BINARY:-}"
if [ -z "$binary" ]; then
  scripts/build.sh
  binary="${CARGO_TARGET_DIR:-target}/release/sessiontrace"
fi
out="$PWD/dist"
work="$(mktemp -d /tmp/sessiontrace-release.XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

# The tarball. Debug info (the release profile keeps line tables for profiling) is stripped; symbols stay.
name="sessiontrace-$version-$(uname -m)-linux"
mkdir -p "$work/$name"
strip --strip-debug -o "$work/$name/sessiontrace" "$binary"
cp LICENSE README.md "$work/$name/"
cp packaging/sessiontrace.toml "$work/$name/sessiontrace.example.toml"
cp packaging/sessiontrace.service "$work/$name/"
tar -C "$work" -czf "$out/$name.tar.gz" "$name"

# The Debian package.
arch="$(dpkg --print-architecture)"
root="$work/deb"
install -D -m 0755 "$work/$name/sessiontrace" "$root/usr/bin/sessiontrace"
install -D -m 0644 packaging/sessiontrace.service "$root/usr/lib/systemd/system/sessiontrace.service"
install -D -m 0644 packaging/sessiontrace.toml "$root/etc/sessiontrace/sessiontrace.toml"
install -D -m 0644 README.md "$root/usr/share/doc/sessiontrace/README.md"
install -d "$root/DEBIAN"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$root/DEBIAN/"
cat > "$root/usr/share/doc/sessiontrace/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: sessiontrace

Files: *
Copyright: the sessiontrace authors
License: Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in /usr/share/common-licenses/Apache-2.0.
COPYRIGHT
echo "/etc/sessiontrace/sessiontrace.toml" > "$root/DEBIAN/conffiles"
# Depends from what the binary links: the newest glibc symbol version it needs, and libgcc_s.
glibc="$(objdump -T "$root/usr/bin/sessiontrace" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)"
depends="libc6 (>= $glibc), passwd"
if objdump -p "$root/usr/bin/sessiontrace" | grep -q 'NEEDED.*libgcc_s'; then
  depends="$depends, libgcc-s1"
fi
cat > "$root/DEBIAN/control" <<CONTROL
Package: sessiontrace
Version: $version
Architecture: $arch
Maintainer: sessiontrace authors <sessiontrace@localhost>
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $depends
Section: net
Priority: optional
Description: full-stack session recordings: browser replay beside every backend span
 One binary receiving OpenTelemetry data (OTLP gRPC and HTTP), keeping every trace of a recorded
 session in an embedded SQLite store, and serving the query API, the browser recorder and the web UI.
 The sessiontrace service runs as the user sessiontrace with its data in /var/lib/sessiontrace.
CONTROL
deb="$out/sessiontrace_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
ls -l "$out/$name.tar.gz" "$deb"
