"""core runs a network's whole life through its driver, whatever the driver
is: a driver that core has never heard of, registered here as a module the
way drivers/NAME.py would be, is created, inspected, kept out of the firewall
and deleted without a line of core knowing it. No kernel: the fake driver
touches none, and pyroute2 is made unimportable so nothing else can."""

import sys
import types

import pytest

from cnet import drivers
from cnet.core import Cnet, ports
from cnet.core.networks import plan_network
from cnet.config import Config
from cnet.drivers.base import NO_FIREWALL
from cnet.errors import InvalidInput
from cnet.model import Endpoint, State, replace


@pytest.fixture
def fake(monkeypatch, tmp_path):
    calls = []
    module = types.ModuleType("cnet.drivers.fake")

    def validate(net):
        if set(net.options) - {"parent"}:
            raise InvalidInput("the fake driver takes only a parent")
        return replace(net, masquerade=False)

    module.validate = validate
    module.firewall = lambda net: NO_FIREWALL
    module.create = lambda net, kernel, undo: calls.append(("create", net.name, net.options["parent"]))
    module.delete = lambda net, kernel: calls.append(("delete", net.name)) or True
    module.inspect = lambda net, kernel: {"parent": net.options["parent"]}
    monkeypatch.setitem(sys.modules, "cnet.drivers.fake", module)
    monkeypatch.setitem(sys.modules, "pyroute2", None)  # any netlink would fail the test
    config = tmp_path / "config.yaml"
    config.write_text("")
    monkeypatch.setenv("CNET_CONFIG", str(config))
    return calls, Cnet(state=str(tmp_path / "state.yaml"))


def test_a_new_driver_needs_nothing_of_core(fake):
    calls, api = fake
    net = api.create_network("fake", "lan0", subnets=["192.0.2.0/24"], options={"parent": "eth9"})
    assert (net.driver, net.masquerade, net.options) == ("fake", False, {"parent": "eth9"})
    assert calls == [("create", "lan0", "eth9")]
    assert api.inspect_network("lan0")["kernel"] == {"parent": "eth9"}
    state = api.read_state()
    assert "firewall" not in state.host and "sysctls" not in state.host  # it asked the firewall for nothing
    assert api.delete_network("lan0")
    assert calls[-1] == ("delete", "lan0") and api.read_state().networks == {}


def test_the_driver_validates_its_own_options(fake):
    calls, api = fake
    with pytest.raises(InvalidInput, match="only a parent"):
        api.create_network("fake", "lan0", subnets=["192.0.2.0/24"], options={"colour": "red"})
    assert calls == [] and api.read_state().networks == {}


def test_a_network_whose_driver_allows_no_published_ports_refuses_them(fake):
    net = plan_network(State(), Config(), "lan0", driver="fake", subnets=["192.0.2.0/24"],
                       options={"parent": "eth9"})
    ep = Endpoint("web", "lan0", "eth0", "", "02:00:00:00:00:01", ["192.0.2.2/24"])
    state = State(networks={"lan0": net}, endpoints=[ep])
    with pytest.raises(InvalidInput, match="is a fake network"):
        ports.choose_endpoint(state, "web", "web", None, lambda n: drivers.get(n.driver).firewall(n).publish)


@pytest.mark.parametrize("name", ["base", "../x", "", "Bridge", "nosuch"])
def test_only_driver_modules_are_drivers(name):
    with pytest.raises(InvalidInput):
        drivers.get(name)
