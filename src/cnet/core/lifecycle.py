"""The state is the truth: `cnet check`, `cnet restore` and `cnet gc`.

check compares the kernel with the state and changes nothing. restore makes
the kernel hold every object the state lists (after a reboot, a firewall
reload, a process killed half-way); it never changes the state, so running it
again finds nothing to do. gc removes the kernel objects that carry this
state file's tags (owner.py) but that the state does not list: what a killed
process left. Neither ever touches an object without cnet's tag.

Looking is cheap where it can be: host links are read from /sys/class/net,
namespaces by a stat each, and a bridge or an endpoint's host link carries
its tag only once it is complete (drivers set it last), so check needs no
netlink at all (nor pyroute2's ~130 ms import); `check --deep` and restore
also ask netlink for the addresses and look inside every sandbox, and so does
gc, for the links a killed attach left inside one (macvlan and ipvlan links
are born there, in our link group).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .. import drivers
from ..errors import CnetError, OperationFailed
from ..model import State
from . import routers
from .base import CnetBase, Undo, firewall_needs


@dataclass(frozen=True)
class Difference:
    """One way the kernel differs from the state. record: the state's record
    it concerns ("sandbox web", "endpoint web/br0"), "" for an object the state
    does not list (gc's to remove), or for the firewall as a whole."""

    kind: str  # netns | network | endpoint | firewall | sysctl | file | router | route | link | sandbox-link
    # name: what the object is called; for a sandbox-link (a link inside a sandbox), "SANDBOX/LINK"
    name: str
    problem: str  # a phrase: "missing link cn1a2b3c4d5e"
    record: str = ""
    fixable: bool = True  # False: restore reports it and leaves it to the user

    @property
    def text(self) -> str:
        return f"{self.problem} ({self.record})" if self.record else self.problem

    def to_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "problem": self.problem, "record": self.record,
                "fixable": self.fixable, "text": self.text}


