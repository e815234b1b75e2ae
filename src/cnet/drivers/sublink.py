"""What the sub-interface drivers share (macvlan.py, ipvlan.py). This module
is no driver: drivers.get and statecheck.py both say so.

A network of theirs is a subnet of the LAN behind a host link, its parent;
an endpoint is a sub-interface of the parent, born inside the sandbox under
its name there (ethN: it never meets the host's names), in the state file's
link group, with the network's MTU, the endpoint's addresses, a default
route via the LAN's gateway (which IPAM never hands out) and, last, its tag
(ifalias). Its traffic goes between the sandbox and the LAN without crossing
the host's IP stack: no NAT, no published ports, no firewall rules.

cnet never changes the parent: deleting an endpoint or the network deletes
only the links cnet made. A parent carries the networks of one driver and
one mode (cnet's rule: the kernel forbids a link to carry both macvlan and
ipvlan children, and a passthru macvlan beside any other).
"""

from __future__ import annotations

import os

from .. import faults
from ..errors import Conflict, InvalidInput, NotFound, OperationFailed
from ..model import Endpoint, Network, State, replace
from ..names import check_ifname
from .base import NO_FIREWALL, add_default_routes, reshape_endpoint, shape_endpoint, survey_limits, unshape_endpoint

DRIVERS = ("macvlan", "ipvlan")  # the drivers whose networks have a parent


def parent_of(net: Network) -> str | None:
    return net.options.get("parent") if net.driver in DRIVERS else None


