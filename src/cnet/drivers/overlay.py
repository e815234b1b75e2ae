"""The overlay driver: one L2 network across hosts, over VXLAN, its
definition and addresses shared in etcd (overlay_store.py).

On each host an overlay is a bridge (bridge.py's, with the network's
gateway address, the same on every host: a sandbox's traffic out leaves
through its own host, masqueraded there) with one more port, the VXLAN
device "cnvx<VNI>" (UDP 4789 from this host's underlay address, no
learning, ARP answered from its neighbour entries). Endpoints are the
bridge's veth pairs. The endpoints of the other hosts are static FDB and
neighbour entries on the VXLAN device, made from the store by sync(): every
overlay command on the host runs it, and `cnet agent` whenever the store
changes.

The network's options, in the state file: vni; store (its etcd URL); host
(this host's name in the store) and vtep (its underlay address). The first
two are the same on every host, the last two this host's.
"""

from __future__ import annotations

import ipaddress
import socket

from ..errors import Conflict, InvalidInput, OperationFailed
from ..ipam import parse_cidr
from ..kernel import vxlan
from ..model import Endpoint, Network, replace
from ..store import store_url
from . import bridge
from . import overlay_entries as installed
from . import overlay_store as records
from .base import FirewallNeeds

OPTIONS = {"vni", "store", "host", "vtep"}
VXLAN_OVERHEAD = {4: 50, 6: 70}  # outer Ethernet, IPv4 or IPv6 (by the underlay's family), UDP and VXLAN headers


def vxlan_name(net: Network) -> str:
    return f"cnvx{net.options['vni']}"


def _db(net: Network):
    return records.store(net.options["store"])


# -- the network ---------------------------------------------------------------

def join(name: str, request: dict, config, kernel) -> dict:
    """The request with what the store says of the overlay: its definition
    when another host made it (explicit settings must be the same: else
    Conflict), else the settings this host will record (a free VNI, the
    underlay's MTU less the VXLAN headers); and this host's own options."""
    options = dict(request.get("options") or {})
    url = store_url(options.get("store"), config.store)
    db = records.store(url)
    vtep, underlay_mtu = _advertise(config.advertise, db, kernel.netlink)
    options.update(store=url, host=config.host or socket.gethostname(), vtep=vtep)
    vni = options.get("vni")
    family = ipaddress.ip_address(vtep).version
    record = records.read_network(db, name)
    if record is None:
        options["vni"] = records.free_vni(db) if vni is None else vni
        mtu = request.get("mtu") or underlay_mtu - VXLAN_OVERHEAD[family]
        return {**request, "mtu": mtu, "options": options}
    for host, theirs in sorted(records.member_vteps(db, name).items()):
        if host != options["host"] and ipaddress.ip_address(theirs).version != family:
            raise Conflict(f"overlay {name} runs over IPv{6 if family == 4 else 4} between its hosts ({host}: {theirs})"
                           f" and this host's underlay address is {vtep}: one family for all of them"
                           " (set `advertise:` in the config)")
    asked = [str(parse_cidr(s)) for s in request.get("subnets") or ()]
    recorded = [s["subnet"] for s in record["subnets"]]
    differences = [f"{what} {mine}, the store's {theirs}" for what, mine, theirs in (
        ("subnet", ", ".join(asked), ", ".join(recorded)), ("VNI", vni, record["vni"]),
        ("MTU", request.get("mtu"), record["mtu"]))
        if mine and mine != theirs]
    if differences:
        raise Conflict(f"overlay {name} exists in the store with other settings ({'; '.join(differences)})")
    options["vni"] = record["vni"]
    return {**request, "subnets": recorded, "gateways": [s["gateway"] for s in record["subnets"]],
            "mtu": record["mtu"], "internal": record["internal"], "masquerade": record["masquerade"],
            "options": options}


def _advertise(advertise: str | None, db, nl) -> tuple[str, int]:
    """(this host's underlay address, its link's MTU): config `advertise:`
    (an address of the host or a link name), else the source address of the
    route to the store's first member."""
    if advertise:
        try:
            ipaddress.ip_address(advertise)
        except ValueError:
            found = vxlan.first_address(nl, advertise)
            if found is None:
                raise InvalidInput(f"advertise: {advertise} is neither an address nor a link with an IPv4 address"
                                   " on this host") from None
            return found
        mtu = vxlan.address_link_mtu(nl, advertise)
        if mtu is None:
            raise InvalidInput(f"advertise: {advertise} is not an address of this host")
        return advertise, mtu
    host, port = db.endpoints[0]
    try:
        address = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)[0][4][0]
    except OSError as e:
        raise OperationFailed(f"cannot resolve store member {host}: {e.strerror or e}") from None
    found = vxlan.route_source(nl, address)
    if found is None:
        raise OperationFailed(f"no route to store member {host}; set `advertise:` in the config")
    return found


