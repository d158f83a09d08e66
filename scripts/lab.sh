#!/usr/bin/env bash
# Builds the namespace lab, runs a vrrpd pair from etc/, kills the Master and reports the
# blackout a client saw. Needs root (network namespaces). Extra arguments go to vrrp-lab.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends iproute2 iputils-ping tcpdump keepalived >/dev/null
fi
cargo build --release --workspace --bins
exec "${CARGO_TARGET_DIR:-target}/release/vrrp-lab" "$@"
