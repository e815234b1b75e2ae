"""The hostdev driver: a network is one host link (a spare NIC, an SR-IOV
VF: `--parent`), and its endpoint is that link itself, moved into the
sandbox, as the CNI host-device plugin does. One sandbox has it at a time.

Attach records the link as it is on the host (name, MTU, MAC, up state,
ifalias: model.HostDevice, in the endpoint) and tags the link with all of it
(owner.device_tag, its ifalias) before it moves, so that a link cut off from
its record is still found, and given back, by `restore` and `gc`. Then one
request moves it into the sandbox under its name there (ethN); it gets the
network's MTU, the endpoint's MAC (its own unless --mac), the endpoint's
addresses, and a default route via the gateway (the LAN's router, never
handed out). No host side: no NAT, no published ports, no firewall rules;
limits shape the link inside the sandbox (base.shape_endpoint).

Detach, `delete ns` and `delete network --force` give it back: moved to the
host under its own name, with its MTU, MAC, up state and ifalias. cnet never
makes, deletes or puts in its link group such a link (gc deletes links of
its group).

A namespace that vanishes with the link in it (`ip netns delete`, its last
process gone): the kernel moves a physical link to the machine's first
namespace, under the name it had inside (devN if that is taken), still
tagged: restore moves it into the remade sandbox, gc gives back one whose
record is gone. A virtual link (a veth, as in the tests) is destroyed with
the namespace, and its peer with it: nothing can bring it back.
"""

from __future__ import annotations

import os

from .. import faults
from ..errors import Conflict, InvalidInput, NotFound
from ..model import Endpoint, HostDevice, Network, State, replace
from ..names import check_ifname
from .base import NO_FIREWALL, add_default_routes, reshape_endpoint, shape_endpoint, survey_limits, unshape_endpoint

HOST_NETNS = "/proc/thread-self/ns/net"  # the namespace cnet runs in: the host's


# -- the network -------------------------------------------------------------

def validate(net: Network) -> Network:
    unknown = set(net.options) - {"parent"}
    if unknown:
        raise InvalidInput(f"a hostdev network has no option {', '.join(sorted(unknown))}")
    parent = net.options.get("parent")
    if not isinstance(parent, str) or not parent:
        raise InvalidInput("a hostdev network needs --parent: the host link that moves into its sandbox")
    check_ifname(parent, "--parent")
    if net.internal:
        raise InvalidInput("a hostdev network is on its link's LAN: it cannot be --internal")
    return replace(net, masquerade=False, options={"parent": parent})


def firewall(net: Network):
    return NO_FIREWALL  # the link is on its LAN directly: nothing of the host's firewall is in the way


def check_in_state(state: State, net: Network) -> None:
    """The link is no cnet network's own link, nor another network's parent."""
    parent = net.options["parent"]
    if parent in state.networks:
        raise Conflict(f"--parent {parent} is the link of cnet network {parent}, not a spare link of the host")
    for other in state.networks.values():
        if other.name != net.name and other.options.get("parent") == parent:
            raise Conflict(f"--parent {parent} is the parent of {other.driver} network {other.name}; a hostdev"
                           " network takes its link away from the host")


def _device_view(net: Network, kernel) -> dict:
    """The network's link on the host, checked: there (NotFound), not made by
    cnet, no port of a bridge or bond, no addresses the host would lose."""
    parent = net.options["parent"]
    view = kernel.netlink.link_view(parent)
    if view is None:
        raise NotFound(f"link {parent} of hostdev network {net.name} is not on the host")
    moved = kernel.owner.read_device_tag(view["alias"])
    if moved is not None:
        raise Conflict(f"link {parent} is tagged as moved into sandbox {moved[0]} by a cnet that was stopped"
                       " half-way; `cnet gc` gives it back")
    if kernel.owner.owns_link(view["alias"], view["group"]):
        raise Conflict(f"--parent {parent} is a link cnet made (ifalias {view['alias']!r}), not a spare link"
                       " of the host")
    if view["master"]:
        raise Conflict(f"link {parent} is a port of another link (index {view['master']}): moving it would take"
                       " it away from there")
    if view["addresses"]:
        raise Conflict(f"link {parent} has addresses on the host ({', '.join(view['addresses'])}), which"
                       " moving it would take away: a hostdev network takes a spare link")
    return view


