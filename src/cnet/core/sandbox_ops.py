"""Operations on sandboxes and endpoints: create, attach, detach, delete, exec.

A sandbox is a name under /run/netns. Its mode says whose namespace that is:
its own (none), another sandbox's (joined: the two share one stack, and
endpoints are recorded under the stack's owner), a running process's or an
existing path (adopted: cnet never deletes that namespace), or the host's.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from .. import drivers
from ..drivers.base import add_default_routes
from ..errors import CnetError, Conflict, InvalidInput, NotFound, OperationFailed
from ..model import Endpoint, Sandbox, State, replace
from ..resolver import etc_dir
from . import routers, sandboxes
from .base import Change, CnetBase
from .limit_ops import parse_limits, plan_limits
from .port_ops import add_mappings
from .router_ops import change_routes


LOOPBACK_IFINDEX = 1  # the kernel gives lo index 1 in every network namespace


class CommandNotRunnable(CnetError):
    """`cnet exec` could not start the command: 127 not found, 126 not executable, as shells say."""


class SandboxOps(CnetBase):
    # -- create ------------------------------------------------------------

    def create_ns(self, name: str, *, join: str | None = None, pid: int | None = None,
                  netns_path: str | None = None, host: bool = False, dns=(), add_hosts=(),
                  hostname: str | None = None, network: str | None = None, ips=(),
                  mac: str | None = None, ifname: str | None = None,
                  publish=(), limits: dict | None = None) -> tuple[Sandbox, Endpoint | None, list]:
        """A sandbox, and with network= its first endpoint (ips, mac, ifname,
        limits as attach() takes them) and its published ports, in one
        transaction (what `docker run --network --publish` does, and a CNI ADD)."""
        from .. import portspec
        from . import ports

        from ..kernel import netns

        modes = [m for m, on in (("--join", join), ("--pid", pid is not None),
                                 ("--netns-path", netns_path), ("--host", host)) if on]
        if len(modes) > 1:
            raise InvalidInput(f"{' and '.join(modes)} cannot be combined: a sandbox has one mode")
        if (ips or publish or mac or ifname) and not network:
            given = "--ip" if ips else "--publish" if publish else "--mac" if mac else "--ifname"
            raise InvalidInput(f"{given} needs --network")
        parsed = parse_limits(limits, new_endpoint=True)
        if any(v is not None for v in parsed.values()) and not network:
            raise InvalidInput("bandwidth limits need --network")
        specs = [portspec.parse(p) for p in publish]
        for spec in specs:
            ports.check_host_ip(spec)
        mode = "joined" if join else "adopted" if (pid is not None or netns_path) else "host" if host else "none"
        with self._change() as c:
            sb = sandboxes.plan_sandbox(c.state, name, mode=mode, target=join, dns=dns,
                                        add_hosts=add_hosts, hostname=hostname)
            if network is not None and network not in c.state.networks:
                raise NotFound(f"network {network} not found")
            if mode == "host" and network:
                raise InvalidInput("a host-mode sandbox cannot be attached to a network")
            if mode == "adopted":
                sb = replace(sb, target=_adoptable(pid, netns_path))
            source = {"joined": lambda: netns.path_of(sb.target), "adopted": lambda: sb.target,
                      "host": lambda: "/proc/thread-self/ns/net"}.get(mode)
            if mode == "joined" and not netns.exists(sb.target):
                raise self._gone(sb.target)
            self._make_namespace(c, sb, None if source is None else source())
            # a namespace made just now has lo and nothing else: no need to ask it
            present = {"lo"} if mode == "none" else None
            ep = (self._attach(c, name, network, ips=ips, mac=mac, ifname=ifname, present=present, limits=parsed)
                  if network else None)
            mappings = []
            if specs:
                before = self._firewall_before(c)
                for spec in specs:
                    mappings += add_mappings(c, name, spec, network)
                self._sync_firewall(c, before)
            # A joined sandbox is one more name for its owner's addresses.
            changed = [e.network for e in c.state.endpoints_of_sandbox(c.state.owner(name))]
            c.refresh_hosts(changed, [name])
            if network:
                self._warn_of_foreign_drops(c)
            return sb, ep, mappings

    def _make_namespace(self, c: Change, sb: Sandbox, source: str | None) -> None:
        """sb's name under /run/netns (a new namespace, or a bind of source),
        tagged, recorded, with its resolver files; every step undone on failure."""
        from ..kernel import netns

        name = sb.name
        if self.owner.mark_netns(name):  # before the name exists: never a namespace of ours untagged
            c.undo.callback(self.owner.unmark_netns, name)
        elif os.path.lexists(netns.path_of(name)):
            raise Conflict(f"{netns.path_of(name)} was left by a cnet process that was stopped before it"
                           " recorded it; `cnet gc` removes it")
        if source is None:
            netns.create(name)
        else:
            netns.bind(name, source)
        c.undo.callback(netns.remove, name)
        c.undo.callback(c.kernel.forget, netns.path_of(name))
        if source is None:
            c.kernel.inside(netns.path_of(name)).set_up(LOOPBACK_IFINDEX)
        c.state.sandboxes[name] = sb
        c.undo.callback(self.resolver.remove_sandbox, name)
        self.resolver.write_sandbox(sb, self.config.dns)

    # -- attach / detach ---------------------------------------------------

    def attach(self, ns: str, network: str, *, ips=(), mac: str | None = None,
               ifname: str | None = None, limits: dict | None = None) -> Endpoint:
        """limits: the bandwidth limits' texts, {"ingress_rate": "10mbit", ...} (see limit_ops.py)."""
        parsed = parse_limits(limits, new_endpoint=True)
        with self._change() as c:
            self._not_a_router(c.state, ns, "attached to another network")
            ep = self._attach(c, ns, network, ips=ips, mac=mac, ifname=ifname, limits=parsed)
            c.refresh_hosts([network], [ep.sandbox])
            self._warn_of_foreign_drops(c)
            return ep

    def _attach(self, c: Change, ns: str, network: str, *, ips=(), mac=None, ifname=None,
                present: set[str] | None = None, limits: dict | None = None) -> Endpoint:
        """present: the sandbox's interface names, when known without asking
        the kernel; limits: parse_limits' numbers."""
        from ..kernel import netns

        owner = self._owner(c.state, ns)
        net = c.state.networks.get(network)
        if net is None:
            raise NotFound(f"network {network} not found")
        if c.state.sandboxes[owner].mode == "host":
            raise InvalidInput(f"sandbox {ns} is the host's own namespace and cannot be attached")
        if not netns.exists(owner):
            raise self._gone(owner)
        path = netns.path_of(owner)
        driver = drivers.get(net.driver)
        if present is None:
            present = c.kernel.inside(path).link_names()
        held = getattr(driver, "held_addresses", lambda net: set())(net)  # optional (drivers/base.py)
        if mac is None:
            mac = getattr(driver, "default_mac", lambda net, kernel: None)(net, c.kernel)  # optional, too
        ep, net = sandboxes.plan_endpoint(c.state, net, owner, ips=ips, mac=mac, ifname=ifname, present=present,
                                          held=held)
        reserve = getattr(driver, "reserve", None)  # optional: addresses unique across hosts, from a store
        if reserve is not None:
            ep = reserve(net, ep, set(ips), c.undo)
        ep = driver.plan_endpoint(c.state, net, replace(ep, limits=plan_limits(net, limits or {})), c.kernel)
        gives_default = (not net.internal and not routers.is_router(c.state, owner)
                         and sandboxes.default_route_endpoint(c.state, owner, c.state.networks) is None)
        # Routes via routers: the subnets of this network are reached directly
        # from now on (those routes go first), and its routers lead further.
        had, will_have = routers.routes_of(c.state, owner), routers.routes_of(c.state, owner, extra=ep)
        change_routes(c, owner, had - will_have, set())
        driver.attach(net, ep, path, c.kernel, c.undo, gives_default)
        change_routes(c, owner, set(), will_have - had)
        c.state.networks[network] = net  # its subnets' IPAM cursors moved
        c.state.endpoints.append(ep)
        return ep

    def detach(self, ns: str, network: str) -> None:
        with self._change() as c:
            owner = self._owner(c.state, ns)
            if network not in c.state.networks:
                raise NotFound(f"network {network} not found")
            found = [e for e in c.state.endpoints_of_sandbox(owner) if e.network == network]
            if not found:
                raise NotFound(f"sandbox {ns} is not attached to network {network}")
            self._not_a_router(c.state, ns, "detached from one of its networks")
            had = routers.routes_of(c.state, owner)
            before = self._firewall_before(c, needed=self._has_ports(c.state, owner))
            remove = self._drop_endpoint(c, found[0])
            self._sync_firewall(c, before)
            if remove():  # a router on another network may now lead to this one's subnets
                c.best_effort(f"adding the routes via routers of sandbox {owner}", change_routes, c, owner,
                              set(), routers.routes_of(c.state, owner) - had)
            c.refresh_hosts([network], [owner])

    def _drop_endpoint(self, c: Change, ep: Endpoint, *, move_routes: bool = True) -> Callable[[], bool]:
        """Take an endpoint and its mappings out of the state. Returns the kernel
        work, to be done once the firewall no longer refers to the endpoint:
        deleting cannot be undone, so it comes after every step that can fail
        and be rolled back. If the endpoint carried the sandbox's default
        routes, the next network of the sandbox gets them. The work is
        best-effort (Change.best_effort): it returns False, and puts the
        endpoint's record back, if the endpoint could not be removed."""
        from ..kernel import netns

        state = c.state
        net = state.networks[ep.network]
        was_default = sandboxes.default_route_endpoint(state, ep.sandbox, state.networks) is ep
        state.endpoints.remove(ep)
        state.ports = [p for p in state.ports if not (p.sandbox == ep.sandbox and p.network == ep.network)]
        successor = None
        if was_default and move_routes:
            successor = sandboxes.default_route_endpoint(state, ep.sandbox, state.networks)

        def remove() -> bool:
            what = f"removing endpoint {ep.sandbox}/{ep.network}" + (f" (link {ep.host_ifname})" if ep.host_ifname else "")
            if not c.best_effort(what, drivers.get(net.driver).detach, net, ep, c.kernel):
                state.endpoints.append(ep)  # still in the kernel: still recorded (without its ports)
                return False
            if successor is not None and netns.exists(ep.sandbox):
                path = netns.path_of(ep.sandbox)
                c.best_effort(f"adding the default routes of sandbox {ep.sandbox} via network {successor.network}",
                              add_default_routes, state.networks[successor.network], c.kernel.inside(path))
                c.kernel.forget(path)
            return True

        return remove

    # -- delete --------------------------------------------------------------

    def delete_ns(self, name: str, *, if_exists: bool = False, router: bool = False) -> bool:
        """Delete a sandbox: its endpoints, mappings, resolver files and name.
        A namespace that other names still use (joined, adopted) lives on.
        router: it is a router (`delete router`), whose routes go too."""
        from ..kernel import netns

        with self._change() as c:
            state = c.state
            sb = state.sandboxes.get(name)
            if sb is None:
                if if_exists:
                    c.nothing_to_do()
                    return False
                raise NotFound(f"sandbox {name} not found")
            if routers.is_router(state, name) and not router:
                raise Conflict(f"sandbox {name} is a router: cnet delete router {name}")
            withdraw = self._withdrawal(state, name) if router else None
            touched_networks, touched, removals = set(), [], []
            before = self._firewall_before(c, needed=self._has_ports(state, name))
            joiners = state.joiners(name) if sb.mode != "joined" else []
            if joiners:
                heir = joiners[0]
                state.sandboxes, state.endpoints, state.ports = _hand_over(state, sb, joiners)
                touched_networks = {e.network for e in state.endpoints_of_sandbox(heir)}
                touched = [heir]
            elif sb.mode != "joined":
                for ep in state.endpoints_of_sandbox(name):
                    touched_networks.add(ep.network)
                    removals.append(self._drop_endpoint(c, ep, move_routes=False))
                state.ports = [p for p in state.ports if p.sandbox != name]
            del state.sandboxes[name]
            self._sync_firewall(c, before)
            # From here on nothing can be rolled back: the kernel objects go,
            # each step tried whatever the one before did.
            if withdraw is not None:
                withdraw(c)
            gone = all([remove() for remove in removals])
            c.kernel.forget(netns.path_of(name))
            named = c.best_effort(f"removing {netns.path_of(name)} of sandbox {name}", netns.remove, name)
            c.best_effort(f"removing the resolver files of sandbox {name}", self.resolver.remove_sandbox, name)
            if named:
                self.owner.unmark_netns(name)  # after its name and files are gone (gc finishes a cut-short delete)
            gone &= named
            if not gone and not joiners:
                state.sandboxes[name] = sb  # something of it is still there: so is its record
            if sb.mode == "joined":
                touched = [sb.target]
                touched_networks = {e.network for e in state.endpoints_of_sandbox(sb.target)}
            c.refresh_hosts(touched_networks, touched)
            return True

    # -- reading -------------------------------------------------------------

    def inspect_ns(self, name: str) -> dict:
        """The sandbox as recorded, and what the kernel shows inside it."""
        from ..kernel import netns
        from ..kernel.handles import Kernel

        state = self.read_state()
        sb = state.sandboxes.get(name)
        if sb is None:
            raise NotFound(f"sandbox {name} not found")
        owner = state.owner(name)
        seen = None
        if netns.exists(name):
            with Kernel(self.owner) as kernel:
                inside = kernel.inside(netns.path_of(name))
                seen = {"links": [inside.link_view(n) for n in sorted(inside.link_names())],
                        "routes": inside.routes_view()}
        return {"sandbox": sb, "owner": owner, "endpoints": state.endpoints_of_sandbox(owner),
                "kernel": seen}

    def exec_ns(self, name: str, argv: list[str]) -> None:
        """Become argv, running in the sandbox. Returns only by raising."""
        from ..kernel import netns

        if not argv:
            raise InvalidInput("no command given (cnet exec NS -- COMMAND...)")
        state = self.read_state()
        sb = state.sandboxes.get(name)
        if sb is None:
            raise NotFound(f"sandbox {name} not found")
        if not netns.exists(name):
            raise self._gone(name)
        try:
            netns.exec_in(netns.path_of(name), etc_dir(name), sb.hostname, argv)
        except FileNotFoundError:
            err = CommandNotRunnable(f"{argv[0]}: command not found")
            err.exit_code = 127
            raise err from None
        except PermissionError:
            err = CommandNotRunnable(f"{argv[0]}: permission denied")
            err.exit_code = 126
            raise err from None
        except OSError as e:
            raise OperationFailed(f"cannot run {argv[0]} in sandbox {name}: {e.strerror}") from e

    # -- helpers -------------------------------------------------------------

    @staticmethod
    def _not_a_router(state: State, ns: str, what: str) -> None:
        if routers.is_router(state, ns):
            raise Conflict(f"sandbox {ns} is a router, whose networks are set when it is made: it cannot be {what}"
                           f" (cnet delete router {ns}, then create it again)")

    @staticmethod
    def _has_ports(state: State, owner: str) -> bool:
        return any(p.sandbox == owner for p in state.ports)

    @staticmethod
    def _owner(state: State, ns: str) -> str:
        if ns not in state.sandboxes:
            raise NotFound(f"sandbox {ns} not found")
        return state.owner(ns)

    @staticmethod
    def _gone(name: str) -> NotFound:
        return NotFound(f"the network namespace of sandbox {name} is gone from /run/netns "
                        f"(deleted outside cnet?); `cnet delete ns {name}` removes its record")