def define(net: Network, undo) -> None:
    """Record the network in the store if it is new there, this host as one
    of its members (each undone on failure), and this host's VTEP."""
    db, host = _db(net), net.options["host"]
    if records.define(db, net):
        undo.callback(records.undefine, db, net)
    records.join(db, net.name, host)
    undo.callback(db.delete, records.member_key(net.name, host))
    records.register_host(db, host, net.options["vtep"])


def leave(net: Network, undo) -> None:
    """Take this host off the network's members in the store (the last one
    out retires the network there), undone on failure."""
    db = _db(net)
    undo.callback(records.put_back, db, records.leave(db, net, net.options["host"]))


def validate(net: Network) -> Network:
    unknown = set(net.options) - OPTIONS
    if unknown:
        raise InvalidInput(f"an overlay network has no option {', '.join(sorted(unknown))}")
    vni = net.options.get("vni")
    if not isinstance(vni, int) or isinstance(vni, bool) or not 1 <= vni <= records.MAX_VNI:
        raise InvalidInput(f"VNI {vni!r} is out of range (1-{records.MAX_VNI})")
    for name in ("store", "host", "vtep"):
        if not isinstance(net.options.get(name), str) or not net.options[name]:
            raise InvalidInput(f"an overlay network needs its {name} option")
    return net


def firewall(net: Network) -> FirewallNeeds:
    return bridge.firewall(replace(net, options={}))


def create(net: Network, kernel, undo) -> None:
    """The bridge, its VXLAN port, and the entries of the other hosts' endpoints."""
    nl, owner = kernel.netlink, kernel.owner
    name = vxlan_name(net)
    if nl.link_index(name) is not None:
        raise Conflict(f"a link named {name} already exists on the host (VNI {net.options['vni']})")
    bridge.create(net, kernel, undo)
    _add_vxlan(net, nl, owner, undo)
    sync(net, kernel)


def _add_vxlan(net: Network, nl, owner, undo) -> None:
    name = vxlan_name(net)
    index = vxlan.add_vxlan(nl, name, net.options["vni"], net.options["vtep"], net.mtu, owner.group,
                            nl.link_index(net.name))
    undo.callback(nl.delete_link, name)
    nl.set_up(index)
    nl.set_alias(index, owner.network_tag(net.name))  # last: the device is complete


def delete(net: Network, kernel) -> bool:
    nl = kernel.netlink
    view = nl.link_view(vxlan_name(net))
    if view is not None and kernel.owner.owns_link(view["alias"], view["group"]):
        nl.delete_link(vxlan_name(net))
    installed.forget(kernel.owner.state_path, net.name)
    return bridge.delete(net, kernel)


def inspect(net: Network, kernel) -> dict | None:
    """The bridge as bridge.inspect shows it, with the VXLAN device and the
    hosts of the store (down: no agent holds its lease)."""
    view = bridge.inspect(net, kernel)
    if view is not None:
        device = vxlan.vxlan_view(kernel.netlink, vxlan_name(net))
        view["vxlan"] = None if device is None else {"name": vxlan_name(net), **device}
        try:
            view["hosts"] = records.hosts(_db(net))
        except OperationFailed as e:
            view["hosts"] = {"error": str(e)}
    return view


def sync(net: Network, kernel, full: bool = False) -> int:
    """Make this host's FDB and neighbour entries those of the store's
    endpoints on other hosts: missing ones added, stale ones deleted. What
    is there is what the last sync installed (overlay_entries.py), or, when
    that is unknown or `full`, what a dump of the kernel's tables shows.
    Returns how many entries it changed."""
    nl, state_path = kernel.netlink, kernel.owner.state_path
    index = nl.link_index(vxlan_name(net))
    if index is None:
        raise OperationFailed(f"the VXLAN device {vxlan_name(net)} of overlay {net.name} is missing"
                              " (`cnet restore` makes it again)")
    wanted_remotes, wanted_neighbours = _wanted(net)
    have = None if full else installed.read(state_path, net.name, index)
    have_remotes, have_neighbours = have or (vxlan.remotes(nl, index), vxlan.neighbours(nl, index))
    installed.forget(state_path, net.name)  # until the kernel is what the file will say
    for mac, vtep in have_remotes - wanted_remotes:
        vxlan.delete_remote(nl, index, mac, vtep)
    for ip, mac in have_neighbours - wanted_neighbours:
        vxlan.delete_neighbour(nl, index, ip, mac)
    for mac, vtep in wanted_remotes - have_remotes:
        vxlan.add_remote(nl, index, mac, vtep)
    for ip, mac in wanted_neighbours - have_neighbours:
        vxlan.add_neighbour(nl, index, ip, mac)
    installed.write(state_path, net.name, index, (wanted_remotes, wanted_neighbours))
    return len(have_remotes ^ wanted_remotes) + len(have_neighbours ^ wanted_neighbours)