def create(net: Network, kernel, undo) -> None:
    _device_view(net, kernel)  # nothing is made: the link is the network


def delete(net: Network, kernel) -> bool:
    return False  # the link is the host's: it stays as it is


def inspect(net: Network, kernel) -> dict:
    """The link as the kernel shows it on the host; device None while it is
    in a sandbox (`cnet inspect SANDBOX` shows it there), or missing."""
    view = kernel.netlink.link_view(net.options["parent"])
    shown = None if view is None else {k: view[k] for k in ("ifname", "kind", "state", "up", "mtu", "mac",
                                                             "addresses")}
    return {"device": shown}


# -- endpoints ---------------------------------------------------------------

def default_mac(net: Network, kernel) -> str | None:
    """The link keeps its own MAC unless --mac says otherwise."""
    view = kernel.netlink.link_view(net.options["parent"])
    return None if view is None else view["mac"]


def plan_endpoint(state: State, net: Network, ep: Endpoint, kernel) -> Endpoint:
    holder = next((e.sandbox for e in state.endpoints_of_network(net.name)), None)
    if holder is not None:
        raise Conflict(f"hostdev network {net.name} moves link {net.options['parent']} into one sandbox at a"
                       f" time, and sandbox {holder} has it (cnet detach {holder} {net.name} first)")
    view = _device_view(net, kernel)
    device = HostDevice(view["ifname"], view["mtu"], view["mac"], view["up"], view["alias"] or "")
    return replace(ep, device=device)


def _tag(ep: Endpoint, owner) -> str:
    return owner.device_tag(ep.sandbox, ep.network, ep.device)


def attach(net: Network, ep: Endpoint, sandbox_path: str, kernel, undo, default_route: bool) -> None:
    """Tag the host link, move it into the sandbox at sandbox_path as ep.ifname, configure it there."""
    index = kernel.netlink.link_index(ep.device.name)
    if index is None:
        raise NotFound(f"link {ep.device.name} of hostdev network {net.name} is not on the host")
    # Registered first: wherever the link is when a later step fails, it is found by its tag and given back.
    undo.callback(give_back, net, ep, kernel)
    _move_in(net, ep, index, sandbox_path, kernel, undo, default_route)


def _move_in(net: Network, ep: Endpoint, index: int, sandbox_path: str, kernel, undo, default_route: bool) -> None:
    host = kernel.netlink
    host.set_alias(index, _tag(ep, kernel.owner))
    fd = os.open(sandbox_path, os.O_RDONLY)
    try:
        host.move_link(index, fd, ep.ifname, f"sandbox {ep.sandbox}")
    finally:
        os.close(fd)
    inside = kernel.inside(sandbox_path)
    _configure(net, ep, inside, inside.link_view(ep.ifname), kernel, undo, default_route)


def _configure(net: Network, ep: Endpoint, inside, view: dict, kernel, undo, default_route: bool) -> None:
    """The link in the sandbox (view: as it is there) made what the endpoint says."""
    index = view["index"]
    if view["mtu"] != net.mtu:
        inside.set_mtu(index, net.mtu)
    if view["mac"] != ep.mac:
        if view["up"]:
            inside.set_down(index)  # some drivers change a MAC only while the link is down
        inside.set_mac(index, ep.mac)
    for cidr in ep.addresses:
        if cidr not in view["addresses"]:
            inside.add_address(index, cidr)
    inside.set_up(index)
    faults.checkpoint("attach-addresses")
    if default_route:
        add_default_routes(net, inside)
    shape_endpoint(inside, ep.ifname, index, ep.limits, mtu=net.mtu, group=kernel.owner.group,
                   tag=_tag(ep, kernel.owner), undo=undo, host_side=False)


def limit(net: Network, old: Endpoint, new: Endpoint, kernel, undo) -> None:
    """From the limits of old to those of new, on the link inside its sandbox."""
    from ..kernel import netns

    reshape_endpoint(kernel.inside(netns.path_of(new.sandbox)), new.ifname, old.limits, new.limits,
                     mtu=net.mtu, group=kernel.owner.group, tag=_tag(new, kernel.owner), undo=undo,
                     host_side=False)


def detach(net: Network, ep: Endpoint, kernel) -> None:
    """Give the link back to the host; gone already (a veth, with its namespace) is fine."""
    faults.checkpoint("detach")
    give_back(net, ep, kernel)


