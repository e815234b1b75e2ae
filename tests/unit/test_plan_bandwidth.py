"""Bandwidth limits without a kernel: the units, the default burst, what
`attach` and `limit` plan, the state file's record of them, and the command
line's refusals (exit 2, nothing written, the kernel never reached)."""

from __future__ import annotations

import copy
import json

import pytest

from cnet import bandwidth
from cnet.drivers.base import _directions, ifb_name
from cnet.errors import InvalidInput, StateFileError
from cnet.model import Endpoint, Limits, Network, Sandbox, State, Subnet, replace
from cnet.state import StateStore, decode, encode

from test_cli_errors import guard_the_kernel, isolated, run, state_file  # noqa: F401 (fixtures)


# -- units ------------------------------------------------------------------------

@pytest.mark.parametrize("text, bits", [
    ("500kbit", 500_000), ("10mbit", 10_000_000), ("1gbit", 10**9), ("1Gbit", 10**9), ("1.5mbit", 1_500_000),
    ("250000", 250_000), ("8bit", 8), ("1kibit", 1024), ("2mibit", 2 * 2**20), ("1mbps", 8_000_000),
    (" 20mbit ", 20_000_000), ("34gbit", 34 * 10**9),
])
def test_rates_in_tc_units(text, bits):
    assert bandwidth.parse_rate(text) == bits


@pytest.mark.parametrize("text, word", [
    ("10 mbit", "not a number"), ("fast", "not a number"), ("10mb", "not a number"), ("", "not a number"),
    ("-1mbit", "not a number"), ("1e6", "not a number"), ("mbit", "not a number"),
    ("0", "out of range"), ("7bit", "out of range"), ("35gbit", "out of range"), ("1tbit", "out of range"),
])
def test_bad_rates_are_refused(text, word):
    with pytest.raises(InvalidInput) as info:
        bandwidth.parse_rate(text)
    assert word in str(info.value) and repr(text) in str(info.value)


@pytest.mark.parametrize("text, size", [
    ("32kb", 32768), ("32k", 32768), ("1mb", 2**20), ("1m", 2**20), ("1500", 1500), ("1500b", 1500), ("1gb", 2**30),
])
def test_sizes_in_tc_units(text, size):
    assert bandwidth.parse_size(text) == size


@pytest.mark.parametrize("text", ["0", "0kb", "32kbit", "1mbit", "big", "-5", "0.1"])
def test_bad_sizes_are_refused(text):
    with pytest.raises(InvalidInput):
        bandwidth.parse_size(text)


@pytest.mark.parametrize("bits, shown", [(20_000_000, "20mbit"), (1_500_000, "1500kbit"), (10**9, "1gbit"),
                                          (123, "123bit"), (2 * 10**12, "2tbit")])
def test_rates_are_shown_as_tc_shows_them(bits, shown):
    assert bandwidth.format_rate(bits) == shown
    if bits <= bandwidth.MAX_RATE:
        assert bandwidth.parse_rate(shown) == bits


def test_sizes_are_shown_in_whole_units():
    assert [bandwidth.format_size(n) for n in (32768, 2**20, 25000, 3 * 2**30)] == ["32kb", "1mb", "25000b", "3gb"]


# -- the default burst --------------------------------------------------------------

def test_the_default_burst_is_10_ms_at_the_rate_or_four_packets():
    assert bandwidth.default_burst(10**9, 1500) == 1_250_000  # 10 ms of 1 gbit
    assert bandwidth.default_burst(20 * 10**6, 1500) == 25_000
    assert bandwidth.default_burst(500_000, 1500) == 6000  # 625 bytes in 10 ms: four packets instead
    assert bandwidth.default_burst(500_000, 9000) == 36_000


# -- planning -----------------------------------------------------------------------

def parsed(**texts):
    return bandwidth.options(texts)


def test_attach_plans_both_directions_with_their_bursts():
    limits = bandwidth.plan(parsed(ingress_rate="20mbit", egress_rate="10mbit", egress_burst="64kb"), 1500)
    assert limits == Limits(ingress_rate=20_000_000, ingress_burst=25_000, egress_rate=10_000_000, egress_burst=65536)


