"""Traffic between cnet subnets skips conntrack (issue 12), on both backends,
and what must stay tracked does: a sandbox's connection to a port published
on its own gateway address (a host address) is still DNATed.

    host: mybr0 172.26.0.0/24 + fd00:26::/64 (gateway .1 / ::1): web, other
          front 10.1.0.0/24 --- router r1 --- back 10.2.0.0/24: a on front, b on back

The test hosts have br_netfilter's bridge-nf-call-iptables on, so bridged
traffic crosses the IP hooks: without cnet's untracked rules, every flow
below would be in conntrack (test_without_the_untracked_rules_... takes them out).
"""

from __future__ import annotations

import pytest

from testhost import ask, serve

BACKENDS = ["nftables", "iptables"]
STATE = "/var/lib/cnet/state.yaml"


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def tracked(host, family: int, port: int) -> list[str]:
    """conntrack's entries of the host (the test host's own table) to this port."""
    out = ok(host.run(["conntrack", "-L", "-f", "ipv4" if family == 4 else "ipv6"]))
    return [line for line in out.splitlines() if f"dport={port} " in line]


@pytest.fixture(params=BACKENDS)
def net(request, host):
    host.env["CNET_FIREWALL"] = request.param
    for family in ("iptables", "ip6tables"):  # else bridged traffic never meets conntrack: nothing would be proved
        assert host.read(f"/proc/sys/net/bridge/bridge-nf-call-{family}").strip() == "1", "br_netfilter is off"
    ok(host.cnet("create", "bridge", "mybr0", "--subnet", "172.26.0.0/24", "--subnet", "fd00:26::/64"))
    ok(host.cnet("create", "ns", "web", "--network", "mybr0",
                 "--publish", "172.26.0.1:8080:80", "--publish", "[fd00:26::1]:8080:80", "--publish", "8081:81"))
    ok(host.cnet("create", "ns", "other", "--network", "mybr0"))
    ok(host.cnet("create", "bridge", "front", "--subnet", "10.1.0.0/24"))
    ok(host.cnet("create", "bridge", "back", "--subnet", "10.2.0.0/24"))
    ok(host.cnet("create", "ns", "a", "--network", "front"))
    ok(host.cnet("create", "ns", "b", "--network", "back"))
    ok(host.cnet("create", "router", "r1", "--network", "front", "--network", "back"))
    for port in (80, 81, 7000):
        serve(host, "tcp", port, ns="web")
    serve(host, "tcp", 7001, ns="b")
    serve(host, "udp", 7002, ns="b")
    return host


def test_a_port_published_on_the_gateway_address_is_still_dnated(net):
    host = net
    # from another sandbox and from the target itself (hairpin), both families: masqueraded to the gateway
    assert ask(host, "tcp", "172.26.0.1", 8080, ns="other") == "172.26.0.1"
    assert ask(host, "tcp", "172.26.0.1", 8080, ns="web") == "172.26.0.1"
    assert ask(host, "tcp", "fd00:26::1", 8080, ns="other") == "fd00:26::1"
    # a port published on every host address, reached by the gateway's
    assert ask(host, "tcp", "172.26.0.1", 8081, ns="other") == "172.26.0.1"
    # those flows were tracked: the DNAT needs it
    assert [line for line in tracked(host, 4, 8080) if "src=172.26.0.2 dst=172.26.0.1 sport=80 " in line]  # reply
    assert tracked(host, 6, 8080)
    assert tracked(host, 4, 8081)


def test_sandbox_to_sandbox_flows_leave_no_conntrack_entry(net):
    host = net
    assert ask(host, "tcp", "172.26.0.2", 7000, ns="other") == "172.26.0.3"  # same bridge
    assert ask(host, "tcp", "fd00:26::2", 7000, ns="other") == "fd00:26::3"
    assert ask(host, "tcp", "10.2.0.2", 7001, ns="a") == "10.1.0.2"  # through the router, source kept
    assert ask(host, "udp", "10.2.0.2", 7002, ns="a") == "10.1.0.2"
    assert tracked(host, 4, 7000) == [] and tracked(host, 6, 7000) == []
    assert tracked(host, 4, 7001) == [] and tracked(host, 4, 7002) == []
    # the host's own connection to a sandbox is tracked as before (it leaves by OUTPUT)
    assert ask(host, "tcp", "172.26.0.2", 7000) == "172.26.0.1"
    assert tracked(host, 4, 7000)


def test_without_the_untracked_rules_the_same_flows_are_tracked(net):
    """The control: what keeps those flows out of conntrack is cnet's rule, not the test host."""
    host = net
    if host.env["CNET_FIREWALL"] == "nftables":
        host.run(["nft", "flush", "chain", "inet", "cnet", "untracked"], check=True)
    else:
        host.run(["iptables", "-t", "raw", "-F", "CNET-NOTRACK"], check=True)
    assert ask(host, "tcp", "10.2.0.2", 7001, ns="a") == "10.1.0.2"
    assert ask(host, "tcp", "172.26.0.2", 7000, ns="other") == "172.26.0.3"
    assert tracked(host, 4, 7001) and tracked(host, 4, 7000)
    assert host.cnet("check").returncode == 5  # and check sees the rules gone
    ok(host.cnet("restore"))
    assert host.cnet("check").returncode == 0


def _as_an_older_cnet_left_it(host, rules_version):
    """The firewall without the untracked rules, and a state recording the given rules version
    (None: none at all, as a cnet before issue 12 wrote it)."""
    import json

    if host.env["CNET_FIREWALL"] == "nftables":
        host.run(["nft", "delete", "chain", "inet", "cnet", "untracked"], check=True)
    else:
        host.run(["iptables", "-t", "raw", "-F", "CNET-NOTRACK"], check=True)
    state = json.loads(host.read(STATE))
    state["host"].pop("firewall_rules")
    if rules_version is not None:
        state["host"]["firewall_rules"] = rules_version
    host.run(["sh", "-c", f"cat > {STATE}"], input=json.dumps(state), check=True)


def test_an_upgraded_cnet_puts_its_new_rules_in_at_the_next_publish(net):
    """A state an older cnet wrote (no rules version): the next change of the firewall, even one
    that only publishes a port, rewrites the rules whole, and the flows are untracked again."""
    host = net
    _as_an_older_cnet_left_it(host, None)
    assert host.cnet("check").returncode == 5
    ok(host.cnet("publish", "other", "9090:90"))
    assert host.cnet("check").returncode == 0
    assert ask(host, "tcp", "10.2.0.2", 7001, ns="a") == "10.1.0.2"
    assert not tracked(host, 4, 7001)
    assert '"firewall_rules": ' in host.read(STATE)


@pytest.mark.parametrize("net", ["nftables"], indirect=True)  # iptables rewrites its chains at each change
def test_a_state_with_the_current_rules_version_only_updates_the_maps(net):
    """The control: with the version recorded, a publish changes map elements only, so the rules
    taken out stay out (the version is what sends an upgraded state to a full sync)."""
    from cnet.firewall import RULES_VERSION

    host = net
    _as_an_older_cnet_left_it(host, RULES_VERSION)
    ok(host.cnet("publish", "other", "9090:90"))
    assert host.cnet("check").returncode == 5


def test_isolation_holds_for_untracked_traffic(net):
    host = net
    # mybr0 and front are not joined: the host would route between them, cnet drops it
    assert ask(host, "tcp", "172.26.0.2", 7000, ns="a", timeout=1) is None
    assert ask(host, "tcp", "10.2.0.2", 7001, ns="other", timeout=1) is None
    assert host.cnet("check").returncode == 0