def _adoptable(pid: int | None, path: str | None) -> str:
    """The namespace path to adopt, checked: it exists, is a network namespace,
    and is not the host's own (that is what --host is for)."""
    from ..kernel import netns

    path = f"/proc/{pid}/ns/net" if pid is not None else path
    kind = netns.kind_of(path)
    if kind is None:
        what = f"process {pid}" if pid is not None else f"namespace path {path}"
        raise NotFound(f"{what} not found")
    if kind != "net":
        what = "" if kind in ("other", "unreadable") else f" ({kind})"
        raise InvalidInput(f"{path} is not a network namespace{what}")
    if netns.same(path, "/proc/thread-self/ns/net"):
        raise InvalidInput(f"{path} is the host's own network namespace; use --host for that")
    return path


def _hand_over(state: State, sb: Sandbox, joiners: list[str]) -> tuple[dict, list, list]:
    """The sandboxes, endpoints and port mappings of state once the owner of
    a shared stack (sb) is going: the first sandbox that joined it becomes
    the owner, with the stack's mode, endpoints and mappings. New containers
    of replaced objects: state is left as it was, and sb is still among the
    sandboxes (the caller deletes it)."""
    heir = joiners[0]
    sandboxes = dict(state.sandboxes)
    sandboxes[heir] = replace(sandboxes[heir], mode=sb.mode, target=sb.target)
    for other in joiners[1:]:
        sandboxes[other] = replace(sandboxes[other], target=heir)
    endpoints = [replace(e, sandbox=heir) if e.sandbox == sb.name else e for e in state.endpoints]
    ports = [replace(p, sandbox=heir) if p.sandbox == sb.name else p for p in state.ports]
    return sandboxes, endpoints, ports