def test_attach_without_a_rate_has_no_limits():
    assert bandwidth.plan(parsed(), 1500) is None


@pytest.mark.parametrize("direction", ["ingress", "egress"])
def test_a_burst_needs_its_rate(direction):
    with pytest.raises(InvalidInput, match=f"--{direction}-burst needs --{direction}-rate"):
        bandwidth.plan(parsed(**{f"{direction}_burst": "32kb"}), 1500)


def test_a_bucket_that_tbf_cannot_count_is_refused():
    with pytest.raises(InvalidInput, match="more than tbf can count"):
        bandwidth.plan(parsed(ingress_rate="8bit", ingress_burst="1mb"), 1500)
    # a default burst never is: four packets would last 6000 s at 8 bit/s, so it is what tbf can count
    assert bandwidth.plan(parsed(ingress_rate="8bit"), 1500).ingress_burst == 274
    assert bandwidth.plan(parsed(ingress_rate="1kbit"), 1500).ingress_burst == 6000


def test_limit_replaces_the_directions_given_and_keeps_the_others():
    now = Limits(ingress_rate=20_000_000, ingress_burst=25_000, egress_rate=10_000_000, egress_burst=12_500)
    after = bandwidth.change(now, parsed(egress_rate="30mbit"), 1500)
    assert after == replace(now, egress_rate=30_000_000, egress_burst=37_500)
    # a new rate without a burst gets the default burst again, not the old one
    bigger = bandwidth.change(replace(now, ingress_burst=99_999), parsed(ingress_rate="100mbit"), 1500)
    assert bigger.ingress_burst == 125_000


def test_limit_with_a_burst_alone_keeps_the_rate():
    now = Limits(ingress_rate=20_000_000, ingress_burst=25_000)
    assert bandwidth.change(now, parsed(ingress_burst="64kb"), 1500) == replace(now, ingress_burst=65536)
    with pytest.raises(InvalidInput, match="has no egress limit"):
        bandwidth.change(now, parsed(egress_burst="64kb"), 1500)


def test_limit_on_an_endpoint_without_limits_adds_them():
    assert bandwidth.change(None, parsed(egress_rate="5mbit"), 1500) == Limits(egress_rate=5_000_000,
                                                                               egress_burst=6250)


def test_clear_removes_every_limit_and_stands_alone():
    now = Limits(ingress_rate=20_000_000, ingress_burst=25_000)
    assert bandwidth.change(now, parsed(), 1500, clear=True) is None
    with pytest.raises(InvalidInput, match="--clear removes every limit"):
        bandwidth.change(now, parsed(ingress_rate="1mbit"), 1500, clear=True)


def test_how_limits_read():
    limits = Limits(ingress_rate=20_000_000, ingress_burst=25_000, egress_rate=10**9, egress_burst=2**20)
    assert bandwidth.describe(limits) == "ingress 20mbit (burst 25000b), egress 1gbit (burst 1mb)"
    assert bandwidth.rates(limits) == "in 20mbit out 1gbit"
    assert bandwidth.rates(Limits(egress_rate=5_000_000, egress_burst=6250)) == "out 5mbit"
    assert bandwidth.describe(None) == bandwidth.rates(None) == "-"


# -- which link shapes which direction (drivers/base.py) ----------------------------------

def test_the_host_side_shapes_ingress_at_its_root_and_egress_through_the_ifb():
    limits = Limits(ingress_rate=20_000_000, ingress_burst=25_000, egress_rate=10_000_000, egress_burst=12_500)
    assert _directions(limits, host_side=True) == ((20_000_000, 25_000), (10_000_000, 12_500))
    # the sandbox's own interface (macvlan, hostdev): the other way round
    assert _directions(limits, host_side=False) == ((10_000_000, 12_500), (20_000_000, 25_000))
    assert _directions(Limits(egress_rate=8, egress_burst=1500), True) == (None, (8, 1500))
    assert _directions(None, True) == (None, None)


