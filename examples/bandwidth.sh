#!/usr/bin/env bash
# cnet bandwidth limits: tc shaping per endpoint, directions as the sandbox
# sees them.
#
#        +---------------------------  host  ----------------------------+
#        |  shop0 10.89.0.1/24                                           |
#        |    |                                                          |
#        |  cnXXXXXXXXXX (veth host end)                                 |
#        |    root: tbf 20mbit  ------------------->  ingress of "web"   |
#        |    ingress qdisc: u32 match-all, mirred                       |
#        |      `--> cbXXXXXXXXXX (ifb): tbf 5mbit -->  egress of "web"    |
#        |    |                                                          |
#        |  web .2 (eth0)                                                |
#        +---------------------------------------------------------------+
#
# Run it in a throw-away test host, so the machine's own network is never
# touched:  tools/testhost env PATH="$PWD/.venv/bin:$PATH" bash examples/bandwidth.sh
# It needs iperf3 (`make system-deps` installs it), and checks the rates it
# measures (tests/kernel/test_examples.py runs it). Each cnet command is
# printed with what it shows.
set -euo pipefail

run() {
    printf '\n$ %s\n' "$*"
    "$@"
}

# A command that is meant to fail: show its error and exit code.
fails() {
    printf '\n$ %s\n' "$*"
    local rc=0
    "$@" || rc=$?
    echo "(exit code $rc)"
}

# One iperf3 run between the host (server on the gateway) and web ("into" the
# sandbox is iperf3 -R), its first second (TCP's slow start) left out,
# checked: at most 20 % above the limit (the shaping holds) and at least half
# of it (traffic flows; a busy machine may not fill the limit), or more than
# 1 Gbit/s for "none".
measure() {
    local what=$1 limit=$2 reverse=""
    [ "$what" = into ] && reverse=-R
    timeout 15 iperf3 -s -1 -B 10.89.0.1 >/dev/null 2>&1 &
    for _ in $(seq 100); do [ -n "$(ss -Htln 'sport = :5201')" ] && break; sleep 0.05; done
    ip netns exec web iperf3 -c 10.89.0.1 -t 2 -O 1 -J $reverse | python3 -c '
import json, sys
what, limit = sys.argv[1], sys.argv[2]
mbit = json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6
print(f"{what} web: {mbit:.1f} Mbit/s (limit {limit})")
if (limit == "none" and mbit < 1000) or (limit != "none" and not 0.5 * float(limit) <= mbit <= 1.2 * float(limit)):
    sys.exit("that is not the limit")' "$what" "$limit"
    wait
}

run cnet create bridge shop0 --subnet 10.89.0.0/24
run cnet create ns web
# 20 mbit into the sandbox, 5 mbit out of it; bursts default to 10 ms at the rate (at least 4 packets).
run cnet attach web shop0 --ingress-rate 20mbit --egress-rate 5mbit
run cnet ls endpoints
run cnet inspect web
host=$(cnet ls endpoints --json | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["host_ifname"])')
run tc qdisc show dev "$host"
run tc qdisc show dev "cb${host#cn}"
measure into 20
measure "out of" 5

# Change a live endpoint: the direction given is replaced, the other kept.
run cnet limit web shop0 --egress-rate 50mbit --egress-burst 64kb
measure "out of" 50

# Bad values: exit 2, nothing changed.
fails cnet limit web shop0 --ingress-rate fast
fails cnet limit web shop0 --ingress-rate 99gbit
fails cnet limit web shop0 --clear --egress-rate 1mbit

# The limits are in the state: lost shaping is a difference, and restore makes it again.
run tc qdisc del dev "$host" root
fails cnet check
run cnet restore
run cnet check

run cnet limit web shop0 --clear
measure into none

run cnet delete ns web
run cnet delete bridge shop0
run ip -br link
