"""Declarative topologies: the file `cnet apply` reads and `cnet export` writes. Pure.

A topology names networks, sandboxes (with their attachments and published
ports) and routers. Its keys are the CLI's own option names without `--`
(`cnet create bridge front --subnet X --no-icc` is `front: {subnet: X,
no-icc: true}`), so a script and a file read alike:

    version: 1
    networks:
      front: {subnet: 172.30.0.0/24}
    sandboxes:
      web: {networks: {front: {ip: 172.30.0.10}}, publish: ["8080:80"]}
      side: {join: web}
    routers:
      r1: {networks: [front, "back:10.31.0.254"]}

load() checks a whole file before anything is done: every error names the
line and the key. What a driver's networks take is one entry of
DRIVER_FORMATS, what an attachment takes one entry of ENDPOINT_KEYS each.
export() turns a state into the same document, which plans nothing.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import yaml

from ..config import Config
from ..errors import CnetError, InvalidInput
from ..model import Endpoint, Network, State
from . import networks as network_plans
from . import ports as port_plans
from . import routers as router_plans
from . import sandboxes as sandbox_plans

VERSION = 1

# The kinds of value a key takes. STR is a scalar's text as written (so that
# 8080:80 or 00:11:22:33:44:55 stay strings, not YAML 1.1's base-60 numbers).
STR, INT, BOOL, STRS = "a string", "an integer", "true or false", "a string or a list of strings"


# -- networks ------------------------------------------------------------------

@dataclass(frozen=True)
class DriverFormat:
    """A driver's own keys in a topology file (beyond driver, subnet, gateway,
    ip-range and mtu) and how they become create_network's arguments, as its
    `cnet create DRIVER` subcommand makes them."""

    keys: dict[str, str]  # key -> kind
    request: Callable[[dict], dict]  # the keys given -> internal, masquerade, options
    keys_of: Callable[[Network], dict]  # a recorded network -> its keys (export)
    # a request completed for a pure plan (None: as it is); see _overlay_planning
    planning: Callable[[dict, Network | None], dict] | None = None
    without: tuple[str, ...] = ()  # keys of NETWORK_KEYS its `cnet create` does not take


def _bridge_request(keys: dict) -> dict:
    options = {**({"icc": False} if keys.get("no-icc") else {}), **({"routed": True} if keys.get("routed") else {})}
    return dict(internal=bool(keys.get("internal")),
                masquerade=not (keys.get("no-masquerade") or keys.get("routed")), options=options)


def _bridge_keys(net: Network) -> dict:
    keys = {}
    if net.internal:
        keys["internal"] = True
    if net.options.get("icc", True) is False:
        keys["no-icc"] = True
    if net.options.get("routed"):
        keys["routed"] = True
    elif not net.masquerade and not net.internal:
        keys["no-masquerade"] = True
    return keys


def _sublink_format(default_mode: str, flags: dict[str, str]) -> DriverFormat:
    """macvlan and ipvlan: parent, mode, and boolean options (key -> option name), as `cnet create` makes them."""
    def request(keys: dict) -> dict:
        options = {"parent": keys.get("parent"), "mode": keys.get("mode", default_mode)}
        options.update({option: True for key, option in flags.items() if keys.get(key)})
        return dict(masquerade=False, options=options)

    def keys_of(net: Network) -> dict:
        keys = {"parent": net.options.get("parent")}
        if net.options.get("mode", default_mode) != default_mode:
            keys["mode"] = net.options["mode"]
        keys.update({key: True for key, option in flags.items() if net.options.get(option)})
        return keys

    return DriverFormat({"parent": STR, "mode": STR, **{key: BOOL for key in flags}}, request, keys_of)


# What the planning of an overlay puts where the host's own options go (the
# store, this host's name and VTEP): join() fills them in at create, from the
# config and the store, as `cnet create overlay` does.
AT_CREATE = "(at create)"


def _overlay_planning(request: dict, existing: Network | None) -> dict:
    """An overlay's request as a pure plan can check and compare it: what the
    file leaves out (VNI, MTU: the store's, drivers/overlay.py join) is the
    existing network's; for a new one, placeholders that only pass validate."""
    from ..drivers.overlay_store import FIRST_VNI

    have = existing.options if existing is not None else {}
    options = {"vni": have.get("vni", FIRST_VNI), **request["options"],
               **{k: have.get(k, AT_CREATE) for k in ("store", "host", "vtep")}}
    mtu = request["mtu"] if request["mtu"] is not None or existing is None else existing.mtu
    return {**request, "mtu": mtu, "options": options}


def plan_wanted(state: State, config: Config, name: str, driver: str, request: dict,
                existing: Network | None = None) -> Network:
    """The network a topology's request plans to (networks.plan_network), with
    its driver format's planning (an overlay's store-given settings)."""
    fmt = DRIVER_FORMATS.get(driver)
    if fmt is not None and fmt.planning is not None:
        request = fmt.planning(request, existing)
    return network_plans.plan_network(state, config, name, driver=driver, **request)


DRIVER_FORMATS = {
    "bridge": DriverFormat({"internal": BOOL, "no-masquerade": BOOL, "no-icc": BOOL, "routed": BOOL},
                           _bridge_request, _bridge_keys),
    "macvlan": _sublink_format("bridge", {"host-access": "host_access"}),
    "ipvlan": _sublink_format("l2", {}),
    "hostdev": DriverFormat({"parent": STR}, lambda keys: dict(masquerade=False, options={"parent": keys.get("parent")}),
                            lambda net: {"parent": net.options.get("parent")}),
    # `cnet create overlay`: --subnet, --mtu, --vni; the store as for it (--store, CNET_STORE, `store:`)
    "overlay": DriverFormat({"vni": INT}, lambda keys: dict(options={k: keys[k] for k in ("vni",) if k in keys}),
                            lambda net: {"vni": net.options.get("vni")}, _overlay_planning,
                            without=("gateway", "ip-range")),
}

NETWORK_KEYS = {"driver": STR, "subnet": STRS, "gateway": STRS, "ip-range": STR, "mtu": INT}


# -- attachments -----------------------------------------------------------------

def _address(text: str) -> str:
    return text.partition("/")[0]


def _holds_ips(ep: Endpoint, ips: tuple) -> bool:
    have = {ipaddress.ip_address(_address(a)) for a in ep.addresses}
    return all(ipaddress.ip_address(ip) in have for ip in ips)


@dataclass(frozen=True)
class EndpointKey:
    """One key of an attachment: the `cnet attach` option it is, and how a
    recorded endpoint is compared with it and exported."""

    kind: str
    argument: str  # the keyword of Cnet.attach ("limits.ingress_rate": a key of its dict limits=)
    # the endpoint is as the value asks; None: a bandwidth limit, compared with the others
    # of its endpoint (a limit left out is no limit) and changed in place (apply_plan.py)
    holds: Callable[[Endpoint, object], bool] | None
    value_of: Callable[[Endpoint, Network], object]  # the endpoint's value (None: not written by export)


def _limit_value(direction: str, what: str):
    """Export of one limit: the rate in tc's units; the burst only when it is not the default."""
    from .. import bandwidth

    def value_of(ep: Endpoint, net: Network):
        rate = getattr(ep.limits, f"{direction}_rate", None) if ep.limits else None
        if rate is None:
            return None
        if what == "rate":
            return bandwidth.format_rate(rate)
        burst = getattr(ep.limits, f"{direction}_burst")
        return None if burst == bandwidth.default_burst(rate, net.mtu) else bandwidth.format_size(burst)

    return value_of


ENDPOINT_KEYS = {
    "ip": EndpointKey(STRS, "ips", _holds_ips, lambda ep, net: tuple(_address(a) for a in ep.addresses)),
    "mac": EndpointKey(STR, "mac", lambda ep, mac: ep.mac == mac.lower(), lambda ep, net: ep.mac),
    "ifname": EndpointKey(STR, "ifname", lambda ep, name: ep.ifname == name,
                          lambda ep, net: None if re.fullmatch(r"eth\d+", ep.ifname) else ep.ifname),
    **{f"{d}-{what}": EndpointKey(STR, f"limits.{d}_{what}", None, _limit_value(d, what))
       for d in ("ingress", "egress") for what in ("rate", "burst")},
}

SANDBOX_KEYS = {"networks": None, "publish": STRS, "dns": STRS, "add-host": STRS, "hostname": STR,
                "join": STR, "host": BOOL, "pid": INT, "netns-path": STR}
MODE_KEYS = ("join", "host", "pid", "netns-path")
ROUTER_KEYS = {"networks": STRS}


# -- the model of what a file wants ----------------------------------------------

@dataclass(frozen=True)
class WantedNetwork:
    name: str
    driver: str
    request: dict  # create_network's keywords but driver and name


@dataclass(frozen=True)
class WantedEndpoint:
    network: str
    keys: dict  # ENDPOINT_KEYS -> value, as given
    publish: tuple[str, ...] = ()  # port specs published on this network
    line: int = 0  # where the file gives it, for errors found later

    def limit_values(self) -> dict:
        """The bandwidth limits asked for, as Cnet.limit takes them: {"ingress_rate": "10mbit", ...}."""
        return self.attach_arguments().get("limits", {})

    def attach_arguments(self) -> dict:
        """Cnet.attach's keywords; an argument "limits.ingress_rate" goes into the dict limits=."""
        arguments: dict = {}
        for key, value in self.keys.items():
            name, _, inner = ENDPOINT_KEYS[key].argument.partition(".")
            if inner:
                arguments.setdefault(name, {})[inner] = value
            else:
                arguments[name] = value
        return arguments


@dataclass(frozen=True)
class WantedSandbox:
    name: str
    mode: str = "none"  # none | joined | adopted | host, as model.Sandbox
    target: str | None = None  # joined: the sandbox named by join; adopted: the namespace path
    pid: int | None = None
    dns: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    hostname: str | None = None
    endpoints: tuple[WantedEndpoint, ...] = ()
    publish: tuple[str, ...] = ()  # port specs on the sandbox's first network that can publish

    def create_arguments(self) -> dict:
        """Cnet.create_ns's keywords (the attachments and ports are steps of their own)."""
        return dict(join=self.target if self.mode == "joined" else None, pid=self.pid,
                    netns_path=self.target if self.mode == "adopted" and self.pid is None else None,
                    host=self.mode == "host", dns=self.dns, add_hosts=self.hosts, hostname=self.hostname)


@dataclass(frozen=True)
class WantedRouter:
    name: str
    networks: tuple[tuple[str, str | None], ...]  # (network, pinned address or None)
    line: int = 0

    def network_arguments(self) -> list[str]:
        return [f"{n}:{ip}" if ip else n for n, ip in self.networks]


@dataclass
class Topology:
    networks: dict[str, WantedNetwork] = field(default_factory=dict)
    sandboxes: dict[str, WantedSandbox] = field(default_factory=dict)
    routers: dict[str, WantedRouter] = field(default_factory=dict)

    def owner(self, name: str) -> str:
        """The sandbox whose stack `name` uses (joins followed; load() refused cycles)."""
        sb = self.sandboxes[name]
        while sb.mode == "joined":
            sb = self.sandboxes[sb.target]
        return sb.name


# -- reading a file --------------------------------------------------------------

class _Reader:
    """Walks the composed YAML nodes, so that each error can name its line."""

    def __init__(self, source: str):
        self.source = source
        self._constructor = yaml.constructor.SafeConstructor()
        self._key_lines: dict[str, int] = {}  # "sandboxes.web" -> the line of its key

    def error(self, node, where: str, message: str) -> InvalidInput:
        """An error at node: its line (a mapping's or a list's: the line of its key)."""
        number = node.start_mark.line + 1 if node is not None else None
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and where in self._key_lines:
            number = self._key_lines[where]
        line = f" line {number}" if number else ""
        return InvalidInput(f"{self.source}{line}: {where}: {message}" if where else f"{self.source}{line}: {message}")

    def mapping(self, node, where: str, allowed: dict | None = None) -> dict:
        """{key: value node}; allowed: the keys it may have."""
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, where, "must be a mapping of names to settings")
        found = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            here = f"{where}.{key}" if where else str(key)
            if not key:
                raise self.error(key_node, where, "a key must be a name")
            if key in found:
                raise self.error(key_node, here, "is given twice")
            if allowed is not None and key not in allowed:
                raise self.error(key_node, here, f"unknown key (known: {', '.join(allowed)})")
            found[key] = value_node
            self._key_lines[here] = key_node.start_mark.line + 1
        return found

    def line(self, where: str) -> int:
        return self._key_lines.get(where, 0)

    def value(self, node, kind: str, where: str):
        if kind == STRS:
            if isinstance(node, yaml.SequenceNode):
                return tuple(self.value(item, STR, f"{where}[{i}]") for i, item in enumerate(node.value))
            return (self.value(node, STR, where),)
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, where, f"must be {kind}")
        value = self._constructor.construct_object(node)
        if kind == STR:
            if value is None or isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise self.error(node, where, f"must be {kind}, not {value!r}")
            return node.value
        if kind == INT and (isinstance(value, bool) or not isinstance(value, int)):
            raise self.error(node, where, f"must be {kind}, not {value!r}")
        if kind == BOOL and not isinstance(value, bool):
            raise self.error(node, where, f"must be {kind}, not {value!r}")
        return value

    def settings(self, node, keys: dict, where: str) -> dict:
        """The typed values of a mapping whose keys are all in `keys` (null: an empty mapping)."""
        if _is_null(node):
            return {}
        return {k: self.value(v, keys[k], f"{where}.{k}") for k, v in self.mapping(node, where, keys).items()}