class LifecycleOps(CnetBase):
    # -- check ---------------------------------------------------------------

    def check(self, *, deep: bool = False) -> tuple[list[Difference], list[str]]:
        """(differences, health warnings). No lock: nothing is changed, and
        the state file is replaced atomically."""
        from ..kernel.handles import Kernel

        state = self.read_state()
        _can_look(deep)
        with Kernel(self.owner) as kernel:
            found = self._missing(state, kernel, deep) + self._extra(state, inside=kernel if deep else None)
            found += [Difference("firewall", "", line) for line in self._firewall_differences(state)]
        from . import health

        return found, health.warnings(state, self.config)

    def foreign_rules(self) -> list[str]:
        """What cnet holds in firewalls it does not own (firewall/hostpolicy.py), a line each."""
        from .. import firewall

        return firewall.foreign_rules(self.owner)

    def _missing(self, state: State, kernel, deep: bool) -> list[Difference]:
        """The state's records whose kernel objects are missing or wrong."""
        from ..kernel import netns, sysctl

        found = []
        for sb in state.sandboxes.values():
            problem = self._sandbox_problem(state, sb)
            if problem:
                found.append(Difference("netns", sb.name, problem, f"sandbox {sb.name}", sb.mode != "adopted"))
            elif sb.mode != "host" and not self._resolver_files_present(sb.name):
                found.append(Difference("file", sb.name, f"missing resolver files in /etc/netns/{sb.name}",
                                        f"sandbox {sb.name}"))
        addresses = _host_addresses(kernel) if deep else None  # None: no netlink, nor pyroute2's import
        for net in state.networks.values():
            driver = drivers.get(net.driver)
            for problem in driver.survey_network(net, kernel, addresses):
                found.append(Difference("network", net.name, problem, f"network {net.name}"))
            unused = getattr(driver, "survey_unused", None)  # optional (drivers/base.py)
            if unused is not None and not state.endpoints_of_network(net.name):
                found += [Difference("network", net.name, problem, f"network {net.name}", fixable=False)
                          for problem in unused(net, kernel)]
        for ep in state.endpoints:
            net = state.networks[ep.network]
            record = f"endpoint {ep.sandbox}/{ep.network}"
            if not netns.exists(ep.sandbox):
                found.append(Difference("endpoint", record, f"missing link {ep.host_ifname or ep.ifname}:"
                                        " the sandbox's namespace is gone", record))
                continue
            inside = kernel.inside(netns.path_of(ep.sandbox)) if deep else None
            for problem in drivers.get(net.driver).survey_endpoint(net, ep, kernel, inside):
                found.append(Difference("endpoint", record, problem, record))
        for key in sorted(self._sysctls_needed(state)):
            if sysctl.read(key) != "1":
                found.append(Difference("sysctl", key, f"sysctl {key} is not 1", "a network needs it"))
        if deep:
            found += self._router_differences(state, kernel)
        kernel.close_inside()
        return found

    @staticmethod
    def _router_differences(state: State, kernel) -> list[Difference]:
        """--deep: routers with forwarding off, sandboxes without the routes routers give them."""
        from ..kernel import netns, sysctl
        from .router_ops import forwarding_keys

        found = []
        for sb in state.sandboxes.values():
            if sb.mode == "joined" or not netns.exists(sb.name):
                continue  # a namespace that is gone is reported already
            if sb.mode == "router":
                with netns.entered(netns.path_of(sb.name)):
                    off = [k for k in forwarding_keys(routers.networks_of(state, sb.name)) if sysctl.read(k) != "1"]
                found += [Difference("router", sb.name, f"sysctl {k} is not 1 in router {sb.name}",
                                     f"router {sb.name}") for k in off]
                continue
            wanted = routers.routes_of(state, sb.name)
            if wanted:
                missing = wanted - _routes_via(kernel.inside(netns.path_of(sb.name)))
                found += [Difference("route", sb.name, f"missing route {dst} via {via} in sandbox {sb.name}",
                                     "a router on its network") for dst, via in sorted(missing)]
        return found

    @staticmethod
    def _sandbox_problem(state: State, sb) -> str | None:
        from ..kernel import netns

        if netns.exists(sb.name):
            return None
        where = netns.path_of(sb.name)
        if sb.mode == "adopted":
            return f"missing {where}: the namespace it adopted ({sb.target}) is gone; cnet cannot make it again"
        if sb.mode == "joined" and not netns.exists(sb.target):
            return f"missing {where} (joined to {sb.target}, whose namespace is missing too)"
        return f"missing netns {where}"

    @staticmethod
    def _resolver_files_present(name: str) -> bool:
        import os

        from ..resolver import etc_dir

        return all(os.path.lexists(os.path.join(etc_dir(name), f)) for f in ("resolv.conf", "hosts"))

    @staticmethod
    def _sysctls_needed(state: State) -> set[str]:
        needed = set()
        for net in state.networks.values():
            needed |= firewall_needs(net).sysctls
        return needed

    def _extra(self, state: State, locked: bool = False, inside=None) -> list[Difference]:
        """Kernel objects with this state file's tags that the state does not list.
        locked: the caller holds the state lock (no save is in progress).
        inside: a Kernel to look inside the sandboxes with (check --deep, gc)."""
        from .. import state as statefile
        from ..kernel import sysfs

        found = []
        expected = set()
        for net in state.networks.values():
            expected |= drivers.get(net.driver).links(net, state.endpoints_of_network(net.name))
        recorded = {(e.sandbox, e.network) for e in state.endpoints}
        for name in sorted(sysfs.link_names() - expected):
            link = sysfs.link(name)
            if link is not None and self.owner.owns_link(link.alias, link.group):
                tag = self.owner.read_tag(link.alias)
                if tag and tag[0] == "device" and tag[1:] in recorded:
                    continue  # a hostdev link out of its sandbox: its endpoint's survey says so, restore moves it
                what = " ".join(tag or ("link cut short",))
                found.append(Difference("link", name, f"extra link {name} (tagged by cnet: {what}; not in the state)"))
        if inside is not None:
            found += self._extra_in_sandboxes(state, inside)
        for name in sorted(self.owner.marked_netns() - state.sandboxes.keys()):
            found.append(Difference("netns", name, f"extra netns {name} (tagged by cnet, not in the state)"))
        for path in statefile.stale_temp_files(self.store.path, locked):
            found.append(Difference("file", path, f"stale temporary file {path}"))
        return found

    def _extra_in_sandboxes(self, state: State, kernel) -> list[Difference]:
        """Links with our tags inside the state's sandboxes that none of their
        endpoints names: a macvlan or ipvlan link (born inside the sandbox, in
        our link group), its shaping ifb, or a link cnet moved there (hostdev),
        left by an attach killed before it saved the state."""
        from ..drivers.base import ifb_name
        from ..kernel import netns

        found = []
        for sb in state.sandboxes.values():
            if sb.mode in ("host", "joined") or not netns.exists(sb.name):
                continue  # a host sandbox has no namespace of its own; a joined one is its target's
            names = {ep.ifname for ep in state.endpoints_of_sandbox(sb.name)}
            names |= {ifb_name(name) for name in names}
            path = netns.path_of(sb.name)
            tags = kernel.inside(path).link_tags()
            kernel.forget(path)  # one handle open at a time: a socket each, and 1,000 sandboxes
            for name, (alias, group) in sorted(tags.items()):
                if name in names or not self.owner.owns_link(alias, group):
                    continue
                what = " ".join(self.owner.read_tag(alias) or ("link cut short",))
                found.append(Difference("sandbox-link", f"{sb.name}/{name}", f"extra link {name} in sandbox"
                                        f" {sb.name} (tagged by cnet: {what}; not in the state)"))
        return found

    def _firewall_backend(self, state: State) -> str:
        return state.host.get("firewall") or self.config.firewall

    def _firewall_differences(self, state: State) -> list[str]:
        from .. import firewall

        return firewall.differences(self._firewall_backend(state), self._firewall_inputs(state).plan(), self.owner)

    # -- restore ---------------------------------------------------------------

    def restore(self) -> tuple[list[str], list[str]]:
        """Make the kernel hold what the state lists. Returns (what was done, a
        line each; what could not be, a line each). Each object is repaired
        in a transaction of its own: one that fails is rolled back, reported,
        and the others are still repaired."""
        from ..kernel.handles import Kernel

        done, failed = [], []
        with self.store.locked(), Kernel(self.owner) as kernel:
            state = self.store.load()
            for step, what in self._restore_steps(state, kernel):
                try:
                    with Undo(safe_points=False) as undo:
                        step(undo)
                        undo.pop_all()
                except _NothingToDo:
                    continue
                except CnetError as e:
                    failed.append(f"{what}: {e}")
                else:
                    done.append(what)
                finally:
                    kernel.close_inside()
            for d in self._missing(state, kernel, deep=False):
                if not d.fixable:
                    failed.append(d.text)
        return done, failed

    def _restore_steps(self, state: State, kernel) -> list[tuple[Callable, str]]:
        """(step(undo), what it does) for everything missing, in the order they
        depend on each other: namespaces, networks, endpoints, then the
        firewall, the sysctls and the resolver files."""
        from ..kernel import netns

        steps = []
        owners_first = sorted(state.sandboxes.values(), key=lambda sb: sb.mode == "joined")
        for sb in owners_first:
            if self._sandbox_problem(state, sb) and sb.mode != "adopted":
                steps.append((lambda undo, sb=sb: self._make_netns(state, sb, kernel, undo), f"made netns {sb.name}"))
        addresses = _host_addresses(kernel)
        for net in state.networks.values():
            driver = drivers.get(net.driver)
            if driver.survey_network(net, kernel, addresses):
                steps.append((lambda undo, net=net, driver=driver: driver.repair_network(net, kernel, undo),
                              f"made network {net.name} as the state has it"))
        from .sandboxes import default_route_endpoint

        for ep in state.endpoints:
            net = state.networks[ep.network]
            driver = drivers.get(net.driver)
            gives_default = default_route_endpoint(state, ep.sandbox, state.networks) is ep

            def repair(undo, ep=ep, net=net, driver=driver, gives_default=gives_default):
                path = netns.path_of(ep.sandbox)
                if netns.exists(ep.sandbox) and not driver.survey_endpoint(net, ep, kernel, kernel.inside(path)):
                    raise _NothingToDo
                driver.repair_endpoint(net, ep, path, kernel, undo, gives_default)

            steps.append((repair, f"made endpoint {ep.sandbox}/{ep.network} ({', '.join(ep.addresses)})"))
        for sb in owners_first:
            if sb.mode == "router":
                steps.append((lambda undo, sb=sb: self._restore_forwarding(state, sb.name),
                              f"turned forwarding on in router {sb.name}"))
            elif sb.mode != "joined" and routers.routes_of(state, sb.name):
                steps.append((lambda undo, sb=sb: self._restore_routes(state, sb.name, kernel),
                              f"added the routes via routers of sandbox {sb.name}"))
        steps.append((lambda undo: self._restore_firewall(state), "made the firewall as the state has it"))
        steps.append((lambda undo: self._restore_sysctls(state), "set the sysctls the networks need"))
        for sb in state.sandboxes.values():
            if sb.mode != "host":
                steps.append((lambda undo, sb=sb: self._restore_resolver_files(state, sb),
                              f"wrote /etc/netns/{sb.name}"))
        return steps

    def _make_netns(self, state: State, sb, kernel, undo) -> None:
        from ..kernel import netns
        from .sandbox_ops import LOOPBACK_IFINDEX

        self.owner.mark_netns(sb.name)
        netns.remove(sb.name)  # a stale name file (no namespace on it) would block the new one
        if sb.mode in ("none", "router"):
            netns.create(sb.name)
            kernel.inside(netns.path_of(sb.name)).set_up(LOOPBACK_IFINDEX)
            if sb.mode == "router":
                from .router_ops import prepare_router_namespace

                prepare_router_namespace(sb.name)
        elif sb.mode == "joined":
            netns.bind(sb.name, netns.path_of(sb.target))
        else:  # host
            netns.bind(sb.name, "/proc/thread-self/ns/net")
        undo.callback(netns.remove, sb.name)

    @staticmethod
    def _restore_forwarding(state: State, name: str) -> None:
        from ..kernel import netns, sysctl
        from .router_ops import forwarding_keys

        keys = forwarding_keys(routers.networks_of(state, name))
        with netns.entered(netns.path_of(name)):
            wrong = [key for key in keys if sysctl.read(key) != "1"]
            if not wrong:
                raise _NothingToDo
            for key in wrong:
                sysctl.write(key, "1")

    @staticmethod
    def _restore_routes(state: State, name: str, kernel) -> None:
        from ..kernel import netns

        inside = kernel.inside(netns.path_of(name))
        missing = routers.routes_of(state, name) - _routes_via(inside)
        if not missing:
            raise _NothingToDo
        for dst, via in sorted(missing):
            inside.add_route(dst, via)

    def _restore_firewall(self, state: State) -> None:
        from .. import firewall

        if not self._firewall_differences(state):
            raise _NothingToDo
        name = self._firewall_backend(state)
        self.warnings += firewall.sync(name, None, None, self._firewall_inputs(state).plan(), self.owner)

    def _restore_sysctls(self, state: State) -> None:
        from ..kernel import sysctl

        wrong = [key for key in sorted(self._sysctls_needed(state)) if sysctl.read(key) != "1"]
        if not wrong:
            raise _NothingToDo
        for key in wrong:
            sysctl.write(key, "1")

    def _restore_resolver_files(self, state: State, sb) -> None:
        if self._resolver_files_present(sb.name):
            raise _NothingToDo
        self.resolver.write_sandbox(sb, self.config.dns)
        networks = {e.network for e in state.endpoints_of_sandbox(state.owner(sb.name))}
        self.resolver.networks_changed(state, networks, [sb.name])

    # -- gc --------------------------------------------------------------------

    def gc(self, *, dry_run: bool = False) -> list[str]:
        """Remove what carries this state file's tags and the state does not
        list; returns what was (or, dry_run, would be) removed, a line each."""
        import os

        from .. import firewall
        from ..kernel import netns, sysfs
        from ..kernel.handles import Kernel

        removed = []
        with self.store.locked(), Kernel(self.owner) as kernel:
            state = self.store.load()
            extra = self._extra(state, locked=True, inside=kernel)
            firewall_extra = [line for line in self._firewall_differences(state)
                              if "not in the state" in line or "extra" in line]
            in_store = self._stray_store_records(state, dry_run)
            hostdev = drivers.get("hostdev")
            # A link cnet moved (hostdev) is the host's, not cnet's to delete: gc gives it back, and says so.
            held = "would remove: cnet's hold on link {}, to be given back to the host {}" if dry_run else \
                "removed: cnet's hold on link {}, given back to the host {}"
            for d in extra:
                link = sysfs.link(d.name) if d.kind == "link" else None
                moved = None if link is None else self.owner.read_device_tag(link.alias)
                if moved is not None:
                    back = moved[2].name if dry_run else hostdev.give_back_orphan(kernel, d.name)
                    removed.append(held.format(d.name, f"as {back}"))
                    continue
                if d.kind == "netns" and netns.exists(d.name):
                    path = netns.path_of(d.name)
                    names = hostdev.held_in(kernel, path) if dry_run else hostdev.give_back_all(kernel, path)
                    removed += [held.format(name, f"from netns {d.name}") for name in names]
                if d.kind == "sandbox-link":
                    removed += self._remove_sandbox_link(kernel, d, dry_run, held)
                    continue
                if dry_run:
                    removed.append(f"would remove: {d.problem}")
                    continue
                if d.kind == "link":
                    kernel.netlink.delete_link(d.name)
                elif d.kind == "netns":
                    kernel.forget(netns.path_of(d.name))
                    netns.remove(d.name)
                    self.resolver.remove_sandbox(d.name)
                    self.owner.unmark_netns(d.name)
                else:  # a temporary file
                    os.unlink(d.name)
                removed.append(f"removed: {d.problem}")
            if dry_run:
                return removed + [f"would remove: {x}" for x in firewall_extra] + in_store
            if firewall_extra:
                name = self._firewall_backend(state)
                self.warnings += firewall.sync(name, None, None, self._firewall_inputs(state).plan(), self.owner)
                removed += [f"removed: {x}" for x in firewall_extra]
        return removed + in_store

    @staticmethod
    def _remove_sandbox_link(kernel, d: Difference, dry_run: bool, held: str) -> list[str]:
        """gc of an extra link inside a sandbox the state lists: one cnet moved
        there (hostdev) goes back to the host, one cnet made is deleted."""
        from ..kernel import netns

        sandbox, name = d.name.split("/")
        path, hostdev = netns.path_of(sandbox), drivers.get("hostdev")
        moved = hostdev.held_in(kernel, path, frozenset([name]))
        if moved:
            if not dry_run:
                hostdev.give_back_all(kernel, path, frozenset([name]))
            return [held.format(host_name, f"from sandbox {sandbox}") for host_name in moved]
        if dry_run:
            return [f"would remove: {d.problem}"]
        kernel.inside(path).delete_link(name)
        return [f"removed: {d.problem}"]

    def _stray_store_records(self, state: State, dry_run: bool) -> list[str]:
        """gc of the records this host holds in a store (an overlay's addresses)
        that the state does not list: what a killed attach left there. A store
        that cannot be reached is a warning: the kernel's part is still done."""
        lines = []
        for net in state.networks.values():
            stray = getattr(drivers.get(net.driver), "stray_records", None)  # optional (drivers/base.py)
            if stray is None:
                continue
            try:
                for what, release in stray(net, state.endpoints_of_network(net.name)):
                    if not dry_run:
                        release()
                    lines.append(f"{'would remove' if dry_run else 'removed'}: {what}")
            except OperationFailed as e:
                self.warnings.append(f"records of network {net.name} in its store not checked: {e}")
        return lines


