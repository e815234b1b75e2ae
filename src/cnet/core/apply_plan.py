"""The plan between a state and a topology (`cnet apply`): what to create,
change, replace and delete, as printed lines and as calls of the Cnet API in
dependency order. Pure.

What can change in place does: a sandbox's attachments (attach, detach,
and detach + attach for an attachment whose address, MAC or name changes)
and its published ports. Anything else that differs is replaced (deleted,
then made again): a network whose subnet, driver or options change, a
sandbox whose mode or resolver settings change, a router whose networks
change, and what stands on a replaced object with it (the routers of a
replaced network, the attachments to it, the sandboxes joined to a replaced
sandbox). Objects the file does not name are left alone, or deleted with
prune.

The calls run deletes first, from the leaves in (ports, routers,
attachments, sandboxes, networks), then creations from the roots out
(networks, sandboxes, attachments, routers, ports).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ..config import Config
from ..errors import Conflict
from ..model import Endpoint, Limits, PortMapping, State, replace
from . import ports as port_plans
from . import routers as router_plans
from .topology import (ENDPOINT_KEYS, Topology, WantedEndpoint, WantedNetwork, WantedRouter, WantedSandbox,
                       families_of, network_keys, plan_wanted, port_specs, sandbox_keys)


@dataclass(frozen=True)
class Step:
    """One call of the Cnet API: getattr(api, method)(*args, **kwargs).
    what: the object it makes or removes, as a failure names it."""

    what: str
    method: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


@dataclass
class Plan:
    lines: list[str] = field(default_factory=list)  # "+ create network front (...)", one per object
    steps: list[Step] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.steps


# Execution phases, in order; each step goes into one.
PHASES = ("unpublish", "delete router", "detach", "delete sandbox", "delete network",
          "create network", "create sandbox", "attach", "limit", "create router", "publish")


def plan(state: State, topo: Topology, config: Config | None = None, prune: bool = False) -> Plan:
    return _Planner(state, topo, config or Config(), prune).plan()


class _Planner:
    def __init__(self, state: State, topo: Topology, config: Config, prune: bool):
        self.state, self.topo, self.config, self.prune = state, topo, config, prune
        self.phases: dict[str, list[Step]] = {p: [] for p in PHASES}
        # deletes last, from the leaves in, as they run
        self.lines: dict[str, list[str]] = {g: [] for g in ("network", "sandbox", "router", "delete router",
                                                            "delete sandbox", "delete network")}

    def step(self, phase: str, what: str, method: str, *args, **kwargs) -> None:
        self.phases[phase].append(Step(what, method, args, kwargs))

    def line(self, group: str, text: str) -> None:
        self.lines[group].append(text)

    def plan(self) -> Plan:
        replaced_networks = self._networks()
        self._routers(replaced_networks)
        self._sandboxes(replaced_networks)
        steps = [s for p in PHASES for s in self.phases[p]]
        return Plan([line for group in self.lines.values() for line in group], steps)

    # -- networks --------------------------------------------------------------

    def _networks(self) -> dict[str, str]:
        """Plans the networks; returns {network replaced or deleted: why}."""
        gone = {}
        for name, wanted in self.topo.networks.items():
            existing = self.state.networks.get(name)
            if existing is None:
                self.line("network", f"+ create network {name} ({_network_summary(wanted)})")
                self._create_network(wanted)
                continue
            changes = _changes(network_keys(existing, self.config), network_keys(self._planned(wanted, existing),
                                                                                 self.config))
            if changes:
                self.line("network", f"-/+ replace network {name}: {changes}")
                self.step("delete network", f"network {name}", "delete_network", name)
                self._create_network(wanted)
                gone[name] = f"network {name} is replaced"
        for name in self.state.networks.keys() - self.topo.networks.keys():
            if self.prune:
                self.line("delete network", f"- delete network {name}")
                self.step("delete network", f"network {name}", "delete_network", name)
                gone[name] = f"network {name} is deleted"
        return gone

    def _planned(self, wanted: WantedNetwork, existing=None):
        """The network the file asks for, with what a missing subnet would be: the existing one's."""
        net = plan_wanted(State(), self.config, wanted.name, wanted.driver, wanted.request, existing)
        if existing is not None and not wanted.request["subnets"]:
            net = replace(net, subnets=existing.subnets)
        return net

    def _create_network(self, wanted: WantedNetwork) -> None:
        self.step("create network", f"network {wanted.name}", "create_network", wanted.driver, wanted.name,
                  **wanted.request)

    # -- routers ---------------------------------------------------------------

    def _routers(self, gone_networks: dict[str, str]) -> None:
        state, topo = self.state, self.topo
        existing = set(router_plans.routers(state))
        for name, wanted in topo.routers.items():
            if name not in state.sandboxes:
                self.line("router", f"+ create router {name} ({', '.join(wanted.network_arguments())})")
            else:
                why = (f"sandbox {name} becomes a router" if name not in existing
                       else self._router_changes(name, wanted, gone_networks))
                if not why:
                    continue
                self.line("router", f"-/+ replace router {name}: {why}")
                if name in existing:  # a sandbox of that name is deleted with the sandboxes
                    self.step("delete router", f"router {name}", "delete_router", name)
            self.step("create router", f"router {name}", "create_router", name, wanted.network_arguments())
        for name in sorted(existing - topo.routers.keys() - topo.sandboxes.keys()):
            on = [e.network for e in router_plans.networks_of(state, name)]
            if self.prune:
                self.line("delete router", f"- delete router {name}")
                self.step("delete router", f"router {name}", "delete_router", name)
            elif any(n in gone_networks for n in on):
                self._left_on(f"router {name}", [gone_networks[n] for n in on if n in gone_networks][0])

    def _router_changes(self, name: str, wanted: WantedRouter, gone_networks: dict[str, str]) -> str:
        have = router_plans.networks_of(self.state, name)
        by_network = {e.network: e for e in have}
        if {n for n, _ in wanted.networks} != set(by_network):
            return f"networks {', '.join(sorted(by_network))} -> {', '.join(sorted(n for n, _ in wanted.networks))}"
        for network, ip in wanted.networks:
            if ip and not ENDPOINT_KEYS["ip"].holds(by_network[network], (ip,)):
                addresses = ", ".join(by_network[network].addresses)
                return f"address on {network} {addresses} -> {ip}"
            if network in gone_networks:
                return gone_networks[network]
        return ""

    @staticmethod
    def _left_on(what: str, why: str) -> None:
        raise Conflict(f"{why}, but {what}, which the file does not name, is on it:"
                       " name it in the file, or delete it (--prune deletes what the file does not name)")

    # -- sandboxes, their attachments and ports -----------------------------------

    def _sandboxes(self, gone_networks: dict[str, str]) -> None:
        state, topo = self.state, self.topo
        # What is made again: sandboxes that differ, and those joined to one made again.
        remade: dict[str, str] = {}
        for name, wanted in topo.sandboxes.items():
            sb = state.sandboxes.get(name)
            if sb is None:
                continue
            if sb.mode == router_plans.MODE:
                remade[name] = f"router {name} becomes a sandbox"
                continue
            changes = _changes(sandbox_keys(sb), self._wanted_keys(wanted))
            if changes:
                remade[name] = changes
        for name, sb in state.sandboxes.items():  # a name that becomes a router goes as a sandbox
            if name in topo.routers and sb.mode != router_plans.MODE:
                self.step("delete sandbox", f"sandbox {name}", "delete_ns", name)
        grew = True
        while grew:  # the joiners of a sandbox made again are made again, and theirs
            grew = False
            for name, sb in state.sandboxes.items():
                if sb.mode == "joined" and sb.target in remade and name not in remade:
                    if name not in topo.sandboxes:
                        if self.prune:
                            continue  # deleted below anyway
                        self._left_on(f"sandbox {name} (joined to it)", f"sandbox {sb.target} is replaced")
                    remade[name] = f"sandbox {sb.target} it joins is replaced"
                    grew = True
        # Deletes: joiners first, so that no stack is handed over to a joiner (delete_ns).
        deleted = [n for n, sb in state.sandboxes.items()
                   if sb.mode != router_plans.MODE and n not in topo.sandboxes and n not in topo.routers
                   and self.prune]
        for name in sorted(set(deleted) | remade.keys(),
                           key=lambda n: (state.sandboxes[n].mode != "joined", n)):
            if state.sandboxes[name].mode != router_plans.MODE:
                self.step("delete sandbox", f"sandbox {name}", "delete_ns", name)
            else:
                self.step("delete router", f"router {name}", "delete_router", name)
        for name in sorted(deleted):
            self.line("delete sandbox", f"- delete sandbox {name}")
        for name in sorted(state.sandboxes.keys() - topo.sandboxes.keys() - topo.routers.keys() - set(deleted)):
            if state.sandboxes[name].mode == router_plans.MODE:
                continue  # a router: _routers saw to it
            for ep in state.endpoints_of_sandbox(name):
                if ep.network in gone_networks:
                    self._left_on(f"sandbox {name}", gone_networks[ep.network])
        # Creations, owners before the sandboxes that join them.
        order = {name: i for i, name in enumerate(topo.sandboxes)}
        for name in sorted(topo.sandboxes, key=lambda n: (self._depth(n), order[n])):
            wanted = topo.sandboxes[name]
            if name not in state.sandboxes or name in remade:
                folded = self._create_sandbox(wanted)
                for ep in wanted.endpoints[1 if folded else 0:]:
                    self._attach(wanted, ep)
                specs = self._ports(wanted, [], folded)
                summary = _sandbox_summary(wanted, specs)
                self.line("sandbox", f"-/+ replace sandbox {name}: {remade[name]}" if name in remade
                          else f"+ create sandbox {name}" + (f" ({summary})" if summary else ""))
            elif wanted.mode != "joined":
                self._change_sandbox(wanted, gone_networks)

    def _create_sandbox(self, wanted: WantedSandbox) -> bool:
        """The step that makes a sandbox. Like `cnet create ns --network
        --publish`, it takes the first attachment and the ports published
        on it too, in one transaction instead of three (apply of many
        sandboxes is then as quick as `cnet batch` of the same). True when
        it took them."""
        arguments = wanted.create_arguments()
        first = wanted.endpoints[0] if wanted.endpoints and wanted.mode in ("none", "adopted") else None
        if first is None or self._internal(first.network):
            self.step("create sandbox", f"sandbox {wanted.name}", "create_ns", wanted.name, **arguments)
            return False
        attach = first.attach_arguments()
        publish = [*wanted.publish, *first.publish]  # a port without a network goes on the first one
        self.step("create sandbox", f"sandbox {wanted.name}", "create_ns", wanted.name, **arguments,
                  network=first.network, publish=publish, **attach)
        return True

    def _internal(self, network: str) -> bool:
        wanted = self.topo.networks.get(network)
        if wanted is not None:
            return bool(wanted.request.get("internal"))
        have = self.state.networks.get(network)
        return have is not None and have.internal

    def _wanted_keys(self, wanted: WantedSandbox) -> dict:
        keys = sandbox_keys(wanted)
        if wanted.mode == "joined":
            keys["join"] = self.topo.owner(wanted.name)  # the state records the stack's owner
        return keys

    def _depth(self, name: str) -> int:
        depth, sb = 0, self.topo.sandboxes[name]
        while sb.mode == "joined":
            depth, sb = depth + 1, self.topo.sandboxes[sb.target]
        return depth

    def _attach(self, sandbox: WantedSandbox, ep: WantedEndpoint) -> None:
        self.step("attach", f"endpoint {sandbox.name}/{ep.network}", "attach", sandbox.name, ep.network,
                  **ep.attach_arguments())

    def _change_sandbox(self, wanted: WantedSandbox, gone_networks: dict[str, str]) -> None:
        """A sandbox kept: its attachments and ports follow the file."""
        name, changes = wanted.name, []
        have = {e.network: e for e in self.state.endpoints_of_sandbox(name)}
        want = {e.network: e for e in wanted.endpoints}
        kept = []
        for network, ep in have.items():
            if network not in want:
                changes.append(f"detach {network}")
                self.step("detach", f"endpoint {name}/{network}", "detach", name, network)
        for network, w in want.items():
            ep = have.get(network)
            if ep is None:
                changes.append(f"attach {network}" + _endpoint_summary(w))
            else:
                net = self.state.networks[network]
                why = gone_networks.get(network) or _endpoint_changes(ep, w, net)
                if not why:
                    kept.append(ep)
                    self._limit(name, ep, w, net, changes)
                    continue
                changes.append(f"attach {network} again ({why})")
                self.step("detach", f"endpoint {name}/{network}", "detach", name, network)
            self._attach(wanted, w)
        changes += self._ports(wanted, kept)
        if changes:
            self.line("sandbox", f"~ change sandbox {name}: {'; '.join(changes)}")

    def _limit(self, name: str, ep: Endpoint, wanted: WantedEndpoint, net, changes: list[str]) -> None:
        """An endpoint kept gets the limits of the file in place (`cnet limit`): a direction
        the file leaves out is cleared, as all of them are by --clear first."""
        limits = _limits_of(wanted, net)
        if limits == ep.limits:
            return
        have = ep.limits or Limits()
        what = f"endpoint {name}/{ep.network}"
        gone = [d for d in ("ingress", "egress")
                if getattr(have, f"{d}_rate") is not None and getattr(limits, f"{d}_rate", None) is None]
        if gone:
            self.step("limit", what, "limit", name, ep.network, clear=True)
        if limits is not None:
            self.step("limit", what, "limit", name, ep.network, **wanted.limit_values())
        with_keys = {k: v for k, v in wanted.keys.items() if ENDPOINT_KEYS[k].holds is None}
        changes.append(f"limit {ep.network}: {_changes(_limit_keys(ep, net), with_keys) or 'bursts'}")

    def _ports(self, wanted: WantedSandbox, kept: list[Endpoint], folded: bool = False) -> list[str]:
        """Publish what the file asks for and is not there, on the endpoints
        kept; unpublish what is there and not asked for. Returns the changes.
        folded: the sandbox's creation publishes the ports without a network
        and those of its first attachment (_create_sandbox): named, not stepped."""
        from .. import portspec

        name = wanted.name
        kept_networks = {e.network for e in kept}
        there = [p for p in self.state.ports if p.sandbox == name and p.network in kept_networks]
        used: set[int] = set()
        changes = []
        asked = [(text, None) for text in wanted.publish] + [(text, e.network) for e in wanted.endpoints
                                                            for text in e.publish]
        if folded:
            first = wanted.endpoints[0].network
            changes += [f"publish {text}" + (f" on {network}" if network else "")
                        for text, network in asked if network in (None, first)]
            asked = [(text, network) for text, network in asked if network not in (None, first)]
        for text, network in asked:
            spec = portspec.parse(text)
            found = [i for i, p in enumerate(there) if _publishes(p, spec, network)]
            if found:
                used.update(found)
                continue
            changes.append(f"publish {text}" + (f" on {network}" if network else ""))
            self.step("publish", f"port {name} {text}", "publish", name, text, network=network)
        for ep in kept:
            unused = [p for i, p in enumerate(there) if i not in used and p.network == ep.network]
            for text, group in port_specs(unused, families_of(ep)):
                changes.append(f"unpublish {text}")
                # each mapping named exactly: another one of that port may be wanted still
                for p in group:
                    self.step("unpublish", f"port {name} {text}", "unpublish", name, _mapping_spec(p))
        return changes


