#!/usr/bin/env bash
# cnet quick start: bridges with IP address management, sandboxes on them,
# a published port.
#
#        +-----------------------------  host  ------------------------------+
#        |   127.0.0.1:8080 --DNAT--> web:80                                 |
#        |                                                                   |
#        |   mybr0  172.26.0.1/16                 auto0  172.17.0.1/16       |
#        |     |            |                     (bridge, subnet from       |
#        |   web .2       db .3                    the address pools)        |
#        |   (sandboxes: named network namespaces, veth pairs, eth0 inside)  |
#        +-------------------------------------------------------------------+
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
run cnet ls --json

# What the kernel has: the bridges, up, with their gateway addresses.
run ip -br addr show type bridge

# Bad input gets one line and its exit code; nothing is created.
fails cnet create bridge other0 --subnet 172.26.99.0/24     # 4: overlaps mybr0
fails cnet create bridge "bad/name"                         # 2: not an interface name
fails cnet delete bridge nosuch                             # 3: not found
run cnet create bridge mybr0 --subnet 172.26.0.0/16 --exist-ok

# Sandboxes: named network namespaces plugged into mybr0.
run cnet create ns web
run cnet attach web mybr0
run cnet create ns db --network mybr0
run cnet ls endpoints
run cnet exec web -- ping -c1 -W2 db
run cnet exec web -- ip -br addr
run ip netns list

# A published port: a server in web, reached through the host's 127.0.0.1.
run cnet publish web 8080:80
cnet exec web -- python3 -m http.server 80 --bind 0.0.0.0 >/dev/null 2>&1 &
for _ in $(seq 50); do
    python3 -c 'import socket; socket.create_connection(("172.26.0.2", 80), 1)' 2>/dev/null && break
    sleep 0.1
done
run python3 -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:8080/").status, "from web through 127.0.0.1:8080")'
run cnet ls ports
fails cnet publish db 8080:80                                # 4: host port taken
kill %1 2>/dev/null || true

run cnet delete ns web
run cnet delete ns db
run cnet delete bridge auto0
run cnet rm network dual0
run cnet ls -q
run cnet delete bridge mybr0
run ip -br link
run ip netns list
