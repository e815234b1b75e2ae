#!/usr/bin/env bash
# Two virtual switches joined by a router namespace, as in the articles
# ("start a container that runs only a kernel with forwarding on, to
# simulate a router"):
#
#     a1 10.1.0.2 ---+                               +--- b1 10.2.0.2
#                    front (10.1.0.0/24) -- r1 -- back (10.2.0.0/24)
#     a2 10.1.0.3 ---+       10.1.0.254    10.2.0.254
#
# r1 forwards between the two subnets; every sandbox on front gets a route to
# 10.2.0.0/24 via 10.1.0.254 and the other way round, and the packets keep
# their source addresses. Without r1, cnet keeps the two networks isolated.
# Run it inside a throw-away test host: tools/testhost bash examples/router.sh
set -euo pipefail

run() {
    printf '\n$ %s\n' "$*"
    "$@"
}

run cnet create bridge front --subnet 10.1.0.0/24
run cnet create bridge back --subnet 10.2.0.0/24
run cnet create ns a1 --network front
run cnet create ns b1 --network back
run cnet create router r1 --network front:10.1.0.254 --network back:10.2.0.254
run cnet create ns a2 --network front          # attached later: gets the route too
run cnet ls routers
run cnet exec a2 -- ip route
run cnet exec a1 -- ping -c 1 -W 2 10.2.0.2
run cnet exec b1 -- ping -c 1 -W 2 10.1.0.3
run cnet delete router r1
if cnet exec a1 -- ping -c 1 -W 1 10.2.0.2 >/dev/null; then
    echo "a1 still reaches b1 without the router" >&2
    exit 1
fi
echo "without r1, front and back are isolated again"
run cnet delete ns a1
run cnet delete ns a2
run cnet delete ns b1
run cnet delete bridge front
run cnet delete bridge back