def load(text: str, config: Config | None = None, source: str = "topology") -> Topology:
    """The topology of a file's text, checked in full (InvalidInput naming
    the line and key of the first error). config: the defaults a network
    takes (its MTU, the pools a missing subnet comes from)."""
    config = config or Config()
    r = _Reader(source)
    try:
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise InvalidInput(f"{source}{line}: not YAML: {getattr(e, 'problem', None) or e}") from None
    if root is None:
        raise InvalidInput(f"{source}: the file is empty (a topology has networks, sandboxes and routers)")
    top = r.mapping(root, "", {"version": None, "networks": None, "sandboxes": None, "routers": None})
    if "version" in top and r.value(top["version"], INT, "version") != VERSION:
        raise r.error(top["version"], "version", f"only version {VERSION} is known")
    topo = Topology()
    planned = _networks(r, top.get("networks"), config, topo)
    _sandboxes(r, top.get("sandboxes"), topo, planned)
    _routers(r, top.get("routers"), topo, planned)
    _check_addresses(r, topo)
    return topo


def _is_null(node) -> bool:
    return node is None or (isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null")


def _entries(r: _Reader, node, where: str) -> dict:
    return {} if _is_null(node) else r.mapping(node, where)


def _networks(r: _Reader, node, config: Config, topo: Topology) -> dict[str, tuple[Network, bool, object]]:
    """Fills topo.networks; returns {name: (the network planned, whether its subnets were given, its node)}."""
    planned, explicit = {}, State()
    for name, value in _entries(r, node, "networks").items():
        where = f"networks.{name}"
        driver_node = r.mapping(value, where).get("driver") if isinstance(value, yaml.MappingNode) else None
        driver = r.value(driver_node, STR, f"{where}.driver") if driver_node is not None else "bridge"
        fmt = DRIVER_FORMATS.get(driver)
        if fmt is None:
            raise r.error(driver_node, f"{where}.driver",
                          f"unknown driver {driver!r} (known: {', '.join(DRIVER_FORMATS)})")
        common = {k: v for k, v in NETWORK_KEYS.items() if k not in fmt.without}
        keys = r.settings(value, {**common, **fmt.keys}, where)
        request = dict(subnets=keys.get("subnet", ()), gateways=keys.get("gateway", ()),
                       ip_range=keys.get("ip-range"), mtu=keys.get("mtu"),
                       **fmt.request({k: v for k, v in keys.items() if k in fmt.keys}))
        try:
            net = plan_wanted(explicit, config, name, driver, request)
        except CnetError as e:
            raise r.error(value, where, str(e)) from None
        if request["subnets"]:  # a subnet from the pools is only a guess here: no other may be checked against it
            explicit.networks[name] = net
        topo.networks[name] = WantedNetwork(name, driver, request)
        planned[name] = (net, bool(request["subnets"]), value)
    return planned


def _check_ip(r: _Reader, node, where: str, ip: str, network: str, planned) -> None:
    """ip is an address, inside one of network's subnets when the file gives them."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        raise r.error(node, where, f"{ip!r} is not an IP address") from None
    net, explicit, _ = planned[network]
    if explicit and not any(address in ipaddress.ip_network(s.subnet) for s in net.subnets):
        raise r.error(node, where, f"{ip} is outside the subnet(s) {', '.join(s.subnet for s in net.subnets)}"
                                   f" of network {network}")


def _check_specs(r: _Reader, node, where: str, specs: tuple) -> None:
    from .. import portspec

    for spec in specs:
        try:
            port_plans.check_host_ip(portspec.parse(spec))
        except CnetError as e:
            raise r.error(node, where, str(e)) from None


def _sandboxes(r: _Reader, node, topo: Topology, planned) -> None:
    joins = {}
    for name, value in _entries(r, node, "sandboxes").items():
        where = f"sandboxes.{name}"
        fields = r.mapping(value, where, SANDBOX_KEYS) if not _is_null(value) else {}
        keys = {k: r.value(v, SANDBOX_KEYS[k], f"{where}.{k}") for k, v in fields.items() if k != "networks"}
        modes = [k for k in MODE_KEYS if k in keys and keys[k] is not False]
        if len(modes) > 1:
            raise r.error(value, where, f"{' and '.join(modes)} cannot be combined: a sandbox has one mode")
        mode, target, pid = "none", None, None
        if "join" in modes:
            mode, target = "joined", keys["join"]
            joins[name] = fields["join"]
        elif "host" in modes:
            mode = "host"
        elif "pid" in modes:
            mode, pid, target = "adopted", keys["pid"], f"/proc/{keys['pid']}/ns/net"
        elif "netns-path" in modes:
            mode, target = "adopted", keys["netns-path"]
        try:
            sandbox_plans.plan_sandbox(State(), name, dns=keys.get("dns", ()), add_hosts=keys.get("add-host", ()),
                                       hostname=keys.get("hostname"))
        except CnetError as e:
            raise r.error(value, where, str(e)) from None
        endpoints = _endpoints(r, fields.get("networks"), f"{where}.networks", planned)
        publish = keys.get("publish", ())
        _check_specs(r, fields.get("publish"), f"{where}.publish", publish)
        if mode in ("joined", "host") and (endpoints or publish or any(e.publish for e in endpoints)):
            what = "networks" if endpoints else "publish"
            shares = f"shares the stack of {target}: give its {what} there" if mode == "joined" else \
                "is the host's own namespace: it has no networks and publishes nothing"
            raise r.error(fields[what], f"{where}.{what}", f"a sandbox that {shares}")
        if publish and not endpoints:
            raise r.error(fields["publish"], f"{where}.publish", "needs a network to publish on (networks:)")
        topo.sandboxes[name] = WantedSandbox(name, mode, target, pid, keys.get("dns", ()), keys.get("add-host", ()),
                                             keys.get("hostname"), endpoints, publish)
    for name, node in joins.items():
        seen, at = {name}, topo.sandboxes[name].target
        while True:
            if at not in topo.sandboxes:
                raise r.error(node, f"sandboxes.{name}.join", f"sandbox {at} is not declared under sandboxes")
            if at in seen:
                raise r.error(node, f"sandboxes.{name}.join", f"joins go round in a circle through {at}")
            if topo.sandboxes[at].mode == "host":
                raise r.error(node, f"sandboxes.{name}.join", f"sandbox {at} is the host's namespace; use host: true")
            if topo.sandboxes[at].mode != "joined":
                break
            seen.add(at)
            at = topo.sandboxes[at].target


def _endpoints(r: _Reader, node, where: str, planned) -> tuple[WantedEndpoint, ...]:
    """A sandbox's networks: a list of names, or a mapping of names to ENDPOINT_KEYS (and publish)."""
    if node is None:
        return ()
    if isinstance(node, yaml.SequenceNode):
        entries = [(r.value(item, STR, f"{where}[{i}]"), item, None) for i, item in enumerate(node.value)]
        seen = [n for n, _, _ in entries]
        twice = next((n for n in seen if seen.count(n) > 1), None)
        if twice:
            raise r.error(node, where, f"network {twice} is given twice")
    else:
        entries = [(name, value, value) for name, value in r.mapping(node, where).items()]
    keys = {k: v.kind for k, v in ENDPOINT_KEYS.items()} | {"publish": STRS}
    found = []
    for network, at, settings_node in entries:
        here = f"{where}.{network}"
        if network not in planned:
            raise r.error(at, here, f"network {network} is not declared under networks")
        settings = r.settings(settings_node, keys, here) if settings_node is not None else {}
        fields = {} if _is_null(settings_node) else r.mapping(settings_node, here)
        for ip in settings.get("ip", ()):
            _check_ip(r, fields["ip"], f"{here}.ip", ip, network, planned)
        if "mac" in settings:
            try:
                sandbox_plans.check_mac(settings["mac"])
            except CnetError as e:
                raise r.error(fields["mac"], f"{here}.mac", str(e)) from None
        publish = settings.pop("publish", ())
        _check_specs(r, fields.get("publish"), f"{here}.publish", publish)
        wanted = WantedEndpoint(network, settings, publish, r.line(here) or at.start_mark.line + 1)
        if wanted.limit_values():
            _check_limits(r, settings_node, here, wanted.limit_values(), planned[network][0])
        found.append(wanted)
    return tuple(found)


def _check_limits(r: _Reader, node, where: str, values: dict, net: Network) -> None:
    """What `cnet attach` refuses of these limits on net (a bad rate, a burst without its rate, a
    driver that cannot shape), refused with the line."""
    from .limit_ops import parse_limits, plan_limits

    try:
        plan_limits(net, parse_limits(values, new_endpoint=True))
    except CnetError as e:
        raise r.error(node, where, str(e)) from None


def _routers(r: _Reader, node, topo: Topology, planned) -> None:
    from .router_ops import parse_network_arg

    for name, value in _entries(r, node, "routers").items():
        where = f"routers.{name}"
        if name in topo.sandboxes:
            raise r.error(value, where, f"{name} is a sandbox too: a router is a sandbox, and names are unique")
        keys = r.settings(value, ROUTER_KEYS, where)
        if "networks" not in keys:
            raise r.error(value, where, "a router needs networks: (two or more)")
        at = r.mapping(value, where)["networks"]
        wanted = []
        for text in keys["networks"]:
            try:
                network, ip = parse_network_arg(text)
            except CnetError as e:
                raise r.error(at, f"{where}.networks", str(e)) from None
            if network not in planned:
                raise r.error(at, f"{where}.networks", f"network {network} is not declared under networks")
            if ip:
                _check_ip(r, at, f"{where}.networks", ip, network, planned)
            wanted.append((network, ip))
        try:
            router_plans.check_new_router(State(networks={n: planned[n][0] for n, _ in wanted}), name,
                                          [n for n, _ in wanted])
        except CnetError as e:
            raise r.error(at, f"{where}.networks", str(e)) from None
        topo.routers[name] = WantedRouter(name, tuple(wanted), r.line(where))


def _check_addresses(r: _Reader, topo: Topology) -> None:
    """No address pinned twice (sandboxes and routers alike)."""
    taken: dict = {}

    def take(address: str, who: str, line: int) -> None:
        ip = ipaddress.ip_address(address)
        if ip in taken:
            raise InvalidInput(f"{r.source} line {line}: {who}: address {address} is given to {taken[ip]} too")
        taken[ip] = who

    for sb in topo.sandboxes.values():
        for ep in sb.endpoints:
            for ip in ep.keys.get("ip", ()):
                take(ip, f"sandboxes.{sb.name}.networks.{ep.network}.ip", ep.line)
    for router in topo.routers.values():
        for network, ip in router.networks:
            if ip:
                take(ip, f"routers.{router.name}.networks", router.line)


# -- export ----------------------------------------------------------------------

def export(state: State, config: Config | None = None) -> dict:
    """The state as a topology document (plain data: dump() writes it)."""
    config = config or Config()
    doc: dict = {"version": VERSION, "networks": {}, "sandboxes": {}, "routers": {}}
    for net in state.networks.values():
        doc["networks"][net.name] = network_keys(net, config)
    for sb in state.sandboxes.values():
        mine = state.endpoints_of_sandbox(sb.name)
        if sb.mode == router_plans.MODE:
            doc["routers"][sb.name] = {"networks": [f"{e.network}:{_address(e.addresses[0])}" if e.addresses
                                                    else e.network for e in mine]}
            continue
        keys = sandbox_keys(sb)
        default = _default_publish_network(state, sb.name)
        on_network = {}
        for e in mine:
            settings = {}
            for key, spec in ENDPOINT_KEYS.items():
                value = spec.value_of(e, state.networks[e.network])
                if value is not None:
                    settings[key] = _one_or_list(value) if isinstance(value, tuple) else value
            specs = [spec for spec, _ in port_specs([p for p in state.ports if p.sandbox == e.sandbox
                                                     and p.network == e.network], families_of(e))]
            if specs and e.network != default:
                settings["publish"] = specs
            elif specs:
                keys["publish"] = specs
            on_network[e.network] = settings
        own = {k: v for k, v in keys.items() if k != "publish"}
        mode = {k: v for k, v in own.items() if k in MODE_KEYS}
        rest = {k: v for k, v in own.items() if k not in MODE_KEYS}
        doc["sandboxes"][sb.name] = {**mode, **({"networks": on_network} if on_network else {}),
                                     **({"publish": keys["publish"]} if "publish" in keys else {}), **rest}
    return {k: v for k, v in doc.items() if v or k == "version"}


def _one_or_list(values: tuple):
    return values[0] if len(values) == 1 else list(values)


def network_keys(net: Network, config: Config) -> dict:
    """A network's keys in a topology file, defaults left out."""
    keys: dict = {} if net.driver == "bridge" else {"driver": net.driver}
    subnets = [s.subnet for s in net.subnets]
    keys["subnet"] = _one_or_list(tuple(subnets))
    gateways = [s.gateway for s in net.subnets]
    if any(g != str(next(ipaddress.ip_network(s.subnet).hosts())) for g, s in zip(gateways, net.subnets)):
        keys["gateway"] = _one_or_list(tuple(gateways))
    ranges = [s.ip_range for s in net.subnets if s.ip_range]
    if ranges:
        keys["ip-range"] = ranges[0]
    if net.mtu != config.mtu:
        keys["mtu"] = net.mtu
    fmt = DRIVER_FORMATS.get(net.driver)
    keys.update(fmt.keys_of(net) if fmt else net.options)
    return keys


def sandbox_keys(sb) -> dict:
    """A sandbox's own keys in a topology file (its mode, resolver settings), as
    for a model.Sandbox or a WantedSandbox (whose join target is the name given)."""
    keys: dict = {}
    if sb.mode == "joined":
        keys["join"] = sb.target
    elif sb.mode == "host":
        keys["host"] = True
    elif sb.mode == "adopted":
        pid = re.fullmatch(r"/proc/(\d+)/ns/net", sb.target or "")
        keys.update({"pid": int(pid.group(1))} if pid else {"netns-path": sb.target})
    for key, values in (("dns", sb.dns), ("add-host", sb.hosts)):
        if values:
            keys[key] = list(values)
    if sb.hostname:
        keys["hostname"] = sb.hostname
    return keys


def _default_publish_network(state: State, owner: str) -> str | None:
    """The network a port published without --network goes on (core/ports.py choose_endpoint)."""
    from .base import firewall_needs

    try:
        return port_plans.choose_endpoint(state, owner, owner, None, lambda net: firewall_needs(net).publish).network
    except CnetError:
        return None


def port_specs(mappings, families: set[int]) -> list[tuple[str, list]]:
    """The port specs that publish these mappings (of one endpoint, whose
    address families are families), each with the mappings it stands for:
    one without a host address where they cover every family on the
    wildcard addresses, one per host address otherwise."""
    groups: dict = {}
    for p in mappings:
        groups.setdefault((p.protocol, p.host_port, p.port, p.count), []).append(p)
    specs = []
    for (protocol, host_port, port, count), group in groups.items():
        def ports(first: int) -> str:
            return f"{first}-{first + count - 1}" if count > 1 else str(first)

        tail = f"{ports(host_port)}:{ports(port)}" + ("" if protocol == "tcp" else f"/{protocol}")
        if {p.host_ip for p in group} == {port_plans.ANY[f] for f in families}:
            specs.append((tail, group))
        else:
            specs += [(f"[{p.host_ip}]:{tail}" if ":" in p.host_ip else f"{p.host_ip}:{tail}", [p])
                      for p in sorted(group, key=lambda p: p.host_ip)]
    return specs


def families_of(ep: Endpoint) -> set[int]:
    return {6 if ":" in a else 4 for a in ep.addresses}


def dump(doc: dict) -> str:
    """A topology document as YAML text, in the order it was built."""
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


# -- a picture -------------------------------------------------------------------

def dot(topo: Topology) -> str:
    """The topology in Graphviz's dot language: each network a box in a
    cluster with the sandboxes whose first network it is, sandboxes with
    their addresses and bandwidth limits on each link, routers as diamonds, published ports as dashed edges
    from the host, joined sandboxes dotted to the stack they share."""
    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    def node(kind: str, name: str) -> str:
        return quoted(f"{kind}:{name}")

    def edge(a: str, b: str, label: str = "", style: str = "") -> str:
        attributes = ", ".join(([style] if style else []) + ([f"label={quoted(label)}"] if label else []))
        return f"  {a} -> {b}" + (f" [{attributes}]" if attributes else "") + ";"

    lines = ["digraph cnet {", '  rankdir=LR; fontname="sans-serif";', '  node [fontname="sans-serif", fontsize=10];',
             '  edge [fontname="sans-serif", fontsize=9, dir=none];']
    home = {name: sb.endpoints[0].network for name, sb in topo.sandboxes.items() if sb.endpoints}
    for net in topo.networks.values():
        subnets = " ".join(net.request["subnets"]) or "subnet from the pools"
        options = net.request.get("options") or {}
        flags = ["internal"] * bool(net.request.get("internal")) + [
            k if isinstance(v, bool) else f"{k} {v}" for k, v in sorted(options.items())]
        subnets += f" ({', '.join(flags)})" if flags else ""
        lines += [f"  subgraph {quoted('cluster_' + net.name)} {{", f"    label={quoted(net.name)};",
                  f"    {node('net', net.name)} [shape=box, style=filled, fillcolor=lightblue,"
                  f" label={quoted(net.name + chr(10) + net.driver + ' ' + subnets)}];"]
        lines += [f"    {node('sb', name)};" for name, first in home.items() if first == net.name]
        lines.append("  }")
    ports = False
    for sb in topo.sandboxes.values():
        label = sb.name + ("" if sb.mode in ("none", "joined") else f" ({sb.mode})")
        lines.append(f"  {node('sb', sb.name)} [shape=ellipse, label={quoted(label)}];")
        if sb.mode == "joined":
            lines.append(edge(node("sb", sb.name), node("sb", sb.target), "joins", "style=dotted"))
        for ep in sb.endpoints:
            limits = ep.limit_values()
            shaped = [f"{word} {limits[f'{d}_rate']}" for d, word in (("ingress", "in"), ("egress", "out"))
                      if f"{d}_rate" in limits]
            label = "\n".join(filter(None, [", ".join(ep.keys.get("ip", ())), " ".join(shaped)]))
            lines.append(edge(node("sb", sb.name), node("net", ep.network), label))
        for text in [*sb.publish, *(t for e in sb.endpoints for t in e.publish)]:
            ports = True
            lines.append(edge("host", node("sb", sb.name), _port_label(text), "style=dashed, dir=forward"))
    for router in topo.routers.values():
        lines.append(f"  {node('router', router.name)} [shape=diamond, style=filled, fillcolor=khaki,"
                     f" label={quoted(router.name)}];")
        for network, ip in router.networks:
            lines.append(edge(node("router", router.name), node("net", network), ip or ""))
    if ports:
        lines.insert(4, '  host [shape=house, label="host"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _port_label(text: str) -> str:
    """host:port -> sandbox port, as a port spec says."""
    from .. import portspec

    spec = portspec.parse(text)
    def ports(first, count):
        return f"{first}-{first + count - 1}" if count > 1 else str(first)

    host = f"{spec.host_ip or '*'}:{ports(spec.host_port, spec.count) if spec.host_port else 'any'}"
    return f"{host} -> {ports(spec.port, spec.count)}/{spec.protocol}"
