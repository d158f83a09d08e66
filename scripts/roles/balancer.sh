#!/usr/bin/env bash
# Role: balancer node a or b. vrrpd built from the source and installed as a Debian package
# (on a VM), then the pair: VRRP instance VI_1 holding VIP, a virtual server on VIP:80 that
# balances over the two real servers in DR with HTTP health checks, in vrrpd's own dataplane.
#   balancer.sh a|b
source "$(dirname "$0")/env.sh"
node=${1:?usage: balancer.sh a|b}
case "$node" in
    a) my_ip=$A_IP peer=$B_IP state=MASTER priority=150 ;;
    b) my_ip=$B_IP peer=$A_IP state=BACKUP priority=100 ;;
    *) echo "balancer.sh: node a or b, not $node" >&2; exit 1 ;;
esac
ifname=$(lab_if "$my_ip")

if [ "$ROLE_INSTALL" = 1 ]; then
    apt_install build-essential curl ca-certificates debhelper lintian nftables
    # Debian 12's rustc is too old (vrrpd needs 1.85): rustup's stable toolchain.
    if [ ! -x "$HOME/.cargo/bin/cargo" ]; then
        curl --proto '=https' -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    fi
    export PATH="$HOME/.cargo/bin:$PATH"
    src=$(cd "$(dirname "$0")/../.." && pwd)
    deb=$(cd "$src" && CARGO_TARGET_DIR=/var/tmp/vrrpd-target bash scripts/package.sh)
    apt-get install -y -qq "$deb"
fi

# A real server of the virtual server, with its HTTP check.
real_server() {
    cat <<BLOCK
    real_server $1 80 {
        HTTP_GET {
            url {
                path /
                status_code 200
            }
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
BLOCK
}

mkdir -p "$ROLE_ROOT/etc/keepalived"
cat > "$ROLE_ROOT/etc/keepalived/keepalived.conf" <<CONF
# vrrpd lab, balancer $node (scripts/roles/balancer.sh).
global_defs {
    router_id lab_$node
}

vrrp_instance VI_1 {
    state $state
    interface $ifname
    virtual_router_id $VRID
    priority $priority
    advert_int $ADVERT_INT
    version 3
    unicast_src_ip $my_ip
    unicast_peer {
        $peer
    }
    virtual_ipaddress {
        $VIP/$LAB_PREFIX dev $ifname
    }
}

# Forwarded by vrrpd's dataplane only where VI_1 is Master; the real servers answer the
# client directly (DR: they hold VIP on lo).
virtual_server $VIP 80 {
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP
$(real_server "$RS1_IP")
$(real_server "$RS2_IP")
}
CONF

if [ "$ROLE_SYSTEMD" = 1 ]; then
    # As an upgrade from keepalived would: keepalived off, vrrpd on.
    systemctl disable --now keepalived 2>/dev/null || true
    systemctl enable vrrpd
    systemctl restart vrrpd
fi
