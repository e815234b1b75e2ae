"""`create bridge --routed`: validation, what it asks of the firewall, and the rules it gets."""

from __future__ import annotations

import pytest

from cnet.drivers import bridge
from cnet.errors import InvalidInput
from cnet.firewall import iptables, nftables
from cnet.firewall.plan import FirewallPlan, structure_of
from cnet.model import Network, State, Subnet


def network(name="r0", subnet="10.88.0.0/24", **kw) -> Network:
    kw.setdefault("masquerade", False)
    return Network(name, "bridge", [Subnet(subnet, subnet.replace("0/24", "1"))], 1500, **kw)


def test_routed_is_recorded_and_asks_for_an_open_bridge():
    net = bridge.validate(network(options={"routed": True}))
    assert net.options == {"routed": True}
    assert bridge.firewall(net).routed
    assert not bridge.firewall(bridge.validate(network())).routed


@pytest.mark.parametrize("kw, message", [
    (dict(internal=True), "--routed and --internal"),
    (dict(masquerade=True), "no outbound NAT"),
    (dict(options={"routed": "yes"}), "must be true or false"),
])
def test_routed_refusals(kw, message):
    kw.setdefault("options", {"routed": True})
    with pytest.raises(InvalidInput, match=message):
        bridge.validate(network(**kw))


def plan_of(*nets) -> FirewallPlan:
    state = State(networks={n.name: n for n in nets})
    return FirewallPlan(structure_of(state, bridge.firewall))


def test_only_routed_bridges_are_in_the_open_set():
    plan = plan_of(bridge.validate(network(options={"routed": True})), network("b0", "10.89.0.0/24", masquerade=True))
    assert plan.structure.routed == ("r0",)
    assert plan.structure.masquerade4 == ("10.89.0.0/24",)
    assert '  set routed { type ifname; elements = { "r0" }; }\n' in nftables.render_full(plan)
    drops = [line for line in iptables.render(plan, 4).splitlines() if "! --ctstate RELATED,ESTABLISHED" in line]
    assert drops == ["-A CNET-FORWARD ! -i b0 -o b0 -m conntrack ! --ctstate RELATED,ESTABLISHED -j DROP"]
