#!/usr/bin/env bash
# One network across three hosts: cnet overlays on a three-member etcd cluster.
#
#              underlay: bridge sw0, 10.78.0.0/24 (the hosts' LAN)
#        +-----------------------+-----------------------+
#   node1 10.78.0.11        node2 10.78.0.12        node3 10.78.0.13
#   etcd member, cnet       etcd member, cnet       etcd member, cnet
#   sandbox web1            sandbox web2            sandbox web3  (+ agent)
#        \___________ overlay ov0: 10.60.0.0/24, VXLAN ______________/
#
# Each "node" is a test host of its own (tools/testhost, nested in the one this
# script runs in): its own network stack, /var/lib/cnet, /etc/cnet and
# /run/netns. Nothing leaves the test host. Run it as:
#
#    tools/testhost env PATH="$PWD/.venv/bin:$PATH" bash examples/overlay.sh
#
# Each cnet command is printed with what it shows; what must hold is checked
# (an unexpected exit code or a ping that does not answer: exit 1).
set -euo pipefail

if ! awk '$2 == "/run/netns" { print $1 }' /proc/self/mounts | grep -qx cnet-testhost; then
    echo "examples/overlay.sh makes hosts and links of its own: run it in a test host (tools/testhost ...)" >&2
    exit 2
fi
command -v etcd >/dev/null || { echo "examples/overlay.sh needs etcd (apt install etcd-server)" >&2; exit 2; }

TESTHOST="$(cd "$(dirname "$0")/.." && pwd)/tools/testhost"
STORE=etcd://10.78.0.11:2379,10.78.0.12:2379,10.78.0.13:2379
CLUSTER=node1=http://10.78.0.11:2380,node2=http://10.78.0.12:2380,node3=http://10.78.0.13:2380
PIDS=$(mktemp -d)

on() {  # on N COMMAND...: run a command on node N
    local n=$1
    shift
    nsenter --target="$(cat "$PIDS/$n")" --net --mount -- "$@"
}

run() {  # run N COMMAND...: the same, printed with a prompt naming the node
    local n=$1
    shift
    printf '\nnode%s$ %s\n' "$n" "$*"
    on "$n" "$@"
}

stop_nodes() {  # a node's test host kills what runs in it (its etcd) when its command ends
    for n in 1 2 3; do
        [ -f "$PIDS/$n" ] && kill "$(cat "$PIDS/$n")" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$PIDS"
}
trap stop_nodes EXIT

ip link add sw0 type bridge
ip addr add 10.78.0.1/24 dev sw0
ip link set sw0 up
for n in 1 2 3; do
    "$TESTHOST" sh -c "echo \$\$ > $PIDS/$n.tmp && mv $PIDS/$n.tmp $PIDS/$n && exec sleep infinity" &
    while [ ! -f "$PIDS/$n" ]; do sleep 0.05; done
    ip link add "p$n" type veth peer name eth0 netns "$(cat "$PIDS/$n")"
    ip link set "p$n" master sw0 up
    on "$n" ip addr add "10.78.0.1$n/24" dev eth0
    on "$n" ip link set eth0 up
    on "$n" sh -c "printf 'store: $STORE\nadvertise: 10.78.0.1$n\nhost: node$n\n' > /etc/cnet/config.yaml"
    on "$n" sh -c "etcd --name node$n --data-dir /var/lib/cnet/etcd \
        --listen-peer-urls http://10.78.0.1$n:2380 --initial-advertise-peer-urls http://10.78.0.1$n:2380 \
        --listen-client-urls http://10.78.0.1$n:2379 --advertise-client-urls http://10.78.0.1$n:2379 \
        --initial-cluster $CLUSTER --initial-cluster-state new > /var/lib/cnet/etcd.log 2>&1 &"
done
for _ in $(seq 100); do
    on 1 etcdctl --endpoints="${STORE//etcd:\/\//}" endpoint health >/dev/null 2>&1 && break
    sleep 0.2
done
echo "etcd: three members healthy"

# node3 runs the agent: it hears of the others' endpoints as they come.
on 3 sh -c 'cnet agent > /var/lib/cnet/agent.log 2>&1 &'

run 1 cnet create overlay ov0 --subnet 10.60.0.0/24      # recorded in etcd
run 2 cnet create overlay ov0                             # joined: the same subnet, VNI and MTU
run 3 cnet create overlay ov0
run 1 cnet create ns web1 --network ov0
run 2 cnet create ns web2 --network ov0
run 3 cnet create ns web3 --network ov0
run 1 cnet create overlay ov0 --exist-ok                  # any overlay command brings a host up to date
run 2 cnet create overlay ov0 --exist-ok
run 2 cnet exec web2 -- ping -c 1 -W 2 10.60.0.2          # web1, on node1
run 1 cnet exec web1 -- ping -c 1 -W 2 10.60.0.4          # web3, on node3
run 3 cnet exec web3 -- ping -c 1 -W 2 10.60.0.3          # node3's agent knew of web2 at once
run 1 bridge fdb show dev cnvx4096                        # the other hosts' endpoints: MAC -> VTEP
run 1 ip neigh show dev cnvx4096                          # ARP answered from these, never flooded
run 2 cnet inspect ov0                                    # node3's agent holds a lease: alive
run 2 cnet delete ns web2
run 1 cnet create overlay ov0 --exist-ok
if on 1 cnet exec web1 -- ping -c 1 -W 1 10.60.0.3 >/dev/null; then
    echo "web2 still answers after its deletion" >&2
    exit 1
fi
echo "web2 is gone from node1's view too"
run 3 cat /var/lib/cnet/agent.log
