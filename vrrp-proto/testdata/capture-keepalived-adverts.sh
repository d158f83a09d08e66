#!/bin/bash
# Capture keepalived 2.2.7 adverts: keepalived in ns A, tcpdump in ns B, veth between.
# Used to produce vrrp-proto/src/packet/vectors.rs (keepalived 2.2.7, Debian). Run as root:
#   OUT=/tmp/vc ./capture-keepalived-adverts.sh && python3 extract-adverts.py /tmp/vc/*.pcap
# Only touches namespaces it creates (prefix vc<pid>) and removes them on exit.
set -u
P=vc$$
A=${P}a; B=${P}b
D=${OUT:-/tmp/vrrp-capture}
mkdir -p $D
cleanup() {
  for f in $D/*.kpid $D/*.tpid; do [ -f "$f" ] && kill $(cat $f) 2>/dev/null; done
  sleep 0.5
  ip netns del $A 2>/dev/null; ip netns del $B 2>/dev/null
}
trap cleanup EXIT
ip netns add $A; ip netns add $B
ip link add ${P}x netns $A type veth peer name ${P}y netns $B
for ns in $A $B; do
  ip netns exec $ns sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
  ip netns exec $ns ip link set lo up
done
ip -n $A link set ${P}x up; ip -n $B link set ${P}y up
ip -n $A addr add 192.0.2.1/24 dev ${P}x
ip -n $B addr add 192.0.2.2/24 dev ${P}y
ip -n $A addr add 2001:db8::1/64 dev ${P}x nodad
sleep 1
ip -n $A addr show dev ${P}x

run() { # name cfgbody
  name=$1
  cat > $D/$name.conf <<CFG
global_defs { router_id cap_$name
  enable_script_security }
$2
CFG
  sed -i "s/IFACE/${P}x/" $D/$name.conf
  ip netns exec $B tcpdump -i ${P}y -w $D/$name.pcap -U 'ip proto 112 or ip6 proto 112' >/dev/null 2>&1 &
  echo $! > $D/$name.tpid
  sleep 1
  ip netns exec $A keepalived -P -n -l -f $D/$name.conf -p $D/$name.pid -r $D/$name.vpid > $D/$name.log 2>&1 &
  echo $! > $D/$name.kpid
  sleep ${3:-6}
  kill $(cat $D/$name.kpid); sleep 1.5
  kill $(cat $D/$name.tpid); sleep 0.5
  rm -f $D/$name.kpid $D/$name.tpid
}

run v2pass 'vrrp_instance VI_1 {
  state MASTER
  interface IFACE
  virtual_router_id 51
  priority 150
  advert_int 1
  authentication { auth_type PASS
    auth_pass secret12 }
  virtual_ipaddress { 192.0.2.100/24
    192.0.2.101/24 }
}'
run v2none 'vrrp_instance VI_1 {
  state BACKUP
  interface IFACE
  virtual_router_id 7
  priority 100
  advert_int 2
  virtual_ipaddress { 192.0.2.110/24 }
}' 9
run v3v4 'vrrp_instance VI_1 {
  version 3
  state MASTER
  interface IFACE
  virtual_router_id 52
  priority 200
  advert_int 0.1
  virtual_ipaddress { 192.0.2.120/24
    192.0.2.121/24
    192.0.2.122/24 }
}' 3
run v3v6 'vrrp_instance VI_6 {
  version 3
  state MASTER
  interface IFACE
  virtual_router_id 53
  priority 120
  advert_int 1
  virtual_ipaddress { fe80::53/64
    2001:db8::100/64 }
}'
