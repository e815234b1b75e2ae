"""Every record of a state file checked before cnet believes it.

The state file is the truth cnet makes the kernel match, so a record it
cannot have written (a subnet "banana", a port "abc", an endpoint of a
network that is not there, a key that is not the name) is reported with its
place in the file, and the file is left alone: no command acts on it, and
none rewrites it with the bad value or blames the user's arguments for it.
Pure: the document as parsed, no kernel, no other file.

Speed: every cnet command reads the whole file, and a file holds thousands of
records of a few shapes. So a shape (the record's field names and their
types) is checked once and then only looked up, addresses are parsed with
inet_pton (~10x quicker than ipaddress), the host addresses of ports once
each, and a record's place in the file is spelled out only when it is wrong.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import re

# socket's C half: the socket module itself imports selectors and more (~3 ms
# at every start of cnet, which only needs inet_pton here)
from _socket import AF_INET, AF_INET6, inet_pton

from .errors import InvalidInput
from .names import RESERVED_IFNAMES, SANDBOX_NAME, check_ifname

_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")  # cnet writes MACs in lower case
_DRIVER = re.compile(r"[a-z][a-z0-9_]*")  # the names drivers.get accepts
_NOT_DRIVERS = frozenset({"base", "sublink", "overlay_store"})  # modules of cnet/drivers that are no driver, as drivers.get says
_IFNAME_OK = re.compile(r"[A-Za-z0-9_.-]{1,15}")  # what check_ifname accepts, but for '.', '..', 'all', 'default'
MODES = ("none", "joined", "adopted", "host", "router")
PROTOCOLS = ("tcp", "udp", "sctp")
FIREWALLS = ("nftables", "iptables")
SECTIONS = {"networks": dict, "sandboxes": dict, "endpoints": list, "ports": list, "host": dict}


class BadRecord(Exception):
    """path: where in the file ("networks.br0.subnets[0].subnet"); the
    checks of one record give it from the record (".subnets[0].subnet", or
    "" for the record itself), and their caller puts the record's place in
    front (inside)."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = path, problem

    def inside(self, place: str) -> BadRecord:
        return BadRecord(place + self.path, self.problem)


class _Schema:
    """The fields of one kind of record: those it must have, and the types of
    each field it may have. Types are compared exactly (what json gives: bool
    is not int)."""

    def __init__(self, required: dict, optional: dict):
        self.required = frozenset(required)
        self.types = {name: frozenset(type(None) if t is None else t for t in kinds)
                      for name, kinds in {**required, **optional}.items()}
        self._good_shapes = set()  # the shapes of records found good, which are good for ever

    def check(self, record) -> None:
        if type(record) is not dict:
            raise BadRecord("", f"is {type(record).__name__}, not a mapping")
        shape = (*record, *map(type, record.values()))  # names are never types: no two shapes look alike
        if shape in self._good_shapes:
            return
        for name, value in record.items():
            allowed = self.types.get(name)
            if allowed is None:
                raise BadRecord("", f"has an unknown field {name!r}")
            if type(value) not in allowed:
                raise BadRecord(f".{name}", f"{value!r} is not {_named(allowed)}")
        if not self.required <= record.keys():
            raise BadRecord("", f"has no {sorted(self.required - record.keys())[0]!r}")
        self._good_shapes.add(shape)


def _named(types) -> str:
    words = {str: "a string", int: "an integer", bool: "true or false", list: "a list", dict: "a mapping",
             type(None): "null"}
    return " or ".join(words[t] for t in sorted(types, key=list(words).index))


S, I, B, L, D = (str,), (int,), (bool,), (list,), (dict,)
NETWORK = _Schema(dict(name=S, driver=S, subnets=L, mtu=I), dict(internal=B, masquerade=B, options=D, created=S))
SUBNET = _Schema(dict(subnet=S, gateway=S), dict(ip_range=(str, None), last=(str, None)))
SANDBOX = _Schema(dict(name=S), dict(mode=S, target=(str, None), dns=L, hosts=L, hostname=(str, None), created=S))
ENDPOINT = _Schema(dict(sandbox=S, network=S, ifname=S, host_ifname=S, mac=S, addresses=L), dict(limits=D, device=D))
DEVICE = _Schema(dict(name=S, mtu=I, mac=S, up=B), dict(alias=S))
LIMITS = _Schema({}, dict(ingress_rate=I, ingress_burst=I, egress_rate=I, egress_burst=I))
PORT = _Schema(dict(sandbox=S, network=S, protocol=S, host_ip=S, host_port=I, port=I), dict(count=I))


