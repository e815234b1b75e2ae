"""Topology files: loading (every error names its line and key), the model, export and the picture."""

from __future__ import annotations

import textwrap

import pytest

from apply_fake import FakeCnet
from cnet.core import apply_plan, topology
from cnet.errors import InvalidInput

LAB = """\
version: 1
networks:
  front: {subnet: 172.30.0.0/24}
  back:  {driver: bridge, subnet: [10.31.0.0/24, "fd00:31::/64"]}
  quiet: {subnet: 10.32.0.0/24, no-icc: true, mtu: 1400, internal: true}
  out: {subnet: 10.33.0.0/24, routed: true}
sandboxes:
  web:
    networks: {front: {ip: 172.30.0.10, mac: 00:11:22:33:44:55, ingress: {}}, back: {}}
    publish: [8080:80, "127.0.0.1:5353:53/udp"]
    dns: [1.1.1.1]
  db: {networks: [back], add-host: "cache:10.31.0.9", hostname: db.lab}
  side: {join: web}
  far: {join: side}
  shell: {host: true}
routers:
  r1: {networks: [front, "back:10.31.0.254"]}
"""


def load(text: str) -> topology.Topology:
    return topology.load(textwrap.dedent(text), source="lab.yaml")


def refused(text: str) -> str:
    with pytest.raises(InvalidInput) as e:
        load(text)
    return str(e.value)


def lab() -> topology.Topology:
    return load(LAB.replace(", ingress: {}", ""))


def test_a_file_becomes_the_objects_it_names_with_the_cli_option_names():
    topo = lab()
    assert topo.networks["front"].request["subnets"] == ("172.30.0.0/24",)
    assert topo.networks["quiet"].request["internal"] is True
    assert topo.networks["quiet"].request["options"] == {"icc": False}
    assert topo.networks["quiet"].request["mtu"] == 1400
    assert topo.networks["out"].request["options"] == {"routed": True}
    assert topo.networks["out"].request["masquerade"] is False  # --routed has no NAT, as on the command line
    web = topo.sandboxes["web"]
    assert [e.network for e in web.endpoints] == ["front", "back"]
    assert web.endpoints[0].attach_arguments() == {"ips": ("172.30.0.10",), "mac": "00:11:22:33:44:55"}
    assert web.publish == ("8080:80", "127.0.0.1:5353:53/udp")  # 8080:80 is no base-60 number here
    assert web.dns == ("1.1.1.1",)
    assert topo.sandboxes["db"].hosts == ("cache:10.31.0.9",) and topo.sandboxes["db"].hostname == "db.lab"
    assert (topo.sandboxes["side"].mode, topo.sandboxes["side"].target) == ("joined", "web")
    assert topo.owner("far") == "web"
    assert topo.sandboxes["shell"].mode == "host"
    assert topo.routers["r1"].network_arguments() == ["front", "back:10.31.0.254"]


def test_an_unknown_key_is_named_with_its_line():
    message = refused(LAB)
    assert message.startswith("lab.yaml line 9: sandboxes.web.networks.front.ingress: unknown key")
    assert "lab.yaml line 3: networks.front.colour: unknown key" in refused(LAB.replace(
        "{subnet: 172.30.0.0/24}", "{subnet: 172.30.0.0/24, colour: red}"))
    assert refused("version: 1\nnetwork: {}\n").startswith("lab.yaml line 2: network: unknown key")


def test_a_value_of_the_wrong_type_is_named_with_its_line():
    assert refused("networks:\n  a: {subnet: 10.1.0.0/24, mtu: big}\n") == \
        "lab.yaml line 2: networks.a.mtu: must be an integer, not 'big'"
    assert refused("networks:\n  a: {internal: 'yes please'}\n").startswith(
        "lab.yaml line 2: networks.a.internal: must be true or false")
    assert "line 3: sandboxes.s.dns: must be a string" in refused(
        "networks: {}\nsandboxes:\n  s: {dns: {a: 1}}\n")
    assert "line 1: networks: must be a mapping" in refused("networks: [a, b]\n")


def test_a_sandbox_on_an_undeclared_network_is_refused():
    message = refused("networks:\n  a: {subnet: 10.1.0.0/24}\nsandboxes:\n  s:\n    networks: [a, b]\n")
    assert message == "lab.yaml line 5: sandboxes.s.networks.b: network b is not declared under networks"
    assert "line 4: routers.r.networks: network z is not declared" in refused(
        "networks:\n  a: {subnet: 10.1.0.0/24}\nrouters:\n  r: {networks: [a, z]}\n")