def test_the_ifb_is_named_after_the_host_link():
    assert ifb_name("cn1a2b3c4d5e") == "cb1a2b3c4d5e"
    assert ifb_name("eth1") == "cb-eth1"
    assert len(ifb_name("averyverylongif")) == 15


# -- the state file ---------------------------------------------------------------------

LIMITED = Limits(ingress_rate=20_000_000, ingress_burst=25_000, egress_rate=10_000_000, egress_burst=12_500)


def a_state(limits=LIMITED) -> State:
    net = Network("br0", "bridge", [Subnet("172.26.0.0/16", "172.26.0.1")], 1500)
    return State(networks={"br0": net}, sandboxes={"a": Sandbox("a"), "b": Sandbox("b")},
                 endpoints=[Endpoint("a", "br0", "eth0", "cn0123456789", "02:42:ac:1a:00:02", ["172.26.0.2/16"],
                                     limits),
                            Endpoint("b", "br0", "eth0", "cn0123456780", "02:42:ac:1a:00:03", ["172.26.0.3/16"])])


def test_limits_go_to_the_state_file_and_back():
    state = a_state()
    text = encode(state)
    doc = json.loads(text)
    assert doc["endpoints"][0]["limits"] == {"ingress_rate": 20_000_000, "ingress_burst": 25_000,
                                             "egress_rate": 10_000_000, "egress_burst": 12_500}
    assert "limits" not in doc["endpoints"][1]  # no limits: the record is as it was before limits existed
    back = decode(text, "state.yaml")
    assert back.endpoints == state.endpoints
    assert back.endpoints[0].limits == LIMITED and back.endpoints[1].limits is None
    one_way = Limits(egress_rate=5_000_000, egress_burst=6250)
    back = decode(encode(a_state(one_way)), "state.yaml")
    assert back.endpoints[0].limits == one_way
    assert json.loads(encode(back))["endpoints"][0]["limits"] == {"egress_rate": 5_000_000, "egress_burst": 6250}


def test_an_endpoint_whose_limits_are_cleared_is_as_one_that_never_had_them():
    state = a_state()
    cleared = replace(state.endpoints[0], limits=None)
    assert "limits" not in cleared.to_dict() and cleared.limits is None
    assert cleared == replace(a_state(None).endpoints[0])
    assert "limits" not in json.loads(encode(State(state.networks, state.sandboxes, [cleared])))["endpoints"][0]


def good_doc() -> dict:
    return json.loads(encode(a_state()))


@pytest.mark.parametrize("change, where, word", [
    (lambda ep: ep.update(limits={}), "endpoints[0].limits", "empty"),
    (lambda ep: ep.update(limits=[1]), "endpoints[0].limits", "mapping"),
    (lambda ep: ep["limits"].update(ingress_rate="20mbit"), "limits.ingress_rate", "integer"),
    (lambda ep: ep["limits"].update(speed=1), "limits", "unknown field 'speed'"),
    (lambda ep: ep["limits"].pop("ingress_burst"), "limits.ingress_burst", "has a rate and a burst"),
    (lambda ep: ep["limits"].pop("egress_rate"), "limits.egress_rate", "has a rate and a burst"),
    (lambda ep: ep["limits"].update(ingress_rate=0), "limits.ingress_rate", "not a rate"),
    (lambda ep: ep["limits"].update(egress_rate=2**40), "limits.egress_rate", "not a rate"),
    (lambda ep: ep["limits"].update(egress_burst=0), "limits.egress_burst", "not a burst"),
    (lambda ep: ep["limits"].update(egress_rate=8, egress_burst=2**20), "limits.egress_burst", "not a burst"),
])
def test_a_bad_limits_record_is_refused_with_its_place(change, where, word):
    doc = copy.deepcopy(good_doc())
    change(doc["endpoints"][0])
    with pytest.raises(StateFileError) as info:
        decode(json.dumps(doc), "state.yaml")
    assert where in str(info.value) and word in str(info.value), str(info.value)


# -- the command line: bad values are refused before anything is done ------------------------

