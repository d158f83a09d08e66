# Settings shared by the role scripts (sourced). Every value can be overridden from the
# environment: the Vagrantfile passes the VMs' addresses (192.168.56.0/24, VirtualBox's default
# host-only range), the namespace lab (tests/tests/roles.rs) documentation addresses and a
# directory of its own as ROLE_ROOT.
set -euo pipefail

: "${A_IP:=192.168.56.11}"       # balancer a (VRRP Master, priority 150)
: "${B_IP:=192.168.56.12}"       # balancer b (priority 100)
: "${RS1_IP:=192.168.56.21}"     # real servers (nginx), behind the virtual server in DR
: "${RS2_IP:=192.168.56.22}"
: "${CLIENT_IP:=192.168.56.31}"
: "${VIP:=192.168.56.100}"       # the virtual IP and virtual server address
: "${LAB_PREFIX:=24}"
: "${VRID:=51}"
: "${ADVERT_INT:=0.5}"
# Where files go: / on a VM, a per-host directory in the namespace lab.
: "${ROLE_ROOT:=}"
# 1: install packages with apt-get (and build vrrpd); 0: use what is installed.
: "${ROLE_INSTALL:=1}"
# 1: start the services with systemctl; 0: only write them (the lab starts their ExecStart).
: "${ROLE_SYSTEMD:=1}"

# The interface holding ADDR (the VMs' private network is not always eth1).
lab_if() {
    local ifname
    ifname=$(ip -o -4 addr show | awk -v a="$1" '{ split($4, p, "/"); if (p[1] == a) print $2 }' | head -n1)
    if [ -z "$ifname" ]; then
        echo "no interface has $1" >&2
        return 1
    fi
    echo "$ifname"
}

apt_install() {
    if [ "$ROLE_INSTALL" = 1 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "$@"
    fi
}

# Write a systemd unit for a service of the lab; started now unless ROLE_SYSTEMD=0.
install_unit() {
    local name=$1 text=$2
    mkdir -p "$ROLE_ROOT/etc/systemd/system"
    printf '%s\n' "$text" > "$ROLE_ROOT/etc/systemd/system/$name.service"
    if [ "$ROLE_SYSTEMD" = 1 ]; then
        systemctl daemon-reload
        systemctl enable "$name"
        systemctl restart "$name"
    fi
}