def test_two_sandboxes_with_one_address_are_refused():
    message = refused("""\
        networks:
          a: {subnet: 10.1.0.0/24}
        sandboxes:
          s: {networks: {a: {ip: 10.1.0.5}}}
          t:
            networks:
              a: {ip: 10.1.0.5}
        """)
    assert message == ("lab.yaml line 7: sandboxes.t.networks.a.ip: address 10.1.0.5 is given to"
                       " sandboxes.s.networks.a.ip too")
    assert "given to sandboxes.s.networks.a.ip too" in refused("""\
        networks: {a: {subnet: 10.1.0.0/24}, b: {subnet: 10.2.0.0/24}}
        sandboxes: {s: {networks: {a: {ip: 10.1.0.5}}}}
        routers: {r: {networks: ["a:10.1.0.5", b]}}
        """)


def test_an_address_outside_its_subnet_is_refused():
    assert refused("networks:\n  a: {subnet: 10.1.0.0/24}\nsandboxes:\n  s: {networks: {a: {ip: 10.2.0.5}}}\n") == \
        "lab.yaml line 4: sandboxes.s.networks.a.ip: 10.2.0.5 is outside the subnet(s) 10.1.0.0/24 of network a"
    assert "outside the subnet(s)" in refused(
        "networks: {a: {subnet: 10.1.0.0/24}, b: {subnet: 10.2.0.0/24}}\nrouters: {r: {networks: [a, 'b:10.1.0.9']}}\n")
    assert "is not an IP address" in refused("networks: {a: {}}\nsandboxes: {s: {networks: {a: {ip: x}}}}\n")


def test_what_the_command_line_refuses_the_file_refuses_with_its_line():
    assert "line 3: networks.b: subnet 10.1.0.0/25 overlaps subnet 10.1.0.0/24 of network a" in refused(
        "networks:\n  a: {subnet: 10.1.0.0/24}\n  b: {subnet: 10.1.0.0/25}\n")
    assert "line 2: networks.a: MTU 20 is out of range" in refused("networks:\n  a: {mtu: 20}\n")
    assert "--routed and --internal do not go together" in refused("networks:\n  a: {routed: true, internal: true}\n")
    assert "line 2: networks.a.driver: unknown driver 'token-ring'" in refused("networks:\n  a: {driver: token-ring}\n")
    assert "line 2: sandboxes.s: --dns" in refused("sandboxes:\n  s: {dns: [nowhere]}\n")
    assert "sandboxes.S!: sandbox name" in refused("sandboxes:\n  S!: {}\n")
    assert "line 3: sandboxes.s.networks.a.mac: MAC address" in refused(
        "networks: {a: {}}\nsandboxes:\n  s: {networks: {a: {mac: 01:00:00:00:00:01}}}\n")
    assert "line 3: sandboxes.s.publish: port spec '99999'" in refused(
        "networks: {a: {}}\nsandboxes:\n  s: {networks: [a], publish: ['99999']}\n")
    assert "routers.r.networks: a router joins two networks or more" in refused(
        "networks: {a: {}}\nrouters:\n  r: {networks: [a]}\n")
    assert "line 2: sandboxes.s: join and host cannot be combined" in refused(
        "sandboxes:\n  s: {join: t, host: true}\n  t: {}\n")


def test_joins_and_modes_are_checked():
    assert "sandboxes.s.join: sandbox nobody is not declared" in refused("sandboxes:\n  s: {join: nobody}\n")
    assert "joins go round in a circle" in refused("sandboxes:\n  s: {join: t}\n  t: {join: s}\n")
    assert "sandboxes.s.networks: a sandbox that shares the stack of t: give its networks there" in refused(
        "networks: {a: {}}\nsandboxes:\n  s: {join: t, networks: [a]}\n  t: {}\n")
    assert "host's own namespace" in refused("networks: {a: {}}\nsandboxes:\n  s: {host: true, networks: [a]}\n")
    assert "needs a network to publish on" in refused("sandboxes:\n  s: {publish: ['80']}\n")
    assert "r is a sandbox too" in refused(
        "networks: {a: {}, b: {}}\nsandboxes: {r: {}}\nrouters: {r: {networks: [a, b]}}\n")