def check(doc: dict) -> None:
    """Raise BadRecord for the first record of doc (the parsed file) that is wrong."""
    for key, value in doc.items():
        if key == "serial":
            if type(value) is not str:
                raise BadRecord(key, f"{value!r} is not a string")
        elif key in SECTIONS:
            if value is not None and type(value) is not SECTIONS[key]:
                raise BadRecord(key, f"is {type(value).__name__}, not {_named((SECTIONS[key],))}")
        elif key != "version":  # decode has checked it
            raise BadRecord(key, "is not a part of a cnet state file")
    subnets = {}  # network -> its subnets, as _check_network gives them
    for name, net in (doc.get("networks") or {}).items():
        try:
            subnets[name] = _check_network(name, net)
        except BadRecord as e:
            raise e.inside(f"networks.{name}") from None
    sandboxes = doc.get("sandboxes") or {}
    for name, sb in sandboxes.items():
        try:
            _check_sandbox(name, sb, sandboxes)
        except BadRecord as e:
            raise e.inside(f"sandboxes.{name}") from None
    endpoints, ifnames, host_ifnames = set(), set(), set()
    used = {}  # (network, family, address) -> the place of the endpoint that has it
    for i, ep in enumerate(doc.get("endpoints") or ()):
        try:
            _check_endpoint(ep, i, subnets, sandboxes, endpoints, ifnames, host_ifnames, used)
        except BadRecord as e:
            raise e.inside(f"endpoints[{i}]") from None
    taken, host_ips = {}, {}
    for i, p in enumerate(doc.get("ports") or ()):
        try:
            _check_port(p, endpoints, taken, host_ips)
        except BadRecord as e:
            raise e.inside(f"ports[{i}]") from None
    host = doc.get("host") or {}
    if host.get("firewall") is not None and host["firewall"] not in FIREWALLS:
        raise BadRecord("host.firewall", f"{host['firewall']!r} is not one of {', '.join(FIREWALLS)}")
    sysctls = host.get("sysctls", {})
    if type(sysctls) is not dict or not all(type(k) is str and type(v) is str for k, v in sysctls.items()):
        raise BadRecord("host.sysctls", "is not a mapping of sysctl names to values")


def _ifname(name: str, path: str) -> None:
    if _IFNAME_OK.fullmatch(name) and name not in (".", "..", *RESERVED_IFNAMES):
        return  # the common case, without check_ifname's character sets
    try:
        check_ifname(name, "interface name")
    except InvalidInput as e:
        raise BadRecord(path, str(e)) from None


def _known_driver(name: str) -> bool:
    """A module cnet/drivers/NAME, as drivers.get looks for: found, not
    imported (a driver imports pyroute2, which no reading of the file needs)."""
    return (_DRIVER.fullmatch(name) is not None and name not in _NOT_DRIVERS
            and importlib.util.find_spec(f"{__package__}.drivers.{name}") is not None)


def _ip(text: str, path: str):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise BadRecord(path, f"{text!r} is not an IP address") from None


def _packed(text: str, path: str) -> tuple[int, int]:
    """(family, the address as an integer)."""
    family, af = (6, AF_INET6) if ":" in text else (4, AF_INET)
    try:
        return family, int.from_bytes(inet_pton(af, text), "big")
    except OSError:
        raise BadRecord(path, f"{text!r} is not an IP address") from None


def _network(text: str, path: str):
    try:
        return ipaddress.ip_network(text)
    except ValueError as e:
        raise BadRecord(path, f"{text!r} is not a subnet in CIDR form ({e})") from None


def _check_network(name: str, net) -> dict:
    """The network's subnets, for its endpoints' addresses: prefix length (as
    written) -> [(family, network address, netmask, addresses no endpoint has)]."""
    NETWORK.check(net)
    if net["name"] != name:
        raise BadRecord(".name", f"{net['name']!r} differs from its key {name!r}")
    _ifname(name, ".name")
    if not _known_driver(net["driver"]):
        raise BadRecord(".driver", f"{net['driver']!r} is not a network driver of this cnet")
    if not 68 <= net["mtu"] <= 65535:
        raise BadRecord(".mtu", f"{net['mtu']} is not an MTU (68-65535)")
    found, by_prefix = [], {}
    for i, s in enumerate(net["subnets"]):
        try:
            subnet, reserved = _check_subnet(s, found, name)
        except BadRecord as e:
            raise e.inside(f".subnets[{i}]") from None
        found.append(subnet)
        by_prefix.setdefault(str(subnet.prefixlen), []).append(
            (subnet.version, int(subnet.network_address), int(subnet.netmask), reserved))
    return by_prefix


