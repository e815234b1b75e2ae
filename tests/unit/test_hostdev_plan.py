"""The hostdev driver without a kernel: validation, the link rules, one
sandbox at a time, what an endpoint records of its link (model.HostDevice)
in the state file and in the link's own tag."""

from types import SimpleNamespace

import pytest

from cnet.config import Config
from cnet.core import topology
from cnet.core.networks import plan_network
from cnet.drivers import hostdev
from cnet.errors import Conflict, InvalidInput, NotFound
from cnet.model import Endpoint, HostDevice, Limits, Sandbox, State
from cnet.owner import Owner
from cnet.state import decode, encode
from cnet.statecheck import BadRecord, check

MAC = "52:54:00:12:34:56"
OWNER = Owner("/tmp/cnet-unit-state.yaml")


def plan(state=None, name="hd", subnets=("192.168.60.0/24",), **kw):
    kw.setdefault("options", {"parent": "eth1"})
    return plan_network(state or State(), Config(), name, driver="hostdev", subnets=subnets, **kw)


def with_network(net, state=None):
    state = state or State()
    state.networks[net.name] = net
    return state


def kernel_with(**link):
    """A kernel whose host has link eth1 as given (None: no such link)."""
    view = None if link.get("missing") else {
        "ifname": "eth1", "index": 7, "kind": None, "state": "UP", "up": True, "mtu": 1500, "mac": MAC,
        "alias": None, "group": 0, "master": None, "addresses": [], **link}
    return SimpleNamespace(owner=OWNER, netlink=SimpleNamespace(link_view=lambda name: view if name == "eth1" else None))


def endpoint(sandbox="web", device=HostDevice("eth1", 1500, MAC, True), **kw):
    return Endpoint(sandbox, "hd", "eth0", "", kw.pop("mac", MAC), ("192.168.60.2/24",), device=device, **kw)


# -- validation ------------------------------------------------------------------

def test_a_hostdev_network_is_on_its_links_lan_without_nat_or_firewall():
    net = plan()
    assert (net.driver, net.masquerade, net.options) == ("hostdev", False, {"parent": "eth1"})
    needs = hostdev.firewall(net)
    assert needs.interface is None and not needs.publish and not needs.sysctls


@pytest.mark.parametrize("options, words", [
    ({}, "needs --parent"),
    ({"parent": ""}, "needs --parent"),
    ({"parent": "eth1/x"}, "--parent"),
    ({"parent": "a-very-long-link-name"}, "at most 15"),
    ({"parent": "eth1", "mode": "bridge"}, "no option mode"),
])
def test_bad_hostdev_options_are_refused(options, words):
    with pytest.raises(InvalidInput, match=words):
        plan(options=options)


def test_a_hostdev_network_cannot_be_internal():
    with pytest.raises(InvalidInput, match="cannot be --internal"):
        plan(internal=True)


def test_a_cnet_bridge_is_no_hostdev_link():
    state = with_network(plan_network(State(), Config(), "br0", driver="bridge", subnets=["10.1.0.0/24"]))
    with pytest.raises(Conflict, match="br0 is the link of cnet network br0"):
        plan(state, options={"parent": "br0"})


@pytest.mark.parametrize("driver", ["macvlan", "hostdev"])
def test_another_networks_parent_is_no_hostdev_link(driver):
    other = plan_network(State(), Config(), "lan", driver=driver, subnets=["10.2.0.0/24"], options={"parent": "eth1"})
    with pytest.raises(Conflict, match=f"parent of {driver} network lan"):
        plan(with_network(other))


def test_a_hostdev_link_is_no_macvlan_parent():
    with pytest.raises(Conflict, match="link of hostdev network hd, which moves it"):
        plan_network(with_network(plan()), Config(), "lan", driver="macvlan", subnets=["10.2.0.0/24"],
                     options={"parent": "eth1"})


# -- the link --------------------------------------------------------------------

@pytest.mark.parametrize("link, error, words", [
    ({"missing": True}, NotFound, "link eth1 of hostdev network hd is not on the host"),
    ({"group": OWNER.group}, Conflict, "is a link cnet made"),
    ({"alias": OWNER.network_tag("br0")}, Conflict, "is a link cnet made"),
    ({"alias": OWNER.device_tag("old", "hd", HostDevice("eth1", 1500, MAC, True))}, Conflict,
     "moved into sandbox old .* `cnet gc` gives it back"),
    ({"master": 3}, Conflict, "is a port of another link"),
    ({"addresses": ["10.0.0.5/24"]}, Conflict, r"has addresses on the host \(10.0.0.5/24\)"),
])
def test_a_link_cnet_cannot_take_is_refused_at_create_and_attach(link, error, words):
    net, kernel = plan(), kernel_with(**link)
    with pytest.raises(error, match=words):
        hostdev.create(net, kernel, undo=None)
    ep = Endpoint("web", "hd", "eth0", "", MAC, ("192.168.60.2/24",))
    with pytest.raises(error, match=words):
        hostdev.plan_endpoint(with_network(net), net, ep, kernel)


