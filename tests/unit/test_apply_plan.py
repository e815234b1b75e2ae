"""The plan of `cnet apply`: what is created, changed, replaced and deleted, in which order."""

from __future__ import annotations

import textwrap

import pytest

from apply_fake import FakeCnet
from cnet.core import topology
from cnet.core.apply_plan import PHASES, plan
from cnet.errors import Conflict

LAB = """\
networks:
  front: {subnet: 10.1.0.0/24}
  back: {subnet: [10.2.0.0/24, "fd00:2::/64"]}
sandboxes:
  web:
    networks: {front: {ip: 10.1.0.10}, back: {}}
    publish: ["8080:80"]
  db: {networks: [back], dns: [10.2.0.53]}
  side: {join: web}
routers:
  r1: {networks: [front, "back:10.2.0.254"]}
"""


def load(text: str) -> topology.Topology:
    return topology.load(textwrap.dedent(text), source="lab.yaml")


def applied(text: str = LAB) -> FakeCnet:
    fake = FakeCnet()
    fake.run(plan(fake.state, load(text)))
    return fake


def replan(fake: FakeCnet, text: str, prune: bool = False):
    """The plan of text against fake's state; carried out, then planned again: nothing left."""
    p = plan(fake.state, load(text), prune=prune)
    fake.calls = []
    fake.run(p)
    assert plan(fake.state, load(text), prune=prune).empty
    return p


def methods(p) -> list[str]:
    return [f"{s.method} {s.what}" for s in p.steps]


def test_from_nothing_everything_is_created_in_dependency_order():
    fake = FakeCnet()
    p = plan(fake.state, load(LAB))
    assert p.lines == [
        "+ create network front (bridge 10.1.0.0/24)",
        "+ create network back (bridge 10.2.0.0/24 fd00:2::/64)",
        "+ create sandbox web (on front (10.1.0.10), back; publish 8080:80)",
        "+ create sandbox db (dns 10.2.0.53; on back)",
        "+ create sandbox side (join web)",
        "+ create router r1 (front, back:10.2.0.254)",
    ]
    # a new sandbox's first attachment and its ports are part of its creation, as create ns --network --publish
    assert methods(p) == [
        "create_network network front", "create_network network back",
        "create_ns sandbox web", "create_ns sandbox db", "create_ns sandbox side",
        "attach endpoint web/back", "create_router router r1"]
    assert p.steps[0].args == ("bridge", "front") and p.steps[0].kwargs["subnets"] == ("10.1.0.0/24",)
    web = p.steps[2].kwargs
    assert (web["network"], web["ips"], web["publish"]) == ("front", ("10.1.0.10",), ["8080:80"])
    assert p.steps[3].kwargs["network"] == "back" and p.steps[5].kwargs == {}
    assert p.steps[4].kwargs["join"] == "web"
    state = fake.run(p)
    assert plan(state, load(LAB)).empty
    assert plan(state, load(LAB)).lines == []


def test_a_joiner_of_a_joiner_is_made_after_its_owner_whatever_the_file_order():
    p = plan(FakeCnet().state, load("sandboxes:\n  c: {join: b}\n  b: {join: a}\n  a: {}\n"))
    assert methods(p) == ["create_ns sandbox a", "create_ns sandbox b", "create_ns sandbox c"]


def test_ports_change_in_place():
    fake = applied()
    p = replan(fake, LAB.replace('publish: ["8080:80"]', 'publish: ["8080:80", "9090:90/udp"]'))
    assert p.lines == ["~ change sandbox web: publish 9090:90/udp"]
    assert methods(p) == ["publish port web 9090:90/udp"]
    p = replan(fake, LAB.replace('publish: ["8080:80"]', 'publish: ["8081:80"]'))
    assert p.lines == ["~ change sandbox web: publish 8081:80; unpublish 8080:80; unpublish 9090:90/udp"]
    # unpublishing comes first: a port may move from one sandbox to another
    assert methods(p) == ["unpublish port web 8080:80", "unpublish port web 9090:90/udp", "publish port web 8081:80"]
    assert [s.args for s in p.steps][:2] == [("web", "0.0.0.0:8080:80/tcp"), ("web", "0.0.0.0:9090:90/udp")]


def test_a_port_without_host_port_is_satisfied_by_the_one_picked():
    fake = applied(LAB.replace('"8080:80"', '"80"'))
    assert {p.host_port for p in fake.state.ports} == {32768}
    assert plan(fake.state, load(LAB.replace('"8080:80"', '"80"'))).empty


