#!/usr/bin/env bash
# cnet quick start: bridge networks with IP address management.
#
#        +-----------------------  host  -----------------------+
#        |                                                       |
#        |   mybr0  172.26.0.1/16        auto0  172.17.0.1/16    |
#        |   (bridge, --subnet)          (bridge, subnet from    |
#        |                                the address pools)    |
#        +-------------------------------------------------------+
#
# `make demo` runs this inside a throw-away test host (tools/testhost), so the
# machine's own network is never touched. Each cnet command is printed with
# what it shows.
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

run cnet --version
run cnet create bridge mybr0 --subnet 172.26.0.0/16
run cnet create bridge auto0
run cnet create bridge dual0 --subnet 10.89.0.0/24 --subnet fd00:89::/64 --ip-range 10.89.0.128/25 --mtu 1400
run cnet ls
run cnet inspect mybr0

# What the kernel has: the bridges, up, with their gateway addresses.
run ip -br addr show type bridge

# Bad input gets one line and its exit code; nothing is created.
fails cnet create bridge other0 --subnet 172.26.99.0/24     # 4: overlaps mybr0
fails cnet create bridge "bad/name"                         # 2: not an interface name
fails cnet delete bridge nosuch                             # 3: not found
run cnet create bridge mybr0 --subnet 172.26.0.0/16 --exist-ok

run cnet ls --json
run cnet delete bridge auto0
run cnet rm network dual0
run cnet ls -q
run cnet delete bridge mybr0
run ip -br link
