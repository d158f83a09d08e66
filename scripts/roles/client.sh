#!/usr/bin/env bash
# Role: the client. Installs `vrrpd-lab-watch`, which asks the virtual server for a page every
# 0.2 s and prints the time and which real server answered (or FAILED).
#   client.sh
source "$(dirname "$0")/env.sh"
lab_if "$CLIENT_IP" >/dev/null
apt_install curl
mkdir -p "$ROLE_ROOT/usr/local/bin"
cat > "$ROLE_ROOT/usr/local/bin/vrrpd-lab-watch" <<SCRIPT
#!/bin/sh
# vrrpd-lab-watch [COUNT]: GET http://$VIP/ every 0.2 s (COUNT times, or until interrupted).
n=0
while [ -z "\${1:-}" ] || [ "\$n" -lt "\$1" ]; do
    answer=\$(curl -s -m 1 http://$VIP/) || answer=FAILED
    echo "\$(date +%T.%N | cut -c1-12) \${answer:-FAILED}"
    n=\$((n + 1))
    sleep 0.2
done
SCRIPT
chmod 0755 "$ROLE_ROOT/usr/local/bin/vrrpd-lab-watch"