@pytest.fixture
def saved(state_file):
    StateStore(str(state_file)).save(a_state())
    return state_file


@pytest.mark.parametrize("argv, message", [
    (["attach", "b", "br0", "--ingress-rate", "fast"],
     "rate 'fast' is not a number with a unit like 500kbit, 10mbit or 1gbit"),
    (["attach", "b", "br0", "--egress-rate", "10mbit", "--egress-burst", "0"], "burst '0' is not a positive size"),
    (["attach", "b", "br0", "--egress-burst", "32kb"], "--egress-burst needs --egress-rate"),
    (["attach", "b", "br0", "--ingress-rate", "99gbit"],
     "rate '99gbit' is out of range: tbf shapes from 8bit to 34.4gbit (2^32 - 1 bytes a second)"),
    (["limit", "a", "br0"], "nothing to change: give --ingress-rate or --egress-rate (with their bursts), or --clear"),
    (["limit", "a", "br0", "--clear", "--egress-rate", "1mbit"], "--clear removes every limit: give it alone"),
    (["limit", "a", "br0", "--ingress-rate", "10Mbps!"],
     "rate '10Mbps!' is not a number with a unit like 500kbit, 10mbit or 1gbit"),
    (["limit", "b", "br0", "--ingress-burst", "64kb"],
     "--ingress-burst needs --ingress-rate (the endpoint has no ingress limit)"),
    (["limit", "a", "br0", "--ingress-rate", "8bit", "--ingress-burst", "1gb"],
     "--ingress-burst 1gb lasts more than 275 s at 8bit, more than tbf can count: give a smaller burst or a higher rate"),
])
def test_bad_limits_exit_2_and_change_nothing(capsys, monkeypatch, saved, argv, message):
    guard_the_kernel(monkeypatch)
    before = saved.read_bytes()
    code, out, err = run(capsys, "--state", str(saved), *argv)
    assert (code, out, err) == (2, "", f"cnet: error: {message}\n")
    assert saved.read_bytes() == before


@pytest.mark.parametrize("argv, code, message", [
    (["limit", "nosuch", "br0", "--clear"], 3, "sandbox nosuch not found"),
    (["limit", "a", "nonet", "--clear"], 3, "network nonet not found"),
])
def test_limit_of_what_is_not_there(capsys, monkeypatch, saved, argv, code, message):
    guard_the_kernel(monkeypatch)
    got = run(capsys, "--state", str(saved), *argv)
    assert got == (code, "", f"cnet: error: {message}\n")


def test_clearing_limits_that_are_not_there_does_nothing(capsys, monkeypatch, saved):
    guard_the_kernel(monkeypatch)
    before = saved.read_bytes()
    assert run(capsys, "--state", str(saved), "limit", "b", "br0", "--clear") == (0, "-\n", "")
    assert saved.read_bytes() == before


def test_ls_endpoints_shows_the_rates(capsys, saved):
    code, out, _ = run(capsys, "--state", str(saved), "ls", "endpoints")
    assert code == 0
    assert [line.split()[5] for line in out.splitlines()[1:]] == ["in", "-"]
    assert "in 20mbit out 10mbit" in out.splitlines()[1]
    code, out, _ = run(capsys, "--state", str(saved), "ls", "endpoints", "--json")
    assert [e["limits"] for e in json.loads(out)] == [LIMITED.to_dict(), None]


def test_create_ns_refuses_limits_without_a_network(tmp_path, monkeypatch):
    """The API takes limits for `create ns --network` too (its command line option is cli/create.py's)."""
    from cnet.core import Cnet

    guard_the_kernel(monkeypatch)
    api = Cnet(state=str(tmp_path / "state.yaml"))
    with pytest.raises(InvalidInput, match="bandwidth limits need --network"):
        api.create_ns("c", limits={"ingress_rate": "10mbit"})
    with pytest.raises(InvalidInput, match="rate 'fast'"):
        api.create_ns("c", network="br0", limits={"egress_rate": "fast"})
    assert not (tmp_path / "state.yaml").exists()