def _wanted(net: Network) -> installed.Entries:
    """(MAC, VTEP) and (IP, MAC) of every endpoint of the other hosts, as the store has them."""
    me = net.options["host"]
    remotes, neighbours = set(), set()
    for ip, record in records.records(_db(net), net.name):
        if record.get("host") != me:
            remotes.add((record["mac"], record["vtep"]))
            neighbours.add((ip, record["mac"]))
    return remotes, neighbours


# -- endpoints ------------------------------------------------------------------

def reserve(net: Network, ep: Endpoint, pinned: set[str], undo) -> Endpoint:
    """ep with addresses from the store, unique across the overlay's hosts
    (recorded there, with this host, ep's sandbox and MAC; undone on failure)."""
    db, host = _db(net), net.options["host"]
    addresses = records.reserve(db, net, ep, pinned, host, net.options["vtep"])
    undo.callback(records.release, db, net.name, addresses, host)
    return replace(ep, addresses=addresses)


plan_endpoint = bridge.plan_endpoint
limit = bridge.limit


def attach(net: Network, ep: Endpoint, sandbox_path: str, kernel, undo, default_route: bool) -> None:
    bridge.attach(net, ep, sandbox_path, kernel, undo, default_route)
    sync(net, kernel)


def detach(net: Network, ep: Endpoint, kernel) -> None:
    """Release ep's addresses in the store first (unreachable: nothing is
    done, the endpoint stays), then the veth pair goes."""
    records.release(_db(net), net.name, ep.addresses, net.options["host"])
    bridge.detach(net, ep, kernel)
    if kernel.netlink.link_index(vxlan_name(net)) is not None:
        sync(net, kernel)


# -- check and restore -------------------------------------------------------------

def links(net: Network, endpoints) -> set[str]:
    return bridge.links(net, endpoints) | {vxlan_name(net)}


def survey_network(net: Network, kernel, host_addresses) -> list[str]:
    from ..kernel import sysfs

    problems = bridge.survey_network(net, kernel, host_addresses)
    name = vxlan_name(net)
    link = sysfs.link(name)
    if link is None:
        return problems + [f"missing link {name}"]
    if link.alias != kernel.owner.network_tag(net.name):
        return problems + [f"incomplete link {name} (its creation was cut short, or it is another's)"]
    if link.master != net.name:
        problems.append(f"link {name} is not a port of bridge {net.name}")
    if not link.up:
        problems.append(f"link {name} is down")
    if host_addresses is not None:  # a deep look: netlink is at hand
        problems += _entry_drift(net, kernel)
    return problems


def _entry_drift(net: Network, kernel) -> list[str]:
    """The FDB and neighbour entries that differ from what the last sync
    installed (by hand, say); nothing to say when no sync left its record
    for this device."""
    nl = kernel.netlink
    index = nl.link_index(vxlan_name(net))
    have = None if index is None else installed.read(kernel.owner.state_path, net.name, index)
    if have is None:
        return []
    kernel_view = (vxlan.remotes(nl, index), vxlan.neighbours(nl, index))
    problems = []
    for what, synced, found in zip(("FDB", "neighbour"), have, kernel_view):
        missing, stray = len(synced - found), len(found - synced)
        if missing or stray:
            problems.append(f"{what} entries of {vxlan_name(net)} differ from its last sync with the store"
                            f" ({missing} missing, {stray} extra)")
    return problems


def repair_network(net: Network, kernel, undo) -> None:
    """The bridge as bridge.repair_network makes it, the VXLAN device made
    again if it is missing or not whole, and the entries synced."""
    bridge.repair_network(net, kernel, undo)
    nl, name = kernel.netlink, vxlan_name(net)
    view = nl.link_view(name)
    if view is not None:
        if not kernel.owner.owns_link(view["alias"], view["group"]):
            raise Conflict(f"a link named {name} that is not cnet's is on the host: cnet leaves it alone")
        if view["alias"] and view["master"] == nl.link_index(net.name) and view["up"]:
            sync(net, kernel, full=True)
            return
        nl.delete_link(name)
    _add_vxlan(net, nl, kernel.owner, undo)
    sync(net, kernel, full=True)


def held_elsewhere(net: Network) -> list[str]:
    """The other hosts that hold the overlay in the store: while one does,
    the store keeps its definition, and a replacement with other settings
    would be refused after this host had left it."""
    return sorted(records.holders(_db(net), net.name) - {net.options["host"]})


def stray_records(net: Network, endpoints) -> list[tuple[str, object]]:
    """(what, its release) for each address record of this host in the store
    that none of these endpoints (the state's, on net) holds: what an attach
    killed between its reservation and its state write left there."""
    db, host = _db(net), net.options["host"]
    held = {a.partition("/")[0] for ep in endpoints for a in ep.addresses}
    return [(f"address record {ip} of sandbox {record.get('sandbox')} on overlay {net.name} (not in the state)",
             lambda ip=ip: records.release(db, net.name, [ip], host))
            for ip, record in records.records(db, net.name) if record.get("host") == host and ip not in held]


survey_endpoint = bridge.survey_endpoint
repair_endpoint = bridge.repair_endpoint