def test_attachments_change_in_place_and_a_changed_address_is_attached_again():
    fake = applied()
    p = replan(fake, LAB.replace("db: {networks: [back]", "db: {networks: [back, front]"))
    assert p.lines == ["~ change sandbox db: attach front"]
    assert methods(p) == ["attach endpoint db/front"]
    p = replan(fake, LAB.replace("{ip: 10.1.0.10}", "{ip: 10.1.0.11}"))
    assert p.lines == ["~ change sandbox web: attach front again (ip 10.1.0.10 -> 10.1.0.11); publish 8080:80",
                       "~ change sandbox db: detach front"]
    assert methods(p) == ["detach endpoint web/front", "detach endpoint db/front", "attach endpoint web/front",
                          "publish port web 8080:80"]
    p = replan(fake, LAB.replace("networks: {front: {ip: 10.1.0.10}, back: {}}", "networks: {front: {ip: 10.1.0.11}}"))
    # the port had gone to back, web's first network once front was attached again
    assert p.lines == ["~ change sandbox web: detach back; publish 8080:80"]
    assert methods(p) == ["detach endpoint web/back", "publish port web 8080:80"]


def test_a_port_on_an_endpoint_attached_again_is_published_again():
    fake = applied()
    was = next(e.mac for e in fake.state.endpoints if (e.sandbox, e.network) == ("web", "front"))
    text = LAB.replace("{front: {ip: 10.1.0.10}, back: {}}",
                       "{back: {}, front: {ip: 10.1.0.10, mac: 02:00:00:00:00:01}}")
    p = replan(fake, text)
    assert p.lines == [f"~ change sandbox web: attach front again (mac {was} -> 02:00:00:00:00:01); publish 8080:80"]
    assert methods(p) == ["detach endpoint web/front", "attach endpoint web/front", "publish port web 8080:80"]


def test_a_subnet_change_replaces_the_network_and_what_stands_on_it():
    fake = applied()
    p = replan(fake, LAB.replace("10.2.0.0/24", "10.3.0.0/24").replace("back:10.2.0.254", "back:10.3.0.254")
               .replace("10.2.0.53", "10.3.0.53"))
    assert p.lines[0] == "-/+ replace network back: subnet 10.2.0.0/24, fd00:2::/64 -> 10.3.0.0/24, fd00:2::/64"
    assert any(line.startswith("-/+ replace router r1: address on back 10.2.0.254/24, fd00:2::") for line in p.lines)
    assert "-/+ replace sandbox db: dns 10.2.0.53 -> 10.3.0.53" in p.lines
    assert any(line.startswith("~ change sandbox web: attach back again (network back is replaced)")
               for line in p.lines)
    order = [PHASES.index(_phase(s)) for s in p.steps]
    assert order == sorted(order)  # deletes from the leaves in, then creations from the roots out
    calls = methods(p)
    assert calls.index("delete_router router r1") < calls.index("detach endpoint web/back") < \
        calls.index("delete_ns sandbox db") < calls.index("delete_network network back") < \
        calls.index("create_network network back") < calls.index("attach endpoint web/back") < \
        calls.index("create_router router r1")


def _phase(step) -> str:
    return {"unpublish": "unpublish", "delete_router": "delete router", "detach": "detach",
            "delete_ns": "delete sandbox", "delete_network": "delete network", "create_network": "create network",
            "create_ns": "create sandbox", "attach": "attach", "create_router": "create router",
            "publish": "publish"}[step.method]


def test_options_that_cannot_change_in_place_replace_the_network():
    fake = applied()
    p = replan(fake, LAB.replace("front: {subnet: 10.1.0.0/24}", "front: {subnet: 10.1.0.0/24, no-icc: true}")
               .replace('routers:\n  r1: {networks: [front, "back:10.2.0.254"]}\n', ""), prune=True)
    assert p.lines[0] == "-/+ replace network front: no-icc unset -> true"
    assert "- delete router r1" in p.lines


def test_a_network_without_a_subnet_in_the_file_keeps_the_one_it_has():
    fake = applied("networks:\n  a: {}\nsandboxes:\n  s: {networks: [a]}\n")
    assert plan(fake.state, load("networks:\n  a: {}\nsandboxes:\n  s: {networks: [a]}\n")).empty
    assert plan(fake.state, load("networks:\n  a: {mtu: 1400}\nsandboxes:\n  s: {networks: [a]}\n")).lines[0] == \
        "-/+ replace network a: mtu unset -> 1400"


def test_a_changed_mode_or_resolver_replaces_the_sandbox_and_its_joiners():
    fake = applied()
    p = replan(fake, LAB.replace("    publish:", "    dns: [9.9.9.9]\n    publish:"))
    assert p.lines == ["-/+ replace sandbox web: dns unset -> 9.9.9.9",
                       "-/+ replace sandbox side: sandbox web it joins is replaced"]
    calls = methods(p)
    assert calls.index("delete_ns sandbox side") < calls.index("delete_ns sandbox web")  # no stack handed over
    assert calls.index("create_ns sandbox web") < calls.index("create_ns sandbox side")
    p = replan(applied(), LAB.replace("db: {networks: [back], dns: [10.2.0.53]}", "db: {join: web}"))
    assert p.lines == ["-/+ replace sandbox db: dns 10.2.0.53 -> unset, join unset -> web"]