def give_back(net: Network, ep: Endpoint, kernel) -> bool:
    """Move the endpoint's link from its sandbox to the host, under its own
    name, with its MTU, MAC, ifalias and up state, wherever it is: in the
    sandbox, or on the host already (the kernel put it there, or a step of
    an attach did not move it yet). False if it is in neither."""
    from ..kernel import netns

    tag = _tag(ep, kernel.owner)
    if netns.exists(ep.sandbox):
        inside = kernel.inside(netns.path_of(ep.sandbox))
        name = _tagged(inside, tag, ep.ifname, ep.device.name)
        if name is not None:
            index = inside.link_index(name)
            unshape_endpoint(inside, ep.ifname, index, kernel.owner.group)
            fd = os.open(HOST_NETNS, os.O_RDONLY)
            try:
                inside.move_link(index, fd, ep.device.name, "the host")
            finally:
                os.close(fd)
    host = kernel.netlink
    name = _tagged(host, tag, ep.device.name)
    if name is None:
        return False
    _as_it_was(host, host.link_view(name), ep.device)
    return True


def _tagged(nl, tag: str, *names: str) -> str | None:
    """The name of the link with that tag in nl's namespace: one of names, else any."""
    for name in names:
        view = nl.link_view(name)
        if view is not None and view["alias"] == tag:
            return name
    return next((name for name, alias in nl.aliases().items() if alias == tag), None)


def _as_it_was(host, view: dict, device: HostDevice) -> None:
    """A link back on the host (view: as it is) made as it was before it moved."""
    index = view["index"]
    if view["up"] and (view["ifname"] != device.name or view["mac"] != device.mac or not device.up):
        host.set_down(index)
    if view["ifname"] != device.name:
        host.set_name(index, device.name)
    if view["mac"] != device.mac:
        host.set_mac(index, device.mac)
    if view["mtu"] != device.mtu:
        host.set_mtu(index, device.mtu)
    host.set_alias(index, device.alias)  # last but its state: it is no longer cnet's
    if device.up:
        host.set_up(index)


def give_back_orphan(kernel, name: str) -> str:
    """gc: a link on the host tagged as moved by cnet, whose endpoint the state
    does not list: back to what its tag says it was. Returns its name now."""
    host = kernel.netlink
    view = host.link_view(name)
    found = None if view is None else kernel.owner.read_device_tag(view["alias"])
    if found is None:
        raise NotFound(f"link {name} is not a link cnet moved")
    _as_it_was(host, view, found[2])
    return found[2].name


def _held(inside, owner) -> list[tuple[str, HostDevice]]:
    """(name in the namespace, the link as it was on the host) of each link cnet moved into inside's namespace."""
    return [(name, found[2]) for name, alias in inside.aliases().items()
            if (found := owner.read_device_tag(alias)) is not None]


def held_in(kernel, sandbox_path: str, only: frozenset | None = None) -> list[str]:
    """gc --dry-run: the host names of the links give_back_all would give back."""
    return [device.name for name, device in _held(kernel.inside(sandbox_path), kernel.owner)
            if only is None or name in only]


def give_back_all(kernel, sandbox_path: str, only: frozenset | None = None) -> list[str]:
    """gc, before a namespace it removes: the links cnet moved into it go back
    to the host as their tags say (a veth would be destroyed with it).
    only: just those of these names (in the namespace). Returns their names on the host."""
    inside, owner = kernel.inside(sandbox_path), kernel.owner
    given = []
    for name, device in _held(inside, owner):
        if only is not None and name not in only:
            continue
        index = inside.link_index(name)
        unshape_endpoint(inside, name, index, owner.group)
        fd = os.open(HOST_NETNS, os.O_RDONLY)
        try:
            inside.move_link(index, fd, device.name, "the host")
        finally:
            os.close(fd)
        give_back_orphan(kernel, device.name)
        given.append(device.name)
    return given


# -- check and restore (core/lifecycle.py) -------------------------------------

def links(net: Network, endpoints) -> set[str]:
    """None: the link is not on the host while it is in use, and is the host's own while it is not."""
    return set()


def survey_network(net: Network, kernel, host_addresses) -> list[str]:
    """Nothing of its own: the link is the endpoint's business (survey_endpoint)
    while a sandbox has it, and survey_unused's while none does."""
    return []


