#!/usr/bin/env bash
# Role: real server 1 or 2 behind the virtual server (DR): VIP on lo, not answered in ARP,
# and nginx serving a page that names the server.
#   realserver.sh 1|2
source "$(dirname "$0")/env.sh"
n=${1:?usage: realserver.sh 1|2}
case "$n" in
    1) my_ip=$RS1_IP ;;
    2) my_ip=$RS2_IP ;;
    *) echo "realserver.sh: 1 or 2, not $n" >&2; exit 1 ;;
esac
ifname=$(lab_if "$my_ip")
apt_install nginx-light iproute2

# DR: the balancer forwards frames addressed to VIP unchanged; this host takes them on lo
# and never answers ARP for VIP (the balancer's Master does).
sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
    "net.ipv4.conf.$ifname.arp_ignore=1" "net.ipv4.conf.$ifname.arp_announce=2"
ip addr replace "$VIP/32" dev lo

www="$ROLE_ROOT/srv/vrrpd-lab"
run="$ROLE_ROOT/run/vrrpd-lab"
mkdir -p "$www" "$run" "$ROLE_ROOT/etc/vrrpd-lab"
echo "rs$n" > "$www/index.html"
cat > "$ROLE_ROOT/etc/vrrpd-lab/nginx.conf" <<CONF
# vrrpd lab, real server $n (scripts/roles/realserver.sh).
worker_processes 1;
pid $run/nginx.pid;
error_log $run/nginx-error.log;
events {
    worker_connections 512;
}
http {
    access_log off;
    server {
        listen 80;
        root $www;
    }
}
CONF
if [ "$ROLE_SYSTEMD" = 1 ]; then
    # The lab's own nginx instead of the default site.
    systemctl disable --now nginx 2>/dev/null || true
fi
install_unit vrrpd-lab-nginx "[Unit]
Description=vrrpd lab: real server $n
After=network.target

[Service]
# The DR settings above again, so that they survive a reboot of the VM.
ExecStartPre=/usr/sbin/sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 net.ipv4.conf.$ifname.arp_ignore=1 net.ipv4.conf.$ifname.arp_announce=2
ExecStartPre=/usr/sbin/ip addr replace $VIP/32 dev lo
ExecStart=/usr/sbin/nginx -c $ROLE_ROOT/etc/vrrpd-lab/nginx.conf -g \"daemon off;\"
Restart=on-failure

[Install]
WantedBy=multi-user.target"