# -- comparing -----------------------------------------------------------------

def _shown(value) -> str:
    """A key's value as a plan line shows it."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _changes(have: dict, want: dict) -> str:
    """What differs between two sets of file keys: "subnet 10.1.0.0/24 -> 10.2.0.0/24, no-icc true -> unset"."""
    keys = [*have, *(k for k in want if k not in have)]
    return ", ".join(f"{k} {_shown(have.get(k))} -> {_shown(want.get(k))}" for k in keys
                     if _normal(have.get(k)) != _normal(want.get(k)))


def _normal(value):
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    if isinstance(value, str):
        try:
            return str(ipaddress.ip_interface(value)) if "/" in value else str(ipaddress.ip_address(value))
        except ValueError:
            return value
    return value


def _endpoint_changes(ep: Endpoint, wanted: WantedEndpoint, net) -> str:
    """What differs in the keys that need the endpoint made again (the limits change in place)."""
    return ", ".join(f"{key} {_shown(ENDPOINT_KEYS[key].value_of(ep, net) or ep.ifname)} -> {_shown(value)}"
                     for key, value in wanted.keys.items()
                     if ENDPOINT_KEYS[key].holds is not None and not ENDPOINT_KEYS[key].holds(ep, value))


def _limits_of(wanted: WantedEndpoint, net):
    """The model.Limits an endpoint on net gets from the file's limit keys (None: no limits)."""
    from .. import bandwidth

    return bandwidth.plan(bandwidth.options(wanted.limit_values()), net.mtu)