def test_bad_yaml_and_bad_documents_name_the_line():
    assert refused("networks:\n  a: {subnet: [\n") .startswith("lab.yaml line 3: not YAML")
    assert refused("version: 2\n") == "lab.yaml line 1: version: only version 1 is known"
    assert refused("networks:\n  a: {}\n  a: {}\n") == "lab.yaml line 3: networks.a: is given twice"
    assert refused("") == "lab.yaml: the file is empty (a topology has networks, sandboxes and routers)"


def test_empty_sections_and_a_list_of_networks_are_fine():
    topo = load("networks:\nsandboxes:\n  lonely:\n")
    assert topo.networks == {} and topo.sandboxes["lonely"].endpoints == ()


def applied(text: str = LAB.replace(", ingress: {}", "")) -> FakeCnet:
    fake = FakeCnet()
    fake.run(apply_plan.plan(fake.state, load(text)))
    return fake


def test_an_export_loads_back_and_plans_nothing():
    fake = applied()
    fake.publish("db", "9000-9001:90-91/udp")
    fake.publish("web", "[::]:8443:443", network="back")  # on web's second network
    text = topology.dump(topology.export(fake.state))
    again = topology.load(text, source="export")
    assert apply_plan.plan(fake.state, again).empty, text
    doc = topology.export(fake.state)
    assert doc["networks"]["front"] == {"subnet": "172.30.0.0/24"}
    assert doc["networks"]["quiet"] == {"subnet": "10.32.0.0/24", "mtu": 1400, "internal": True, "no-icc": True}
    assert doc["networks"]["out"] == {"subnet": "10.33.0.0/24", "routed": True}
    web = doc["sandboxes"]["web"]
    assert web["networks"]["front"] == {"ip": "172.30.0.10", "mac": "00:11:22:33:44:55"}
    assert web["networks"]["back"]["publish"] == ["[::]:8443:443"]
    assert web["publish"] == ["8080:80", "127.0.0.1:5353:53/udp"]
    assert doc["sandboxes"]["db"]["publish"] == ["9000-9001:90-91/udp"]
    assert doc["sandboxes"]["far"] == {"join": "web"}  # the stack's owner, as the state records it
    assert doc["sandboxes"]["shell"] == {"host": True}
    assert doc["routers"]["r1"] == {"networks": ["front:172.30.0.2", "back:10.31.0.254"]}


def test_an_export_of_adopted_sandboxes_and_odd_gateways():
    fake = FakeCnet()
    fake.create_network("bridge", "a", subnets=["10.1.0.0/24"], gateways=["10.1.0.254"], ip_range="10.1.0.128/25")
    fake.create_ns("p", pid=4242)
    fake.create_ns("q", netns_path="/run/other/q")
    fake.attach("p", "a", ifname="uplink")
    doc = topology.export(fake.state)
    assert doc["networks"]["a"] == {"subnet": "10.1.0.0/24", "gateway": "10.1.0.254", "ip-range": "10.1.0.128/25"}
    assert doc["sandboxes"]["p"]["pid"] == 4242 and doc["sandboxes"]["p"]["networks"]["a"]["ifname"] == "uplink"
    assert doc["sandboxes"]["q"] == {"netns-path": "/run/other/q"}
    assert apply_plan.plan(fake.state, topology.load(topology.dump(doc))).empty


def test_the_picture_groups_sandboxes_by_network_and_shows_ports_and_routers():
    dot = topology.dot(lab())
    assert dot.startswith("digraph cnet {") and dot.endswith("}\n")
    assert 'subgraph "cluster_front"' in dot and 'label="front\\nbridge 172.30.0.0/24"' in dot
    assert '"sb:web" -> "net:front" [label="172.30.0.10"];' in dot
    assert 'host -> "sb:web" [style=dashed, dir=forward, label="*:8080 -> 80/tcp"];' in dot
    assert 'host -> "sb:web" [style=dashed, dir=forward, label="127.0.0.1:5353 -> 53/udp"];' in dot
    assert '"router:r1" -> "net:back" [label="10.31.0.254"];' in dot
    assert '"sb:side" -> "sb:web" [style=dotted, label="joins"];' in dot
    assert '"sb:shell" [shape=ellipse, label="shell (host)"];' in dot


