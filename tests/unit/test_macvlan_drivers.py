"""The macvlan and ipvlan drivers without a kernel: validation, the parent
rules, naming, modes, IPAM around the host-access address, and the ipvlan
driver's planning (this kernel has no ipvlan: tests/kernel skips it)."""

import json
import socket
from types import SimpleNamespace

import pytest

from cnet import drivers
from cnet.config import Config
from cnet.core import ports
from cnet.core.networks import plan_network
from cnet.core.sandboxes import plan_endpoint
from cnet.drivers import ipvlan, macvlan
from cnet.errors import Conflict, InvalidInput, NotFound
from cnet.model import Endpoint, State
from cnet.owner import Owner
from cnet.state import decode

PARENT_MAC = "52:54:00:12:34:56"


def plan(state=None, name="lan", driver="macvlan", subnets=("192.168.50.0/24",), **kw):
    kw.setdefault("options", {"parent": "eth1"})
    return plan_network(state or State(), Config(), name, driver=driver, subnets=subnets, **kw)


def with_network(net, state=None):
    state = state or State()
    state.networks[net.name] = net
    return state


class FakeKernel:
    """What plan_endpoint and attach ask of the kernel, recorded."""

    def __init__(self):
        self.owner = Owner("/tmp/cnet-unit-state.yaml")
        self.calls = []
        self.netlink = SimpleNamespace(
            link_view=lambda name: {"ifname": name, "mac": PARENT_MAC, "mtu": 1500, "alias": None, "group": 0},
            link_index=lambda name: 7,
            add_sub_link=lambda *a, **kw: self.calls.append(("add", a, kw)))
        self.inner = SimpleNamespace(
            delete_link=lambda name: self.calls.append(("delete", name)),
            link_index=lambda name: 2,
            add_address=lambda index, cidr: self.calls.append(("address", cidr)),
            set_up=lambda index: self.calls.append(("up",)),
            add_default_route=lambda gw: self.calls.append(("default via", gw)),
            add_default_route_via_link=lambda index, family: self.calls.append(("default dev", family)),
            set_alias=lambda index, alias: self.calls.append(("alias", alias)))

    def inside(self, path):
        return self.inner


# -- validation ------------------------------------------------------------------

def test_a_macvlan_network_is_on_its_lan_without_nat_in_bridge_mode_by_default():
    net = plan()
    assert (net.driver, net.masquerade, net.options) == ("macvlan", False, {"parent": "eth1", "mode": "bridge"})
    needs = macvlan.firewall(net)
    assert needs.interface is None and not needs.publish and not needs.sysctls


@pytest.mark.parametrize("options, words", [
    ({}, "needs --parent"),
    ({"parent": ""}, "needs --parent"),
    ({"parent": "eth1/x"}, "--parent"),
    ({"parent": "a-very-long-link-name"}, "at most 15"),
    ({"parent": "eth1", "mode": "l2"}, "mode 'l2' is not one of bridge, private, vepa, passthru"),
    ({"parent": "eth1", "colour": "red"}, "no option colour"),
    ({"parent": "eth1", "host_access": "yes"}, "must be true or false"),
    ({"parent": "eth1", "mode": "passthru", "host_access": True}, "passthru mode forbids"),
])
def test_bad_macvlan_options_are_refused(options, words):
    with pytest.raises(InvalidInput, match=words.replace("(", r"\(")):
        plan(options=options)


def test_a_macvlan_network_cannot_be_internal():
    with pytest.raises(InvalidInput, match="cannot be --internal"):
        plan(internal=True)


@pytest.mark.parametrize("mode", macvlan.MODES)
def test_every_kernel_mode_is_taken_and_kept(mode):
    assert plan(options={"parent": "eth1", "mode": mode}).options["mode"] == mode


def test_host_access_is_recorded_only_when_on():
    assert "host_access" not in plan(options={"parent": "eth1", "host_access": False}).options
    assert plan(options={"parent": "eth1", "host_access": True}).options["host_access"] is True