def test_attach_records_the_link_as_it_is_and_keeps_its_mac():
    net, kernel = plan(), kernel_with(mtu=1400, up=False, alias="uplink 2")
    assert hostdev.default_mac(net, kernel) == MAC
    ep = Endpoint("web", "hd", "eth0", "", MAC, ("192.168.60.2/24",))
    planned = hostdev.plan_endpoint(with_network(net), net, ep, kernel)
    assert planned.device == HostDevice("eth1", 1400, MAC, False, "uplink 2") and planned.host_ifname == ""


def test_one_sandbox_at_a_time_has_the_link_and_the_error_names_it():
    net = plan()
    state = with_network(net)
    state.endpoints.append(endpoint("web"))
    ep = Endpoint("db", "hd", "eth0", "", MAC, ("192.168.60.3/24",))
    with pytest.raises(Conflict, match="one sandbox at a time, and sandbox web has it"):
        hostdev.plan_endpoint(state, net, ep, kernel_with(missing=True))  # it is in web's namespace


def test_the_network_stands_on_no_host_link_while_a_sandbox_has_it():
    assert hostdev.links(plan(), [endpoint()]) == set() and hostdev.survey_network(plan(), None, None) == []


# -- the record: the state file and the link's tag -------------------------------------

def test_an_endpoint_with_a_device_round_trips_and_one_without_has_no_device_key():
    ep = endpoint(device=HostDevice("eth1", 9000, MAC, False, "uplink 2"), limits=Limits(egress_rate=10_000_000,
                                                                                       egress_burst=12500))
    assert ep.to_dict()["device"] == {"name": "eth1", "mtu": 9000, "mac": MAC, "up": False, "alias": "uplink 2"}
    assert Endpoint.from_dict(ep.to_dict()) == ep
    plain = endpoint()
    assert plain.to_dict()["device"] == {"name": "eth1", "mtu": 1500, "mac": MAC, "up": True}  # no empty alias
    assert Endpoint.from_dict(plain.to_dict()) == plain
    assert "device" not in endpoint(device=None).to_dict()
    state = with_network(plan())
    state.sandboxes["web"] = Sandbox("web")
    state.endpoints.append(ep)
    assert decode(encode(state), "x") == state


@pytest.mark.parametrize("device, words", [
    ({"name": "eth1", "mtu": 20, "mac": MAC, "up": True}, "not an MTU"),
    ({"name": "eth1", "mtu": 1500, "mac": "52:54:00:12:34", "up": True}, "not a MAC address"),
    ({"name": "eth1/x", "mtu": 1500, "mac": MAC, "up": True}, "interface name"),
    ({"name": "eth1", "mtu": 1500, "mac": MAC, "up": "yes"}, "true or false"),
    ({"name": "eth1", "mtu": 1500, "mac": MAC}, "has no 'up'"),
])
def test_a_bad_device_record_is_refused_with_its_place(device, words):
    state = with_network(plan())
    state.sandboxes["web"] = Sandbox("web")
    doc = state.to_dict()
    doc["endpoints"] = [{**endpoint(device=None).to_dict(), "device": device}]
    with pytest.raises(BadRecord, match=words) as e:
        check(doc)
    assert e.value.path.startswith("endpoints[0].device")


def test_the_links_tag_says_what_it_was():
    device = HostDevice("enp3s0f1", 9000, MAC, False)
    tag = OWNER.device_tag("web", "hd", device)
    assert tag == f"cnet@{OWNER.id} device web hd enp3s0f1 9000 {MAC} down"
    assert OWNER.read_device_tag(tag) == ("web", "hd", device)
    assert OWNER.read_tag(tag) == ("device", "web", "hd") and OWNER.owns_link(tag, 0)
    for other in (OWNER.endpoint_tag("web", "hd"), tag.replace(" down", " sideways"), tag + " x", "", None):
        assert OWNER.read_device_tag(other) is None


def test_export_writes_a_hostdev_network_as_create_makes_it():
    doc = topology.export(with_network(plan()))
    assert doc["networks"]["hd"]["driver"] == "hostdev" and doc["networks"]["hd"]["parent"] == "eth1"
    wanted = topology.load(topology.dump(doc)).networks["hd"]
    assert wanted.driver == "hostdev" and wanted.request["options"] == {"parent": "eth1"}
    assert wanted.request["masquerade"] is False


def test_an_unused_network_wants_its_link_on_the_host_by_name(monkeypatch, tmp_path):
    """check, from /sys/class/net alone (a directory of the test's own here)."""
    from cnet.kernel import sysfs

    monkeypatch.setattr(sysfs, "SYS_CLASS_NET", str(tmp_path))
    net = plan()
    (problem,) = hostdev.survey_unused(net, kernel_with(missing=True))
    assert problem.startswith("missing link eth1: no sandbox has it, and the host has no link of that name")
    (tmp_path / "eth1").mkdir()
    assert hostdev.survey_unused(net, kernel_with()) == []
    assert hostdev.survey_network(net, kernel_with(), None) == []  # while a sandbox has it: survey_endpoint's