def test_bandwidth_limits_are_attachment_keys_checked_with_their_line():
    topo = load("networks: {a: {subnet: 10.0.0.0/24}}\n"
                "sandboxes:\n  s: {networks: {a: {ingress-rate: 100mbit, egress-rate: 5mbit, egress-burst: 64kb}}}\n")
    assert topo.sandboxes["s"].endpoints[0].attach_arguments() == {
        "limits": {"ingress_rate": "100mbit", "egress_rate": "5mbit", "egress_burst": "64kb"}}
    assert "line 4: sandboxes.s.networks.a: rate 'fast'" in refused(
        "networks: {a: {}}\nsandboxes:\n  s:\n    networks: {a: {ingress-rate: fast}}\n")
    assert "--ingress-burst needs --ingress-rate" in refused(
        "networks: {a: {}}\nsandboxes:\n  s: {networks: {a: {ingress-burst: 32kb}}}\n")


def test_macvlan_and_ipvlan_networks_take_their_create_options():
    topo = load("networks:\n  lan: {driver: macvlan, parent: eth1, subnet: 192.168.1.0/24, host-access: true}\n"
                "  l2: {driver: ipvlan, parent: eth2, subnet: 192.168.2.0/24, mode: l3}\n")
    assert topo.networks["lan"].request["options"] == {"parent": "eth1", "mode": "bridge", "host_access": True}
    assert topo.networks["lan"].request["masquerade"] is False
    assert topo.networks["l2"].request["options"] == {"parent": "eth2", "mode": "l3"}
    assert "line 2: networks.lan: a macvlan network needs --parent" in refused(
        "networks:\n  lan: {driver: macvlan, subnet: 192.168.1.0/24}\n")
    assert "networks.lan.no-icc: unknown key" in refused(
        "networks:\n  lan: {driver: macvlan, parent: e, no-icc: true}\n")
    fake = FakeCnet()
    fake.run(apply_plan.plan(fake.state, topo))
    doc = topology.export(fake.state)
    assert doc["networks"]["lan"] == {"driver": "macvlan", "subnet": "192.168.1.0/24", "parent": "eth1",
                                      "host-access": True}
    assert doc["networks"]["l2"] == {"driver": "ipvlan", "subnet": "192.168.2.0/24", "parent": "eth2", "mode": "l3"}
    assert apply_plan.plan(fake.state, topology.load(topology.dump(doc))).empty


@pytest.mark.parametrize("example", sorted(
    (__import__("pathlib").Path(__file__).resolve().parents[2] / "examples" / "topologies").glob("*.yaml")),
    ids=lambda p: p.name)
def test_every_example_topology_loads_and_draws(example):
    wanted = topology.load(example.read_text())
    dot = topology.dot(wanted)
    assert dot.startswith("digraph cnet {") and dot.endswith("}\n")
    for name in wanted.networks:
        assert f'subgraph "cluster_{name}"' in dot
    for name in wanted.sandboxes:
        assert f'"sb:{name}"' in dot


def test_an_overlay_takes_the_keys_of_create_overlay_and_refuses_others_in_one_line():
    topo = load("networks:\n  ov: {driver: overlay, subnet: 10.60.0.0/24, vni: 42, mtu: 1400}\n")
    assert topo.networks["ov"].request["options"] == {"vni": 42}  # the store: as for create overlay
    assert topo.networks["ov"].request["mtu"] == 1400
    assert load("networks:\n  ov: {driver: overlay}\n").networks["ov"].request["options"] == {}
    bad = refused("networks:\n  ov: {driver: overlay, vni: 0}\n")
    assert bad == "lab.yaml line 2: networks.ov: VNI 0 is out of range (1-16777215)"
    assert "\n" not in bad
    assert refused("networks:\n  ov: {driver: overlay, vni: x}\n").startswith(
        "lab.yaml line 2: networks.ov.vni: must be an integer")
    unknown = refused("networks:\n  ov: {driver: overlay, gateway: 10.60.0.9}\n")
    assert unknown.startswith("lab.yaml line 2: networks.ov.gateway: unknown key (known:") and "vni" in unknown
    assert "unknown key" in refused("networks:\n  ov: {driver: overlay, store: etcd://h:2379}\n")


def test_the_picture_shows_an_overlay_with_its_vni():
    picture = topology.dot(load("networks:\n  ov: {driver: overlay, subnet: 10.60.0.0/24, vni: 42}\n"))
    assert "overlay 10.60.0.0/24 (vni 42)" in picture