def test_the_subnet_may_be_the_hosts_own_lan():
    # the host-clash checks of a bridge do not apply: a macvlan network is on the host's LAN by design
    host = lambda: ([__import__("ipaddress").ip_address("192.168.50.10")], [])  # noqa: E731
    assert plan(host_networks=host).subnets[0].subnet == "192.168.50.0/24"


# -- the parent ---------------------------------------------------------------------

def test_a_cnet_bridge_is_no_parent():
    state = with_network(plan_network(State(), Config(), "br0", driver="bridge", subnets=["10.1.0.0/24"]))
    with pytest.raises(Conflict, match="br0 is the link of cnet network br0"):
        plan(state, options={"parent": "br0"})


@pytest.mark.parametrize("driver, mode", [("macvlan", "private"), ("ipvlan", "l2")])
def test_a_parent_carries_networks_of_one_driver_and_mode(driver, mode):
    state = with_network(plan())
    with pytest.raises(Conflict, match="carries macvlan network lan in mode bridge"):
        plan(state, name="other", driver=driver, subnets=["10.2.0.0/24"], options={"parent": "eth1", "mode": mode})


def test_two_networks_of_one_mode_share_a_parent_but_two_passthru_do_not():
    state = with_network(plan())
    assert plan(state, name="lan2", subnets=["10.2.0.0/24"]).options["parent"] == "eth1"
    state = with_network(plan(options={"parent": "eth2", "mode": "passthru"}))
    with pytest.raises(Conflict, match="only child its parent can have"):
        plan(state, name="pt2", subnets=["10.3.0.0/24"], options={"parent": "eth2", "mode": "passthru"})


def test_exist_ok_compares_with_the_same_network_not_with_itself():
    net = plan(options={"parent": "eth1", "mode": "private"})
    others = State()  # as create_network plans it: the state without the network itself
    assert plan(others, options={"parent": "eth1", "mode": "private"}).same_definition(net)


# -- naming and the host-access address ------------------------------------------------

def test_the_host_access_link_name_is_stable_short_and_the_networks_own():
    name = macvlan.host_link_name("lan")
    assert name == macvlan.host_link_name("lan") and name.startswith("cnh") and len(name) <= 15
    assert macvlan.host_link_name("lan2") != name
    assert ipvlan.probe_link_name("lan").startswith("cnp") and len(ipvlan.probe_link_name("x" * 15)) <= 15


@pytest.mark.parametrize("subnet, gateway, ip_range, expected", [
    ("192.168.50.0/24", None, None, "192.168.50.254"),
    ("192.168.50.0/24", "192.168.50.254", None, "192.168.50.253"),
    ("192.168.50.0/24", None, "192.168.50.64/26", "192.168.50.127"),
    ("fd00:50::/64", None, None, "fd00:50::ffff:ffff:ffff:ffff"),
])
def test_the_host_takes_the_last_address_of_the_pool(subnet, gateway, ip_range, expected):
    net = plan(subnets=[subnet], gateways=[gateway] if gateway else [], ip_range=ip_range,
               options={"parent": "eth1", "host_access": True})
    assert macvlan.host_addresses(net) == [expected]
    assert macvlan.held_addresses(net) == {expected}
    assert macvlan.links(net, ()) == {"eth1", macvlan.host_link_name("lan")}


def test_ipam_never_hands_out_the_host_access_address():
    net = plan(subnets=["10.5.0.0/29"], options={"parent": "eth1", "host_access": True})  # .1 gateway, .6 the host's
    state, got = with_network(net), []
    for i in range(4):
        ep, net = plan_endpoint(state, net, f"s{i}", held=macvlan.held_addresses(net))
        state.networks[net.name] = net
        state.endpoints.append(ep)
        got.append(ep.addresses[0])
    assert got == ["10.5.0.2/29", "10.5.0.3/29", "10.5.0.4/29", "10.5.0.5/29"]
    with pytest.raises(Conflict, match="no free address"):
        plan_endpoint(state, net, "s5", held=macvlan.held_addresses(net))
    with pytest.raises(Conflict, match="already in use"):
        plan_endpoint(State(networks={net.name: net}), net, "s6", ips=["10.5.0.6"],
                      held=macvlan.held_addresses(net))


