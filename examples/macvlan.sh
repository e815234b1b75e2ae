#!/usr/bin/env bash
# cnet macvlan: sandboxes on the host's LAN directly, each with a MAC and an
# address of the LAN, no NAT and no published ports.
#
#    namespace "lan" (stands in for the LAN: a client .100, its router .1)
#        | eth0
#        |                                   192.168.50.0/24
#    +---+--------------------------  host  ---------------------------+
#    |  lan0 (the parent)  --macvlan-->  web .64  db .65  (eth0 each)   |
#    |       192.168.50.10               cnh... .127 (--host-access)   |
#    +-----------------------------------------------------------------+
#
# It makes links and a namespace of its own for the LAN, so it runs only
# inside a throw-away test host (tools/testhost), never on the machine:
#
#    tools/testhost env PATH="$PWD/.venv/bin:$PATH" bash examples/macvlan.sh
#
# Each cnet command is printed with what it shows; what must hold is checked
# (an unexpected exit code, a parent changed by cnet: the example exits 1).
set -euo pipefail

if ! awk '$2 == "/run/netns" { print $1 }' /proc/self/mounts | grep -qx cnet-testhost; then
    echo "examples/macvlan.sh makes links of its own: run it in a test host (tools/testhost ...)" >&2
    exit 2
fi

run() {
    printf '\n$ %s\n' "$*"
    "$@"
}

# A command that is meant to fail with exit code $1: show its error and code,
# and stop the example if it does anything else.
fails() {
    local want=$1 rc=0
    shift
    printf '\n$ %s\n' "$*"
    "$@" || rc=$?
    echo "(exit code $rc)"
    if [ "$rc" != "$want" ]; then
        echo "expected exit code $want" >&2
        exit 1
    fi
}

# The LAN: a veth pair, lan0 on the host, eth0 in namespace "lan".
ip netns add lan
ip link add lan0 type veth peer name eth0 netns lan
ip link add lan1 type veth peer name eth1 netns lan
ip -n lan addr add 192.168.50.100/24 dev eth0
ip -n lan addr add 192.168.50.1/24 dev eth0
for l in lo eth0 eth1; do ip -n lan link set "$l" up; done
ip link set lan0 up
ip link set lan1 up
ip addr add 192.168.50.10/24 dev lan0       # the host is on that LAN too
parent_before=$(ip -d -j link show lan0; ip -j addr show lan0 | sed 's/"tentative":true,//')

# A macvlan network on lan0: the LAN's subnet and router; cnet hands out the range.
run cnet create macvlan lan --parent lan0 --subnet 192.168.50.0/24 --gateway 192.168.50.1 \
    --ip-range 192.168.50.64/26
run cnet create ns web --network lan
run cnet create ns db --network lan
run cnet inspect lan
run cnet ls endpoints
run cnet exec web -- ip -d link show eth0
run cnet exec web -- ip route

# The LAN reaches the sandboxes at their own addresses, and they reach each other (bridge mode).
run ip netns exec lan ping -c1 -W2 192.168.50.64
run cnet exec web -- ping -c1 -W2 db
run cnet exec db -- ping -c1 -W2 192.168.50.100

# No NAT, so nothing to publish; and the kernel keeps the host from its own macvlan children.
fails 2 cnet publish web 8080:80
fails 1 ping -c1 -W1 192.168.50.64                 # the host cannot reach web

# --host-access gives the host a macvlan of its own on lan0, with a route to the range.
run cnet delete network lan --force
run cnet create macvlan lan --parent lan0 --subnet 192.168.50.0/24 --gateway 192.168.50.1 \
    --ip-range 192.168.50.64/26 --host-access
run cnet attach web lan
run ping -c1 -W2 192.168.50.64
run ip route show 192.168.50.64/26

# Bad input gets one line and its exit code; nothing is created.
fails 3 cnet create macvlan other --parent nosuch --subnet 10.1.0.0/24               # no such parent
fails 4 cnet create macvlan other --parent lan0 --subnet 10.1.0.0/24 --mode private   # lan0 carries bridge mode
fails 2 cnet create macvlan other --parent lan1 --subnet 10.1.0.0/24 --mtu 9000       # above the parent's MTU
# ipvlan is the same with ipvlan links (modes l2, l3, l3s); a kernel without the
# module refuses with 1 and says so.
if [ -d /sys/module/ipvlan ] || modprobe -n -q ipvlan 2>/dev/null; then
    run cnet create ipvlan ipv --parent lan1 --subnet 10.2.0.0/24
    run cnet delete network ipv
else
    fails 1 cnet create ipvlan ipv --parent lan1 --subnet 10.2.0.0/24
fi

# A private network: its sandboxes reach the LAN but not each other.
run cnet create macvlan quiet --parent lan1 --subnet 10.3.0.0/24 --mode private
ip -n lan addr add 10.3.0.100/24 dev eth1
run cnet create ns a --network quiet
run cnet create ns b --network quiet
run cnet exec a -- ping -c1 -W2 10.3.0.100
fails 1 cnet exec a -- ping -c1 -W1 10.3.0.3         # private: not its sibling

run cnet delete ns web
run cnet delete ns db
run cnet delete ns a
run cnet delete ns b
run cnet delete network lan
run cnet delete network quiet
run cnet ls -q
run ip -br link
# Deleting the networks never touches the parent.
parent_after=$(ip -d -j link show lan0; ip -j addr show lan0 | sed 's/"tentative":true,//')
if [ "$parent_before" != "$parent_after" ]; then
    echo "lan0 changed" >&2
    exit 1
fi
echo "lan0 is as it was before"
