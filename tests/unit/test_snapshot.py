"""State.copy()/restore(): what `cnet batch` relies on to undo a failed line in memory."""

from cnet.model import Endpoint, Network, PortMapping, Sandbox, State, Subnet, replace
from cnet.state import encode


def sample() -> State:
    net = Network("br0", "bridge", [Subnet("10.0.0.0/24", "10.0.0.1", last="10.0.0.2")], 1500)
    return State(
        networks={"br0": net},
        sandboxes={"a": Sandbox("a")},
        endpoints=[Endpoint("a", "br0", "eth0", "cn1", "02:00:00:00:00:01", ["10.0.0.2/24"])],
        ports=[PortMapping("a", "br0", "tcp", "0.0.0.0", 8080, 80)],
        host={"firewall": "nftables", "sysctls": {"net.ipv4.ip_forward": "0"}},
    )


def test_restore_undoes_every_kind_of_change_an_operation_makes():
    state = sample()
    before = encode(state)
    saved = state.copy()
    state.networks["br1"] = Network("br1", "bridge", [], 1500)
    net = state.networks["br0"]  # an attach records its network with the IPAM cursor moved
    state.networks["br0"] = replace(net, subnets=[replace(net.subnets[0], last="10.0.0.9")])
    state.sandboxes["b"] = Sandbox("b")
    del state.sandboxes["a"]
    state.endpoints.append(Endpoint("b", "br0", "eth0", "cn2", "02:00:00:00:00:02", ["10.0.0.3/24"]))
    state.endpoints.remove(state.endpoints[0])
    state.ports.extend([PortMapping("b", "br0", "udp", "0.0.0.0", 53, 53)])
    state.host["sysctls"]["net.ipv6.conf.all.forwarding"] = "0"
    state.host.pop("firewall")
    state.restore(saved)
    assert encode(state) == before