def _limit_keys(ep: Endpoint, net) -> dict:
    return {key: spec.value_of(ep, net) for key, spec in ENDPOINT_KEYS.items() if spec.holds is None
            and spec.value_of(ep, net) is not None}


def _publishes(p: PortMapping, spec, network: str | None) -> bool:
    """The mapping is one that publishing spec (on network, or the default one) makes."""
    if (p.protocol, p.port, p.count) != (spec.protocol, spec.port, spec.count):
        return False
    if network is not None and p.network != network:
        return False
    if spec.host_port is not None and p.host_port != spec.host_port:
        return False
    if spec.host_ip is None:
        return p.host_ip in port_plans.ANY.values()
    return ipaddress.ip_address(p.host_ip) == ipaddress.ip_address(spec.host_ip)


def _mapping_spec(p: PortMapping) -> str:
    """The spec that names exactly this mapping (for unpublish)."""
    def ports(first: int) -> str:
        return f"{first}-{first + p.count - 1}" if p.count > 1 else str(first)

    host = f"[{p.host_ip}]" if ":" in p.host_ip else p.host_ip
    return f"{host}:{ports(p.host_port)}:{ports(p.port)}/{p.protocol}"


# -- lines -----------------------------------------------------------------------

def _network_summary(wanted: WantedNetwork) -> str:
    return " ".join([wanted.driver, *(wanted.request["subnets"] or ["(a subnet from the pools)"])])


def _endpoint_summary(ep: WantedEndpoint) -> str:
    ips = ep.keys.get("ip", ())
    return f" ({', '.join(ips)})" if ips else ""


def _sandbox_summary(wanted: WantedSandbox, ports: list[str]) -> str:
    parts = [f"{k} {', '.join(v) if isinstance(v, list) else v}" for k, v in sandbox_keys(wanted).items()]
    if wanted.endpoints:
        parts.append("on " + ", ".join(e.network + _endpoint_summary(e) for e in wanted.endpoints))
    parts += ports
    return "; ".join(parts)