class SubLinkDriver:
    """One driver of this kind; its module publishes the bound methods as the
    driver interface (drivers/base.py). kind: the kernel's link kind; modes:
    the --mode words, the first the default; options: the driver's own
    options beside parent and mode."""

    def __init__(self, kind: str, modes: tuple[str, ...], options: frozenset = frozenset()) -> None:
        self.kind, self.modes = kind, modes
        self.options = frozenset({"parent", "mode"}) | options

    # -- the network -----------------------------------------------------------

    def validate(self, net: Network) -> Network:
        unknown = set(net.options) - self.options
        if unknown:
            raise InvalidInput(f"a {self.kind} network has no option {', '.join(sorted(unknown))}")
        parent = net.options.get("parent")
        if not isinstance(parent, str) or not parent:
            raise InvalidInput(f"a {self.kind} network needs --parent: the host link whose LAN it is on")
        check_ifname(parent, "--parent")
        mode = net.options.get("mode", self.modes[0])
        if mode not in self.modes:
            raise InvalidInput(f"{self.kind} mode {mode!r} is not one of {', '.join(self.modes)}")
        if net.internal:
            raise InvalidInput(f"a {self.kind} network is on its parent's LAN: it cannot be --internal")
        return replace(net, masquerade=False, options={**net.options, "parent": parent, "mode": mode})

    def firewall(self, net: Network):
        return NO_FIREWALL  # on the LAN directly: nothing of the host's firewall is in the way

    def check_in_state(self, state: State, net: Network) -> None:
        """The parent is no cnet bridge, and carries no other network of cnet's
        in another driver or mode (nor a second passthru one)."""
        parent, mode = net.options["parent"], net.options["mode"]
        if parent in state.networks and parent_of(state.networks[parent]) is None:
            raise Conflict(f"--parent {parent} is the link of cnet network {parent}, not a LAN link of the host")
        for other in state.networks.values():
            if other.driver == "hostdev" and other.options.get("parent") == parent:
                raise Conflict(f"--parent {parent} is the link of hostdev network {other.name}, which moves it"
                               " into a sandbox")
            if other.name == net.name or parent_of(other) != parent:
                continue
            other_mode = other.options.get("mode")
            if (other.driver, other_mode) != (net.driver, mode):
                raise Conflict(f"parent {parent} carries {other.driver} network {other.name} in mode {other_mode};"
                               f" cnet puts networks of one driver and mode on a parent")
            if self.single_child(net):
                raise Conflict(f"parent {parent} carries {mode} network {other.name} already, and a {mode}"
                               f" {self.kind} is the only child its parent can have")

    def single_child(self, net: Network) -> bool:
        """The parent can have one such link at a time (macvlan passthru)."""
        return False

    def shares_parent_mac(self, net: Network) -> bool:
        """The endpoints have the parent's MAC, not one of their own."""
        return False

    def link_data(self, mode: str) -> dict:
        """The kind's settings for a new link in that mode."""
        raise NotImplementedError

    def parent_view(self, net: Network, kernel) -> dict:
        """The parent as the kernel has it, checked: there (else NotFound), not
        a link cnet made, MTU not below the network's."""
        parent = net.options["parent"]
        view = kernel.netlink.link_view(parent)
        if view is None:
            raise NotFound(f"parent link {parent} of network {net.name} is not on this host")
        if kernel.owner.owns_link(view["alias"], view["group"]):
            raise Conflict(f"--parent {parent} is a link cnet made (ifalias {view['alias']!r}),"
                           " not a LAN link of the host")
        if view["mtu"] < net.mtu:
            raise InvalidInput(f"MTU {net.mtu} of network {net.name} is above the MTU {view['mtu']} of its parent"
                               f" {parent}; a {self.kind} link can be no larger (give --mtu)")
        return view

    def create(self, net: Network, kernel, undo) -> None:
        self.parent_view(net, kernel)

    def delete(self, net: Network, kernel) -> bool:
        return False  # nothing of the network's own is in the kernel: the parent stays as it is

    def inspect(self, net: Network, kernel) -> dict | None:
        """The parent as the kernel shows it (None when it is missing)."""
        view = kernel.netlink.link_view(net.options["parent"])
        if view is None:
            return None
        shown = {k: view[k] for k in ("ifname", "kind", "state", "up", "mtu", "mac", "addresses")}
        return {"parent": shown, "mode": net.options["mode"]}

    # -- endpoints ---------------------------------------------------------------

    def plan_endpoint(self, state: State, net: Network, ep: Endpoint, kernel) -> Endpoint:
        if self.single_child(net):
            taken = [e for e in state.endpoints if parent_of(state.networks[e.network]) == net.options["parent"]]
            if taken:
                raise Conflict(f"network {net.name} is {net.options['mode']}: its parent {net.options['parent']}"
                               f" takes one endpoint at a time, and sandbox {taken[0].sandbox} has it")
        if self.shares_parent_mac(net):
            view = kernel.netlink.link_view(net.options["parent"])
            if view is None:
                raise NotFound(f"parent link {net.options['parent']} of network {net.name} is not on this host")
            ep = replace(ep, mac=view["mac"])
        return ep

    def attach(self, net: Network, ep: Endpoint, sandbox_path: str, kernel, undo, default_route: bool) -> None:
        """A sub-interface of the parent, made inside the sandbox at sandbox_path."""
        host, inside = kernel.netlink, kernel.inside(sandbox_path)
        parent = host.link_index(net.options["parent"])
        if parent is None:
            raise NotFound(f"parent link {net.options['parent']} of network {net.name} is not on this host")
        mac = None if self.shares_parent_mac(net) else ep.mac
        fd = os.open(sandbox_path, os.O_RDONLY)
        try:
            host.add_sub_link(self.kind, ep.ifname, parent, net.mtu, kernel.owner.group, netns_fd=fd, mac=mac,
                              **self.link_data(net.options["mode"]))
        finally:
            os.close(fd)
        undo.callback(inside.delete_link, ep.ifname)
        index = inside.link_index(ep.ifname)
        if index is None:
            raise OperationFailed(f"the {self.kind} link {ep.ifname} made for sandbox {ep.sandbox} is not in it")
        for cidr in ep.addresses:
            inside.add_address(index, cidr)
        inside.set_up(index)
        faults.checkpoint("attach-addresses")
        if default_route:
            self.add_default_routes(net, inside, index)
        # no host side: the limits shape the sandbox's own interface (base.shape_endpoint)
        shape_endpoint(inside, ep.ifname, index, ep.limits, mtu=net.mtu, group=kernel.owner.group,
                       tag=kernel.owner.endpoint_tag(ep.sandbox, ep.network), undo=undo, host_side=False)
        inside.set_alias(index, kernel.owner.endpoint_tag(ep.sandbox, ep.network))  # last: complete

    def limit(self, net: Network, old: Endpoint, new: Endpoint, kernel, undo) -> None:
        """From the limits of old to those of new, on the live endpoint, inside its sandbox."""
        from ..kernel import netns

        reshape_endpoint(kernel.inside(netns.path_of(new.sandbox)), new.ifname, old.limits, new.limits,
                         mtu=net.mtu, group=kernel.owner.group, tag=kernel.owner.endpoint_tag(new.sandbox, new.network),
                         undo=undo, host_side=False)

    def add_default_routes(self, net: Network, inside, index: int) -> None:
        add_default_routes(net, inside)

    def detach(self, net: Network, ep: Endpoint, kernel) -> None:
        """Delete the sub-interface in the sandbox; gone already (with its
        namespace, say) is fine, and a link there that is not ours stays."""
        from ..kernel import netns

        faults.checkpoint("detach")
        if not netns.exists(ep.sandbox):
            return  # the kernel deleted the link with the namespace
        inside = kernel.inside(netns.path_of(ep.sandbox))
        view = inside.link_view(ep.ifname)
        if view is not None and self._ours(view, ep, kernel.owner):
            inside.delete_link(ep.ifname)
            if ep.limits is not None:
                unshape_endpoint(inside, ep.ifname, None, kernel.owner.group)  # the ifb that shaped it

    @staticmethod
    def _ours(view: dict, ep: Endpoint, owner) -> bool:
        """The link is this endpoint's: its tag, or our group and no tag yet
        (its making was cut short)."""
        return view["alias"] == owner.endpoint_tag(ep.sandbox, ep.network) or (
            not view["alias"] and view["group"] == owner.group)

    # -- check and restore -----------------------------------------------------------

    def links(self, net: Network, endpoints) -> set[str]:
        """The host links the network stands on: its parent (not cnet's: gc
        would never touch it anyway). Endpoints have no host side."""
        return {net.options["parent"]}

    def survey_network(self, net: Network, kernel, host_addresses) -> list[str]:
        from ..kernel import sysfs

        parent = net.options["parent"]
        link = sysfs.link(parent)
        if link is None:
            return [f"missing parent link {parent}"]
        if not link.up:
            return [f"parent link {parent} is down"]
        return []

    def repair_network(self, net: Network, kernel, undo) -> None:
        self.parent_view(net, kernel)  # cnet makes no parent: a missing one is reported, not invented

    def survey_endpoint(self, net: Network, ep: Endpoint, kernel, inside) -> list[str]:
        """What is wrong with the endpoint's link in the sandbox; without a
        handle inside (plain `cnet check`), nothing to see: it has no host side."""
        if inside is None:
            return []
        view = inside.sub_link_view(ep.ifname)
        if view is None:
            return [f"missing link {ep.ifname} in the sandbox"]
        if view["alias"] != kernel.owner.endpoint_tag(ep.sandbox, ep.network):
            return [f"incomplete link {ep.ifname} in the sandbox (its making was cut short, or it is another's)"]
        problems = []
        if view["kind"] != self.kind:
            problems.append(f"link {ep.ifname} in the sandbox is a {view['kind']} link, not {self.kind}")
        if not self.shares_parent_mac(net) and view["mac"] != ep.mac:
            problems.append(f"link {ep.ifname} in the sandbox has MAC {view['mac']}, the state {ep.mac}")
        problems += [f"missing address {a} on {ep.ifname} in the sandbox" for a in ep.addresses
                     if a not in view["addresses"]]
        if not view["up"]:
            problems.append(f"link {ep.ifname} in the sandbox is down")
        if ep.limits is not None and not problems:  # the sandbox's own qdiscs are its business otherwise
            def alias(name):
                seen = inside.link_view(name)
                return None if seen is None else seen["alias"] or ""

            index = inside.link_index(ep.ifname)
            problems += survey_limits(inside, ep.ifname, index, ep.limits, tag=kernel.owner.endpoint_tag(
                ep.sandbox, ep.network), link_alias=alias, host_side=False)
        return problems

    def repair_endpoint(self, net: Network, ep: Endpoint, sandbox_path: str, kernel, undo,
                        default_route: bool) -> None:
        """Make the endpoint again: what is left of ours goes first."""
        inside = kernel.inside(sandbox_path)
        view = inside.link_view(ep.ifname)
        if view is not None:
            if not self._ours(view, ep, kernel.owner):
                raise Conflict(f"the sandbox already has a link {ep.ifname} that is not cnet's endpoint on {net.name}")
            inside.delete_link(ep.ifname)
        unshape_endpoint(inside, ep.ifname, None, kernel.owner.group)  # an ifb left of its shaping
        self.attach(net, ep, sandbox_path, kernel, undo, default_route)

    # -- the interface, as module functions ------------------------------------------

    def interface(self) -> dict:
        """The driver interface's functions, for the driver module's globals()."""
        names = ("validate", "firewall", "check_in_state", "create", "delete", "inspect", "plan_endpoint", "attach",
                 "limit", "detach", "links", "survey_network", "repair_network", "survey_endpoint", "repair_endpoint")
        return {name: getattr(self, name) for name in names}
