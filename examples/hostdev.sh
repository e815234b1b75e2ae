#!/usr/bin/env bash
# cnet hostdev: a host link itself (a spare NIC, an SR-IOV VF) moved into a
# sandbox, as the CNI host-device plugin does, and given back as it was.
#
#    namespace "lan" (stands in for the NIC's LAN: its router .1)
#        | eth0
#        |                               192.168.60.0/24
#    +---+----------------------  host  ----------------------+
#    |  nic1 (MTU 1400)  --moves into-->  sandbox web as eth0  |
#    +---------------------------------------------------------+
#
# The test hosts have no physical NIC (and this kernel no dummy module), so
# the link moved is a veth whose peer is the LAN. It makes links and a
# namespace of its own, so it runs only inside a throw-away test host:
#
#    tools/testhost env PATH="$PWD/.venv/bin:$PATH" bash examples/hostdev.sh
#
# Each cnet command is printed with what it shows; what must hold is checked
# (an unexpected exit code, a link that does not come back as it was: exit 1).
set -euo pipefail

if ! awk '$2 == "/run/netns" { print $1 }' /proc/self/mounts | grep -qx cnet-testhost; then
    echo "examples/hostdev.sh makes links of its own: run it in a test host (tools/testhost ...)" >&2
    exit 2
fi

run() {
    printf '\n$ %s\n' "$*"
    "$@"
}

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

# The link as the host has it: name, MTU, MAC, state, alias; compared at the end.
link_as_it_is() {
    ip -j link show nic1 | python3 -c 'import json, sys; (l,) = json.load(sys.stdin)
print(l["ifname"], l["mtu"], l["address"], "UP" in l["flags"], l.get("ifalias"))'
}

# The "NIC": nic1 on the host, its LAN behind it in namespace "lan".
ip netns add lan
ip link add nic1 mtu 1400 type veth peer name eth0 netns lan
ip -n lan addr add 192.168.60.1/24 dev eth0
ip -n lan link set eth0 up
ip link set nic1 up
before=$(link_as_it_is)

run cnet create hostdev nic1net --parent nic1 --subnet 192.168.60.0/24 --gateway 192.168.60.1
run cnet create ns web --network nic1net
run cnet inspect nic1net                             # the link is in sandbox web now
run cnet exec web -- ip -d link show eth0            # nic1 itself, named eth0, MTU of the network
run cnet exec web -- ip route
run cnet exec web -- ping -c1 -W2 192.168.60.1       # the LAN, straight through the NIC
run ip -br link                                      # nic1 is not on the host any more

# One sandbox at a time; no NAT, so nothing to publish.
run cnet create ns db
fails 4 cnet attach db nic1net
fails 2 cnet publish web 8080:80

# Detach gives it back under its own name, MTU, MAC and state; db can have it then.
run cnet detach web nic1net
run ip -d link show nic1
[ "$(link_as_it_is)" = "$before" ] || { echo "nic1 did not come back as it was" >&2; exit 1; }
run cnet attach db nic1net --mac 02:00:00:60:00:99   # a MAC of its own while db has it
run cnet exec db -- ping -c1 -W2 192.168.60.1

# Moved back by hand: check says where it is, restore puts it where the state says.
ip -n db link set eth0 netns "$$"
fails 5 cnet check
run cnet restore
run cnet check --deep

# Bad input gets one line and its exit code; nothing is created.
fails 3 cnet create hostdev other --parent nosuch --subnet 10.1.0.0/24   # no such link
fails 4 cnet create hostdev other --parent nic1 --subnet 10.1.0.0/24     # nic1net has it

run cnet delete ns db                                # db goes: nic1 comes back
run cnet delete ns web
run cnet delete network nic1net
run cnet ls -q
[ "$(link_as_it_is)" = "$before" ] || { echo "nic1 did not come back as it was" >&2; exit 1; }
echo "nic1 is as it was before"
