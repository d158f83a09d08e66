#!/usr/bin/env bash
# The full test suite on a fresh Debian machine: installs what the tests need, then runs them.
# Namespace tests need root; as another user they print that they are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends \
        iproute2 iputils-ping tcpdump tshark keepalived procps psmisc python3 \
        nftables nginx-light wrk haproxy >/dev/null
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build --workspace --bins
cargo test --workspace -- --test-threads=2