def test_without_host_access_no_address_is_held_and_the_parent_is_the_only_link():
    net = plan()
    assert macvlan.held_addresses(net) == set() and macvlan.links(net, ()) == {"eth1"}


# -- endpoints ----------------------------------------------------------------------

def endpoint(net, sandbox="a"):
    return Endpoint(sandbox, net.name, "eth0", "", "02:00:00:00:00:01", ["192.168.50.2/24"])


def test_a_passthru_parent_takes_one_endpoint_at_a_time_and_gives_it_its_mac():
    net = plan(options={"parent": "eth1", "mode": "passthru"})
    kernel = FakeKernel()
    ep = macvlan.plan_endpoint(with_network(net), net, endpoint(net), kernel)
    assert ep.mac == PARENT_MAC
    state = with_network(net)
    state.endpoints.append(ep)
    with pytest.raises(Conflict, match="one endpoint at a time, and sandbox a has it"):
        macvlan.plan_endpoint(state, net, endpoint(net, "b"), kernel)


def test_a_bridge_mode_endpoint_keeps_its_own_mac_and_is_born_in_the_sandbox(tmp_path):
    net = plan()
    kernel, path = FakeKernel(), tmp_path / "netns"
    path.write_text("")
    ep = macvlan.plan_endpoint(with_network(net), net, endpoint(net), kernel)
    assert ep.mac == "02:00:00:00:00:01" and ep.host_ifname == ""
    undo = SimpleNamespace(steps=[], callback=lambda f, *a: undo.steps.append((f, a)))
    macvlan.attach(net, ep, str(path), kernel, undo, default_route=True)
    (_, args, kw), *rest = kernel.calls
    assert args[:3] == ("macvlan", "eth0", 7) and kw["mac"] == ep.mac and kw["macvlan_mode"] == "bridge"
    assert "netns_fd" in kw  # made inside the sandbox, never under a host name
    assert rest == [("address", "192.168.50.2/24"), ("up",), ("default via", "192.168.50.1"),
                    ("alias", kernel.owner.endpoint_tag("a", "lan"))]
    assert undo.steps == [(kernel.inner.delete_link, ("eth0",))]  # registered as soon as the link was made


def test_a_missing_parent_is_not_found_at_attach(tmp_path):
    net = plan()
    kernel = FakeKernel()
    kernel.netlink.link_index = lambda name: None
    with pytest.raises(NotFound, match="parent link eth1 of network lan is not on this host"):
        macvlan.attach(net, endpoint(net), str(tmp_path), kernel, None, True)


def test_publish_on_a_macvlan_network_says_why_not():
    net = plan()
    state = with_network(net)
    state.endpoints.append(endpoint(net))
    with pytest.raises(InvalidInput, match="macvlan network, whose sandboxes are on its LAN directly"):
        ports.choose_endpoint(state, "a", "a", None, lambda n: drivers.get(n.driver).firewall(n).publish)


# -- ipvlan ----------------------------------------------------------------------

def test_ipvlan_takes_the_kernels_modes_l2_by_default():
    net = plan(driver="ipvlan")
    assert (net.driver, net.masquerade, net.options["mode"]) == ("ipvlan", False, "l2")
    assert [plan(driver="ipvlan", options={"parent": "eth1", "mode": m}).options["mode"] for m in ipvlan.MODES] \
        == ["l2", "l3", "l3s"]
    with pytest.raises(InvalidInput, match="ipvlan mode 'bridge' is not one of l2, l3, l3s"):
        plan(driver="ipvlan", options={"parent": "eth1", "mode": "bridge"})
    with pytest.raises(InvalidInput, match="no option host_access"):
        plan(driver="ipvlan", options={"parent": "eth1", "host_access": True})