def test_what_the_file_does_not_name_is_deleted_only_with_prune():
    fake = applied()
    fake.create_network("bridge", "old", subnets=["10.9.0.0/24"])
    fake.create_ns("stray")
    fake.attach("stray", "old")
    fake.create_ns("stray-joiner", join="stray")
    fake.create_router("r2", ["old", "front"])
    assert plan(fake.state, load(LAB)).empty
    p = replan(fake, LAB, prune=True)
    assert p.lines == ["- delete router r2", "- delete sandbox stray", "- delete sandbox stray-joiner",
                       "- delete network old"]
    assert methods(p) == ["delete_router router r2", "delete_ns sandbox stray-joiner", "delete_ns sandbox stray",
                          "delete_network network old"]
    assert set(fake.state.networks) == {"front", "back"}


def test_replacing_a_network_that_an_unnamed_sandbox_is_on_is_refused_without_prune():
    fake = applied()
    fake.create_ns("stray")
    fake.attach("stray", "back")
    changed = LAB.replace("fd00:2::/64", "fd00:3::/64")
    with pytest.raises(Conflict, match="network back is replaced, but sandbox stray, which the file does not name"):
        plan(fake.state, load(changed))
    assert "- delete sandbox stray" in replan(fake, changed, prune=True).lines


def test_a_router_whose_networks_change_is_replaced_and_a_sandbox_may_become_a_router():
    fake = applied()
    p = replan(fake, LAB.replace('r1: {networks: [front, "back:10.2.0.254"]}', "r1: {networks: [back, front]}"))
    assert p.empty  # the same networks, no address asked for: nothing to do
    text = LAB.replace("networks:\n  front", "networks:\n  third: {subnet: 10.4.0.0/24}\n  front")
    p = replan(fake, text.replace('r1: {networks: [front, "back:10.2.0.254"]}', "r1: {networks: [front, back, third]}"))
    assert p.lines[-1] == "-/+ replace router r1: networks back, front -> back, front, third"
    p = replan(fake, LAB.replace("routers:\n  r1", "routers:\n  db")
               .replace("  db: {networks: [back], dns: [10.2.0.53]}\n", "")
               .replace('"back:10.2.0.254"', "back"), prune=True)
    assert "-/+ replace router db: sandbox db becomes a router" in p.lines
    assert "- delete router r1" in p.lines


def test_limits_change_in_place_and_a_limit_left_out_is_cleared():
    fake = applied()
    limited = LAB.replace("back: {}}", "back: {ingress-rate: 10mbit}}")
    p = replan(fake, limited)
    assert p.lines == ["~ change sandbox web: limit back: ingress-rate unset -> 10mbit"]
    assert [(s.method, s.args, s.kwargs) for s in p.steps] == [("limit", ("web", "back"), {"ingress_rate": "10mbit"})]
    p = replan(fake, LAB.replace("back: {}}", "back: {egress-rate: 2mbit, egress-burst: 32kb}}"))
    assert p.lines == ["~ change sandbox web: limit back: ingress-rate 10mbit -> unset, egress-rate unset -> 2mbit,"
                       " egress-burst unset -> 32kb"]
    assert [s.kwargs for s in p.steps] == [{"clear": True}, {"egress_rate": "2mbit", "egress_burst": "32kb"}]
    assert topology.export(fake.state)["sandboxes"]["web"]["networks"]["back"]["egress-burst"] == "32kb"
    p = replan(fake, LAB)
    assert p.lines == ["~ change sandbox web: limit back: egress-rate 2mbit -> unset, egress-burst 32kb -> unset"]
    assert [s.kwargs for s in p.steps] == [{"clear": True}]
    p = plan(FakeCnet().state, load(limited))
    assert p.steps[5].kwargs == {"limits": {"ingress_rate": "10mbit"}}  # a new endpoint is attached with them


OVERLAY = """\
version: 1
networks:
  ov: {driver: overlay, subnet: 10.60.0.0/24}
sandboxes:
  a: {networks: [ov]}
"""


def test_an_overlay_is_created_like_create_overlay_and_planned_again_is_no_change():
    fake = applied(OVERLAY)
    assert fake.state.networks["ov"].options["vni"] == 4096 and fake.state.networks["ov"].mtu == 1450
    assert replan(fake, OVERLAY).empty  # the store's VNI and MTU, left out of the file, are no change
    exported = topology.dump(topology.export(fake.state, fake.config))
    assert "vni: 4096" in exported and "store" not in exported and "vtep" not in exported
    assert replan(fake, exported).empty


def test_a_changed_overlay_key_replaces_it_and_prune_deletes_it():
    fake = applied(OVERLAY)
    p = replan(fake, OVERLAY.replace("subnet: 10.60.0.0/24", "subnet: 10.60.0.0/24, vni: 5000"))
    assert p.lines[0] == "-/+ replace network ov: vni 4096 -> 5000"
    assert methods(p) == ["detach endpoint a/ov", "delete_network network ov", "create_network network ov",
                          "attach endpoint a/ov"]
    p = replan(fake, OVERLAY.replace("subnet: 10.60.0.0/24", "subnet: 10.60.0.0/24, mtu: 1400"))
    assert p.lines[0] == "-/+ replace network ov: mtu 1450 -> 1400"
    p = replan(fake, "version: 1\n", prune=True)
    assert "- delete network ov" in p.lines and "delete_network network ov" in methods(p)