def _check_subnet(s, others: list, network: str) -> tuple:
    """(the subnet, the addresses in it no endpoint has)."""
    SUBNET.check(s)
    subnet = _network(s["subnet"], ".subnet")
    if any(subnet.overlaps(other) for other in others):
        raise BadRecord(".subnet", f"{s['subnet']} overlaps another subnet of network {network}")
    # ipam's rules: the gateway is neither the network address nor (IPv4) the
    # broadcast address, and no endpoint has any of the three
    reserved = {subnet.network_address}
    if subnet.version == 4:
        reserved.add(subnet.broadcast_address)
    gateway = _ip(s["gateway"], ".gateway")
    if gateway not in subnet or gateway in reserved:
        raise BadRecord(".gateway", f"{s['gateway']} is not a host address of {s['subnet']}")
    reserved.add(gateway)
    if s.get("ip_range") is not None:
        ip_range = _network(s["ip_range"], ".ip_range")
        if ip_range.version != subnet.version or not ip_range.subnet_of(subnet):
            raise BadRecord(".ip_range", f"{s['ip_range']} is not inside {s['subnet']}")
    if s.get("last") is not None and _ip(s["last"], ".last") not in subnet:
        raise BadRecord(".last", f"{s['last']} is not inside {s['subnet']}")
    return subnet, {int(a) for a in reserved}


def _check_sandbox(name: str, sb, sandboxes: dict) -> None:
    SANDBOX.check(sb)
    if sb["name"] != name:
        raise BadRecord(".name", f"{sb['name']!r} differs from its key {name!r}")
    if not SANDBOX_NAME.fullmatch(name):
        raise BadRecord(".name", f"{name!r} is not a sandbox name")
    mode = sb.get("mode", "none")
    target = sb.get("target")
    if mode == "joined":
        owner = sandboxes.get(target)
        if type(owner) is not dict or owner.get("mode", "none") in ("joined", "host") or target == name:
            raise BadRecord(".target", f"{target!r} is not a sandbox of the file that owns its stack")
    elif mode == "adopted":
        if not target or not target.startswith("/"):
            raise BadRecord(".target", f"{target!r} is not the path of the namespace it adopted")
    elif mode not in MODES:
        raise BadRecord(".mode", f"{mode!r} is not one of {', '.join(MODES)}")
    elif target is not None:
        raise BadRecord(".target", f"a sandbox of mode {mode} has no target")
    for i, ip in enumerate(sb.get("dns", ())):
        if type(ip) is not str:
            raise BadRecord(f".dns[{i}]", f"{ip!r} is not a string")
        _ip(ip, f".dns[{i}]")
    for i, entry in enumerate(sb.get("hosts", ())):
        if type(entry) is not str:
            raise BadRecord(f".hosts[{i}]", f"{entry!r} is not a string")
        host, sep, ip = entry.partition(":")
        if not sep or not host:
            raise BadRecord(f".hosts[{i}]", f"{entry!r} is not HOST:IP")
        _ip(ip, f".hosts[{i}]")


def _check_endpoint(ep, i: int, subnets: dict, sandboxes: dict,
                    endpoints: set, ifnames: set, host_ifnames: set, used: dict) -> None:
    """endpoints, ifnames, host_ifnames and used: what the endpoints before
    this one (number i) have, which this one adds to."""
    ENDPOINT.check(ep)
    sandbox, network, ifname, host_ifname = ep["sandbox"], ep["network"], ep["ifname"], ep["host_ifname"]
    sb = sandboxes.get(sandbox)
    if sb is None:
        raise BadRecord(".sandbox", f"{sandbox!r} is not a sandbox of the file")
    if sb.get("mode", "none") in ("joined", "host"):
        raise BadRecord(".sandbox", f"sandbox {sandbox} is {sb['mode']}: its endpoints are its owner's")
    by_prefix = subnets.get(network)
    if by_prefix is None:
        raise BadRecord(".network", f"{network!r} is not a network of the file")
    if (sandbox, network) in endpoints:
        raise BadRecord("", f"a second endpoint of sandbox {sandbox} on network {network}")
    endpoints.add((sandbox, network))
    _ifname(ifname, ".ifname")
    if (sandbox, ifname) in ifnames:
        raise BadRecord(".ifname", f"sandbox {sandbox} has two endpoints named {ifname}")
    ifnames.add((sandbox, ifname))
    if host_ifname:
        _ifname(host_ifname, ".host_ifname")
        if host_ifname in host_ifnames:
            raise BadRecord(".host_ifname", f"{host_ifname} is the host link of two endpoints")
        host_ifnames.add(host_ifname)
    if not _MAC.fullmatch(ep["mac"]):
        raise BadRecord(".mac", f"{ep['mac']!r} is not a MAC address (six lower-case hex pairs)")
    for j, cidr in enumerate(ep["addresses"]):
        if type(cidr) is not str:
            raise BadRecord(f".addresses[{j}]", f"{cidr!r} is not a string")
        address, _, prefix = cidr.partition("/")
        family, ip = _packed(address, f".addresses[{j}]")
        for version, base, mask, reserved in by_prefix.get(prefix, ()):
            if version == family and ip & mask == base:
                break
        else:
            raise BadRecord(f".addresses[{j}]", f"{cidr!r} is not an address/prefix of a subnet of network {network}")
        if ip in reserved:
            raise BadRecord(f".addresses[{j}]", f"{address} is the network, broadcast or gateway address of its subnet")
        if (network, family, ip) in used:
            raise BadRecord(f".addresses[{j}]", f"{address} is also the address of {used[network, family, ip]}")
        used[network, family, ip] = f"endpoints[{i}]"
    if "limits" in ep:
        try:
            _check_limits(ep["limits"])
        except BadRecord as e:
            raise e.inside(".limits") from None
    if "device" in ep:
        try:
            _check_device(ep["device"], host_ifnames)
        except BadRecord as e:
            raise e.inside(".device") from None