@pytest.mark.parametrize("mode, route", [("l2", ("default via", "192.168.50.1")),
                                         ("l3", ("default dev", socket.AF_INET)),
                                         ("l3s", ("default dev", socket.AF_INET))])
def test_ipvlan_endpoints_share_the_parents_mac_and_l3_routes_without_a_gateway(tmp_path, mode, route):
    net = plan(driver="ipvlan", options={"parent": "eth1", "mode": mode})
    kernel = FakeKernel()
    ep = ipvlan.plan_endpoint(with_network(net), net, endpoint(net), kernel)
    assert ep.mac == PARENT_MAC
    undo = SimpleNamespace(callback=lambda *a: None)
    ipvlan.attach(net, ep, str(tmp_path), kernel, undo, default_route=True)
    (_, args, kw) = kernel.calls[0]
    assert args[0] == "ipvlan" and kw["ipvlan_mode"] == ipvlan.MODES[mode] and kw["mac"] is None
    assert route in kernel.calls


def test_create_ipvlan_on_a_kernel_without_it_fails_with_1_naming_the_module():
    from cnet.errors import OperationFailed
    from cnet.kernel.netlink import _failed
    from cnet.kernel.pyroute import NetlinkError

    def add_sub_link(*a, **kw):
        no_such_kind = NetlinkError(95)  # EOPNOTSUPP: what the kernel answers for a kind it has no module of
        raise _failed("cannot create ipvlan link", no_such_kind) from no_such_kind

    net = plan(driver="ipvlan")
    kernel = FakeKernel()
    kernel.netlink.add_sub_link = add_sub_link
    with pytest.raises(OperationFailed, match="no ipvlan \\(the kernel module ipvlan is missing") as info:
        ipvlan.create(net, kernel, SimpleNamespace(callback=lambda *a: None))
    assert info.value.exit_code == 1


# -- the module that is no driver, the state file, the command line -----------------

def test_the_shared_module_is_no_driver_for_cnet_nor_for_the_state_file():
    with pytest.raises(InvalidInput):
        drivers.get("sublink")
    doc = {"version": 1, "networks": {"x": {"name": "x", "driver": "sublink", "subnets": [], "mtu": 1500}}}
    with pytest.raises(Exception, match="not a network driver"):
        decode(json.dumps(doc), "state.yaml")


def test_a_macvlan_record_reads_back():
    net = plan(options={"parent": "eth1", "mode": "private", "host_access": True})
    doc = {"version": 1, "networks": {"lan": net.to_dict()}}
    assert decode(json.dumps(doc), "state.yaml").networks["lan"] == net


@pytest.mark.parametrize("argv, code, words", [
    (["create", "macvlan", "lan"], 2, "Missing option '--parent'"),
    (["create", "macvlan", "lan", "--parent", "eth1", "--mode", "l3"], 2, "'l3' is not one of"),
    (["create", "ipvlan", "lan", "--parent", "eth1", "--mode", "bridge"], 2, "'bridge' is not one of"),
    (["create", "ipvlan", "lan", "--parent", "eth1", "--mtu", "1400"], 2, "No such option '--mtu'"),
    (["create", "macvlan", "lan", "--parent", "eth1/0", "--subnet", "10.0.0.0/24"], 2, "--parent"),
    (["create", "macvlan", "lan", "--parent", "eth1", "--subnet", "10.0.0.0/24", "--gateway", "10.0.1.1"], 2,
     "outside subnet"),
])
def test_bad_command_lines_exit_with_their_code_before_the_kernel(capsys, tmp_path, monkeypatch, argv, code, words):
    import test_cli_errors as cli

    config = tmp_path / "config.yaml"
    config.write_text("")
    monkeypatch.setenv("CNET_CONFIG", str(config))
    got, out, err = cli.run(capsys, "--state", str(tmp_path / "state.yaml"), *argv)
    assert got == code and words in cli.one_error_line(err), err
    assert not (tmp_path / "state.yaml").exists()
