#!/usr/bin/env bash
# Builds vrrpd's Debian package (debian/, debhelper) into $DEB_DESTDIR (default
# $CARGO_TARGET_DIR/debian) and checks it with lintian; prints the .deb's path last.
# Needs root or fakeroot, debhelper and lintian (installed here when root), and cargo from
# rustup. DEB_BUILD_OPTIONS=noopt packages the debug build (what scripts/test.sh uses).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! command -v dh >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends debhelper lintian >&2
fi
target=${CARGO_TARGET_DIR:-$PWD/target}
export DEB_DESTDIR=${DEB_DESTDIR:-$target/debian}
mkdir -p "$DEB_DESTDIR"
rm -f "$DEB_DESTDIR"/vrrpd_*.deb
# The build's output goes to stderr: stdout is the package's path alone.
{
    dpkg-checkbuilddeps
    debian/rules clean
    debian/rules binary
    debian/rules clean
} >&2
deb=$(ls "$DEB_DESTDIR"/vrrpd_*.deb)
# Errors fail the build; warnings are shown.
lintian --fail-on error --suppress-tags initial-upload-closes-no-bugs "$deb" >&2
echo "$deb"
