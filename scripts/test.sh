#!/usr/bin/env bash
# The full test suite on a fresh Debian machine: installs what the tests need, then runs them.
# Namespace tests need root; as another user they print that they are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # keepalived and frr are peers for interop tests, run in the tests' namespaces only: no
    # service may start on the host when they are installed (policy-rc.d, if none is there).
    no_start=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        no_start=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$no_start"
        chmod 755 "$no_start"
    fi
    apt-get install -y -qq --no-install-recommends \
        iproute2 iputils-ping tcpdump tshark keepalived frr procps psmisc python3 \
        nftables nginx-light wrk haproxy prometheus \
        debhelper lintian man-db bash-completion strace libcap2-bin util-linux systemd curl \
        vagrant vagrant-libvirt >/dev/null
    [ -z "$no_start" ] || rm -f "$no_start"
fi

cargo fmt --all -- --check
# The layers the crates promise (docs/ARCHITECTURE.md): the protocol crate and the balancer's
# core (without its `dataplane` feature) depend on no runtime, no netlink and no libc.
for crate in vrrp-proto lbcore; do
    if cargo tree -q -p "$crate" -e normal --prefix none | grep -E '^(tokio|rtnetlink|libc|nix|socket2) '; then
        echo "layering: $crate must not depend on the crates above" >&2
        exit 1
    fi
done
cargo clippy --workspace --all-targets -- -D warnings
cargo build --workspace --bins
# The Debian package of the debug build, checked by lintian (scripts/package.sh); the package
# test (tests/tests/package.rs) installs, runs and purges it.
if [ "$(id -u)" = 0 ]; then
    deb=$(DEB_BUILD_OPTIONS="noopt noautodbgsym" bash scripts/package.sh)
    export VRRPD_DEB=$deb
fi
cargo test --workspace -- --test-threads=2