def survey_unused(net: Network, kernel) -> list[str]:
    """While no sandbox has it, the link is on the host under its own name
    (read from sysfs, no netlink). One gone cnet cannot make again; one on the
    host with cnet's tag on it is gc's to give back (an extra link)."""
    from ..kernel import sysfs

    parent = net.options["parent"]
    if sysfs.exists(parent):
        return []
    return [f"missing link {parent}: no sandbox has it, and the host has no link of that name; cnet cannot make"
            " one: bring it back, or delete the network"]


def repair_network(net: Network, kernel, undo) -> None:
    """cnet makes no link of a hostdev network: nothing to repair."""


def _on_the_host(ep: Endpoint, owner) -> str | None:
    """The name under which the endpoint's link is on the host, from sysfs (no netlink), or None."""
    from ..kernel import sysfs

    tag = _tag(ep, owner)
    for name in (ep.device.name, ep.ifname, *sorted(sysfs.link_names())):
        link = sysfs.link(name)
        if link is not None and link.alias == tag:
            return name
    return None


def survey_endpoint(net: Network, ep: Endpoint, kernel, inside) -> list[str]:
    """Where the link is and how; without a handle inside (plain `cnet
    check`), only whether it is on the host instead."""
    on_host = _on_the_host(ep, kernel.owner)
    if on_host is not None:
        where = "" if on_host == ep.device.name else f" as {on_host}"
        return [f"link {ep.device.name} is on the host{where}, not in sandbox {ep.sandbox}"]
    if inside is None:
        return []
    view = inside.link_view(ep.ifname)
    if view is None:
        return [f"missing link {ep.ifname} (host link {ep.device.name}) in the sandbox"]
    if view["alias"] != _tag(ep, kernel.owner):
        return [f"link {ep.ifname} in the sandbox is not host link {ep.device.name} (ifalias {view['alias']!r})"]
    problems = []
    if view["mtu"] != net.mtu:
        problems.append(f"link {ep.ifname} in the sandbox has MTU {view['mtu']}, the state {net.mtu}")
    if view["mac"] != ep.mac:
        problems.append(f"link {ep.ifname} in the sandbox has MAC {view['mac']}, the state {ep.mac}")
    problems += [f"missing address {a} on {ep.ifname} in the sandbox" for a in ep.addresses
                 if a not in view["addresses"]]
    if not view["up"]:
        problems.append(f"link {ep.ifname} in the sandbox is down")
    if ep.limits is not None and not problems:
        def alias(name):
            seen = inside.link_view(name)
            return None if seen is None else seen["alias"] or ""

        problems += survey_limits(inside, ep.ifname, view["index"], ep.limits, tag=_tag(ep, kernel.owner),
                                  link_alias=alias, host_side=False)
    return problems


def repair_endpoint(net: Network, ep: Endpoint, sandbox_path: str, kernel, undo, default_route: bool) -> None:
    """The link made what the endpoint says where it stands in the sandbox;
    else found on the host (by its tag, or after a reboot by its own name)
    and moved in again."""
    inside = kernel.inside(sandbox_path)
    view = inside.link_view(ep.ifname)
    tag = _tag(ep, kernel.owner)
    if view is not None and view["alias"] == tag:
        unshape_endpoint(inside, ep.ifname, view["index"], kernel.owner.group)  # shaped again as the state says
        _configure(net, ep, inside, view, kernel, undo, default_route)
        return
    if view is not None:
        raise Conflict(f"the sandbox already has a link {ep.ifname} that is not host link {ep.device.name}")
    host = kernel.netlink
    name = _tagged(host, tag, ep.device.name)
    if name is None:
        seen = host.link_view(ep.device.name)
        if seen is None:
            raise NotFound(f"host link {ep.device.name} is neither in sandbox {ep.sandbox} nor on the host"
                           " (a virtual link such as a veth goes with its namespace)")
        if (seen["alias"] or "") != ep.device.alias:  # after a reboot: as it was before it moved
            raise Conflict(f"link {ep.device.name} on the host has ifalias {seen['alias']!r}: it is not the"
                           " link this endpoint moved, or another has it")
        name = ep.device.name
    undo.callback(give_back, net, ep, kernel)
    _move_in(net, ep, host.link_index(name), sandbox_path, kernel, undo, default_route)