def _can_look(deep: bool) -> None:
    """check reads the firewall (CAP_NET_ADMIN) and with --deep enters every
    sandbox (CAP_SYS_ADMIN); without them each read is refused, and a refusal
    must not pass for an object that is missing, nor for one in sync."""
    from ..kernel import privilege

    needs = {"CAP_NET_ADMIN": "read the firewall", "CAP_SYS_ADMIN": "enter the sandboxes (--deep)"}
    lacking = privilege.lacking(*(needs if deep else ["CAP_NET_ADMIN"]))
    if lacking:
        raise OperationFailed(f"cnet check cannot {' or '.join(needs[c] for c in lacking)} without"
                              f" {' and '.join(lacking)}: nothing was compared (run it as root)")


class _NothingToDo(Exception):
    """A restore step found its object as the state has it."""


def _routes_via(inside) -> set[tuple[str, str]]:
    """{(destination, gateway)} of the routes via a gateway in a namespace."""
    return {(words[0], words[2]) for words in map(str.split, inside.routes_view())
            if len(words) > 2 and words[1] == "via"}


def _host_addresses(kernel) -> Callable[[str], list[str]]:
    """name -> the addresses on that host link (one netlink request per link asked about)."""
    def addresses(name: str) -> list[str]:
        view = kernel.netlink.link_view(name)
        return view["addresses"] if view else []
    return addresses
