"""The tags of a state file (owner.py), and how the firewall backends read back
what the kernel holds (for `cnet check`): pure parts, fed recorded output."""

from __future__ import annotations

from cnet.firewall import iptables, nftables
from cnet.firewall.plan import Dnat, FirewallPlan, Structure
from cnet.owner import GROUP_BASE, Owner
from cnet.state import DEFAULT_STATE_PATH


def test_the_default_state_file_has_the_plain_tags():
    owner = Owner(DEFAULT_STATE_PATH)
    assert owner.id == ""
    assert owner.network_tag("br0") == "cnet network br0"
    assert owner.endpoint_tag("web", "br0") == "cnet endpoint web br0"
    assert owner.nft_table == "cnet" and owner.iptables_chain("DNAT") == "CNET-DNAT"
    assert owner.marker_dir == DEFAULT_STATE_PATH + ".netns"


def test_another_state_file_has_tags_of_its_own(tmp_path):
    a, b = Owner(str(tmp_path / "a.yaml")), Owner(str(tmp_path / "b.yaml"))
    assert a.id and b.id and a.id != b.id
    assert a.group != b.group and a.group & 0xFFFF0000 == GROUP_BASE
    assert a.nft_table == f"cnet_{a.id}"
    assert len(a.iptables_chain("POSTROUTING")) <= 28  # iptables' limit on a chain name
    assert a.read_tag(a.network_tag("br0")) == ("network", "br0")
    assert a.read_tag(a.endpoint_tag("web", "br0")) == ("endpoint", "web", "br0")
    assert a.read_tag(b.network_tag("br0")) is None
    assert a.read_tag("cnet network br0") is None  # the default state file's
    assert not a.owns_link("somebody's bridge", 0)
    assert a.owns_link("", a.group)  # cut short before its alias was set


def test_namespace_markers(tmp_path):
    owner = Owner(str(tmp_path / "state.yaml"))
    assert owner.marked_netns() == set()
    owner.mark_netns("web")
    owner.mark_netns("db")
    owner.unmark_netns("db")
    owner.unmark_netns("never-made")
    assert owner.marked_netns() == {"web"}


PLAN = FirewallPlan(
    Structure(bridges=("br0",), subnets4=("172.26.0.0/16",), masquerade4=("172.26.0.0/16",)),
    frozenset({Dnat(4, "tcp", 8080, None, "172.26.0.2", 80), Dnat(4, "udp", 5353, "127.0.0.1", "172.26.0.2", 53)}))


def test_nft_json_elements_read_as_render_full_writes_them():
    listed = [
        {"prefix": {"addr": "172.26.0.0", "len": 16}},
        {"concat": ["br0", "br0"]},
        [{"concat": ["127.0.0.1", "udp", 5353]}, {"concat": ["172.26.0.2", 53]}],
        {"elem": {"val": "br0", "comment": "x"}},
    ]
    assert [nftables._canonical(e) for e in listed] == [
        "172.26.0.0/16", "br0 . br0", "127.0.0.1 . udp . 5353 : 172.26.0.2 . 53", "br0"]
    contents, rules = nftables.expected_contents(PLAN)
    assert contents["dnat4any"] == {"tcp . 8080 : 172.26.0.2 . 80"}
    assert contents["dnat4"] == {"127.0.0.1 . udp . 5353 : 172.26.0.2 . 53"}
    assert contents["same"] == {"br0 . br0"} and contents["subnets6"] == set()
    assert rules["prerouting"] == 1 and rules["published"] == 4 and rules["forward"] == 7
    assert rules["output"] == 2 and rules["loopback"] == 2 and rules["untracked"] == 2
    assert contents["icc"] == {"br0"}


def test_iptables_save_lines_are_grouped_by_chain_with_lone_addresses_as_prefixes():
    saved = """\
*nat
:PREROUTING ACCEPT [0:0]
:CNET-DNAT - [0:0]
-A PREROUTING -j CNET-PREROUTING
-A PREROUTING -j DOCKER
-A CNET-DNAT -d 127.0.0.1/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 172.26.0.2:53
-A DOCKER -d 10.0.0.1/32 -j RETURN
COMMIT
"""
    found = iptables._rules_by_chain(saved, "CNET-")
    assert found == {
        ("nat", "PREROUTING"): ["-A PREROUTING -j CNET-PREROUTING"],
        ("nat", "CNET-DNAT"): ["-A CNET-DNAT -d 127.0.0.1/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 172.26.0.2:53"],
    }
    rendered = iptables._rules_by_chain(iptables.render(PLAN, 4), "CNET-")
    assert found[("nat", "CNET-DNAT")][0] in rendered[("nat", "CNET-DNAT")]  # what cnet writes reads back the same


def test_iptables_render_for_another_state_file_names_its_own_chains(tmp_path):
    owner = Owner(str(tmp_path / "a.yaml"))
    text = iptables.render(PLAN, 4, owner.iptables_chain(""))
    chains = {line.split()[1] for line in text.splitlines() if line.startswith("-A")}
    assert chains and all(c.startswith(f"CNET{owner.id}-") for c in chains)
    assert "CNET-" not in text


def test_nft_table_for_another_state_file(tmp_path):
    owner = Owner(str(tmp_path / "a.yaml"))
    script = nftables.render_full(PLAN, f"inet {owner.nft_table}")
    assert f"table inet cnet_{owner.id} {{" in script and "inet cnet " not in script
    delta = nftables.render_changes(PLAN.dnat, (), f"inet {owner.nft_table}")
    assert delta.count(f"delete element inet cnet_{owner.id} ") == 2