def _check_device(device: dict, host_ifnames: set) -> None:
    """A hostdev endpoint's host link as it was: what detach gives it back as.
    host_ifnames: the host links of the endpoints before (the device's name is one)."""
    DEVICE.check(device)
    _ifname(device["name"], ".name")
    if device["name"] in host_ifnames:
        raise BadRecord(".name", f"{device['name']} is the host link of two endpoints")
    host_ifnames.add(device["name"])
    if not 68 <= device["mtu"] <= 65535:
        raise BadRecord(".mtu", f"{device['mtu']} is not an MTU (68-65535)")
    if not _MAC.fullmatch(device["mac"]):
        raise BadRecord(".mac", f"{device['mac']!r} is not a MAC address (six lower-case hex pairs)")


def _check_limits(limits: dict) -> None:
    """Rates and bursts as cnet.bandwidth plans them: a burst for each rate, none without."""
    from .bandwidth import MAX_BUCKET_SECONDS, MAX_RATE, MIN_RATE

    LIMITS.check(limits)
    if not limits:
        raise BadRecord("", "is empty (an endpoint without limits has no 'limits')")
    for direction in ("ingress", "egress"):
        rate, burst = limits.get(f"{direction}_rate"), limits.get(f"{direction}_burst")
        if (rate is None) != (burst is None):
            raise BadRecord(f".{direction}_rate" if rate is None else f".{direction}_burst",
                            f"is missing: a {direction} limit has a rate and a burst")
        if rate is None:
            continue
        if not MIN_RATE <= rate <= MAX_RATE:
            raise BadRecord(f".{direction}_rate", f"{rate} is not a rate from {MIN_RATE} to {MAX_RATE} bit/s")
        if burst < 1 or burst / (rate / 8) > MAX_BUCKET_SECONDS:
            raise BadRecord(f".{direction}_burst", f"{burst} is not a burst of 1 byte to "
                            f"{MAX_BUCKET_SECONDS:.0f} s of traffic at the rate")


def _check_port(p, endpoints: set, taken: dict, host_ips: dict) -> None:
    """endpoints: the (sandbox, network) of every endpoint; taken: (protocol,
    family, host port) -> the host addresses it is published on by the ports
    before this one; host_ips: the host addresses parsed so far."""
    PORT.check(p)
    if (p["sandbox"], p["network"]) not in endpoints:
        raise BadRecord("", f"sandbox {p['sandbox']} has no endpoint on network {p['network']}")
    if p["protocol"] not in PROTOCOLS:
        raise BadRecord(".protocol", f"{p['protocol']!r} is not one of {', '.join(PROTOCOLS)}")
    host_ip = host_ips.get(p["host_ip"])
    if host_ip is None:
        host_ip = host_ips[p["host_ip"]] = _ip(p["host_ip"], ".host_ip")
    count = p.get("count", 1)
    if count < 1:
        raise BadRecord(".count", f"{count} is not a number of ports (1 or more)")
    for field in ("host_port", "port"):
        if not (1 <= p[field] and p[field] + count - 1 <= 65535):
            raise BadRecord(f".{field}", f"{p[field]} (and {count} ports from it) is not in 1-65535")
    # core/ports.py's rule (_overlap), per host port rather than per pair of
    # mappings (quadratic): one host port of one protocol and family is mapped
    # once per address, and "any address" clashes with every address.
    for port in range(p["host_port"], p["host_port"] + count):
        ips = taken.setdefault((p["protocol"], host_ip.version, port), set())
        if ips and (host_ip in ips or host_ip.is_unspecified or any(ip.is_unspecified for ip in ips)):
            raise BadRecord("", f"host port {port}/{p['protocol']} on {p['host_ip']} is published twice")
        ips.add(host_ip)
