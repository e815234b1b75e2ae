"""Every record of a state file checked before cnet believes it.

The state file is the truth cnet makes the kernel match, so a record it
cannot have written (a subnet "banana", a port "abc", an endpoint of a
network that is not there, a key that is not the name) is reported with its
place in the file, and the file is left alone: no command acts on it, and
none rewrites it with the bad value or blames the user's arguments for it.
Pure: the document as parsed, no kernel, no other file.
"""

from __future__ import annotations

import ipaddress
import re
import socket

from .errors import InvalidInput
from .names import SANDBOX_NAME, check_ifname

_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
_DRIVER = re.compile(r"[a-z][a-z0-9_]*")
_IFNAME_OK = _HOST_IFNAME_OK = re.compile(r"[A-Za-z0-9_.-]{1,15}")
MODES = ("none", "joined", "adopted", "host")
PROTOCOLS = ("tcp", "udp", "sctp")
FIREWALLS = ("nftables", "iptables")


class BadRecord(Exception):
    """path: where in the file ("networks.br0.subnets[0].subnet")."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")


def _fields(record, path: str, schema) -> None:
    """record is a mapping with the schema's required fields, and no fields but
    those and its optional ones, each of its type. Types are compared exactly
    (what json gives: bool is not int), for speed: thousands of records are
    checked at every command."""
    required, types = schema
    if type(record) is not dict:
        raise BadRecord(path, f"is {type(record).__name__}, not a mapping")
    for name, value in record.items():
        allowed = types.get(name)
        if allowed is None:
            raise BadRecord(path, f"has an unknown field {name!r}")
        if type(value) not in allowed:
            raise BadRecord(f"{path}.{name}", f"{value!r} is not {_named(allowed)}")
    if not required <= record.keys():
        missing = sorted(required - record.keys())
        raise BadRecord(path, f"has no {missing[0]!r}")


def _schema(required: dict, optional: dict):
    types = {name: frozenset(type(None) if t is None else t for t in ts) for name, ts in {**required, **optional}.items()}
    return frozenset(required), types


def _named(types) -> str:
    words = {str: "a string", int: "an integer", bool: "true or false", list: "a list", dict: "a mapping",
             type(None): "null"}
    return " or ".join(words[t] for t in sorted(types, key=list(words).index))


def _strings(values, path: str) -> None:
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise BadRecord(f"{path}[{i}]", f"{v!r} is not a string")


def _ip(text: str, path: str):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise BadRecord(path, f"{text!r} is not an IP address") from None


def _packed(text: str, path: str) -> tuple[int, int]:
    """(family, the address as an integer)."""
    for family, af in ((4, socket.AF_INET), (6, socket.AF_INET6)):
        try:
            return family, int.from_bytes(socket.inet_pton(af, text), "big")
        except OSError:
            pass
    raise BadRecord(path, f"{text!r} is not an IP address")


def _network(text: str, path: str):
    try:
        return ipaddress.ip_network(text)
    except ValueError as e:
        raise BadRecord(path, f"{text!r} is not a subnet in CIDR form ({e})") from None


S, I, B, L, D = (str,), (int,), (bool,), (list,), (dict,)
NETWORK = _schema(dict(name=S, driver=S, subnets=L, mtu=I), dict(internal=B, masquerade=B, options=D, created=S))
SUBNET = _schema(dict(subnet=S, gateway=S), dict(ip_range=(str, None), last=(str, None)))
SANDBOX = _schema(dict(name=S), dict(mode=S, target=(str, None), dns=L, hosts=L, hostname=(str, None), created=S))
ENDPOINT = _schema(dict(sandbox=S, network=S, ifname=S, host_ifname=S, mac=S, addresses=L), {})
PORT = _schema(dict(sandbox=S, network=S, protocol=S, host_ip=S, host_port=I, port=I), dict(count=I))


def check(doc: dict) -> None:
    """Raise BadRecord for the first record of doc (the parsed file) that is wrong."""
    for key in doc:
        if key not in ("version", "serial", "networks", "sandboxes", "endpoints", "ports", "host"):
            raise BadRecord(key, "is not a part of a cnet state file")
    sections = {"networks": dict, "sandboxes": dict, "endpoints": list, "ports": list, "host": dict}
    for key, kind in sections.items():
        if doc.get(key) is not None and not isinstance(doc[key], kind):
            raise BadRecord(key, f"is {type(doc[key]).__name__}, not {_named((kind,))}")
    networks = {}
    for name, net in (doc.get("networks") or {}).items():
        networks[name] = _check_network(name, net, f"networks.{name}")
    sandboxes = doc.get("sandboxes") or {}
    for name, sb in sandboxes.items():
        _check_sandbox(name, sb, sandboxes, f"sandboxes.{name}")
    endpoints = set()
    used = {}  # (network, address) -> the endpoint's path
    host_ifnames, ifnames = set(), set()
    for i, ep in enumerate(doc.get("endpoints") or ()):
        path = f"endpoints[{i}]"
        _fields(ep, path, ENDPOINT)
        key = (ep["sandbox"], ep["network"])
        sb = sandboxes.get(ep["sandbox"])
        if sb is None:
            raise BadRecord(f"{path}.sandbox", f"{ep['sandbox']!r} is not a sandbox of the file")
        if sb.get("mode", "none") in ("joined", "host"):
            raise BadRecord(f"{path}.sandbox", f"sandbox {ep['sandbox']} is {sb['mode']}: its endpoints are its owner's")
        if ep["network"] not in networks:
            raise BadRecord(f"{path}.network", f"{ep['network']!r} is not a network of the file")
        if key in endpoints:
            raise BadRecord(path, f"a second endpoint of sandbox {key[0]} on network {key[1]}")
        endpoints.add(key)
        _ifname(ep["ifname"], f"{path}.ifname")
        if (ep["sandbox"], ep["ifname"]) in ifnames:
            raise BadRecord(f"{path}.ifname", f"sandbox {ep['sandbox']} has two endpoints named {ep['ifname']}")
        ifnames.add((ep["sandbox"], ep["ifname"]))
        if ep["host_ifname"]:
            if not _HOST_IFNAME_OK.fullmatch(ep["host_ifname"]):
                raise BadRecord(f"{path}.host_ifname", f"{ep['host_ifname']!r} is not an interface name")
            if ep["host_ifname"] in host_ifnames:
                raise BadRecord(f"{path}.host_ifname", f"{ep['host_ifname']} is the host link of two endpoints")
            host_ifnames.add(ep["host_ifname"])
        if not _MAC.fullmatch(ep["mac"]):
            raise BadRecord(f"{path}.mac", f"{ep['mac']!r} is not a MAC address (six lower-case hex pairs)")
        _strings(ep["addresses"], f"{path}.addresses")
        for j, cidr in enumerate(ep["addresses"]):
            where = f"{path}.addresses[{j}]"
            address, _, prefix = cidr.partition("/")
            ip = _packed(address, where)  # inet_pton: ~10x quicker than ipaddress, for thousands of addresses
            if not any(ip[0] == family and ip[1] & mask == base and prefix == length
                       for family, base, mask, length in networks[ep["network"]]):
                raise BadRecord(where, f"{cidr!r} is not an address/prefix of a subnet of network {ep['network']}")
            if (ep["network"], ip) in used:
                raise BadRecord(where, f"{address} is also the address of {used[ep['network'], ip]}")
            used[ep["network"], ip] = path
    taken = {}  # (protocol, family, host port) -> the host addresses it is published on
    for i, p in enumerate(doc.get("ports") or ()):
        _check_port(p, endpoints, taken, f"ports[{i}]")
    host = doc.get("host") or {}
    if host.get("firewall") is not None and host["firewall"] not in FIREWALLS:
        raise BadRecord("host.firewall", f"{host['firewall']!r} is not one of {', '.join(FIREWALLS)}")
    sysctls = host.get("sysctls", {})
    if not isinstance(sysctls, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in sysctls.items()):
        raise BadRecord("host.sysctls", "is not a mapping of sysctl names to values")


def _ifname(name: str, path: str) -> None:
    if _IFNAME_OK.fullmatch(name) and name not in (".", ".."):
        return  # the common case, without check_ifname's character sets
    try:
        check_ifname(name, "interface name")
    except InvalidInput as e:
        raise BadRecord(path, str(e)) from None


def _check_network(name: str, net, path: str) -> list:
    _fields(net, path, NETWORK)
    if net["name"] != name:
        raise BadRecord(f"{path}.name", f"{net['name']!r} differs from its key {name!r}")
    _ifname(name, f"{path}.name")
    if not _DRIVER.fullmatch(net["driver"]):
        raise BadRecord(f"{path}.driver", f"{net['driver']!r} is not a driver name")
    if not 68 <= net["mtu"] <= 65535:
        raise BadRecord(f"{path}.mtu", f"{net['mtu']} is not an MTU (68-65535)")
    found = []
    for i, s in enumerate(net["subnets"]):
        where = f"{path}.subnets[{i}]"
        _fields(s, where, SUBNET)
        subnet = _network(s["subnet"], f"{where}.subnet")
        if any(subnet.overlaps(other) for other in found):
            raise BadRecord(f"{where}.subnet", f"{s['subnet']} overlaps another subnet of network {name}")
        gateway = _ip(s["gateway"], f"{where}.gateway")
        if gateway not in subnet or gateway == subnet.network_address or (
                subnet.version == 4 and subnet.prefixlen < 31 and gateway == subnet.broadcast_address):
            raise BadRecord(f"{where}.gateway", f"{s['gateway']} is not a host address of {s['subnet']}")
        if s.get("ip_range") is not None and not _network(s["ip_range"], f"{where}.ip_range").subnet_of(subnet):
            raise BadRecord(f"{where}.ip_range", f"{s['ip_range']} is not inside {s['subnet']}")
        if s.get("last") is not None and _ip(s["last"], f"{where}.last") not in subnet:
            raise BadRecord(f"{where}.last", f"{s['last']} is not inside {s['subnet']}")
        found.append(subnet)
    return [(n.version, int(n.network_address), int(n.netmask), str(n.prefixlen)) for n in found]


def _check_sandbox(name: str, sb, sandboxes: dict, path: str) -> None:
    _fields(sb, path, SANDBOX)
    if sb["name"] != name:
        raise BadRecord(f"{path}.name", f"{sb['name']!r} differs from its key {name!r}")
    if not SANDBOX_NAME.fullmatch(name):
        raise BadRecord(f"{path}.name", f"{name!r} is not a sandbox name")
    mode = sb.get("mode", "none")
    if mode not in MODES:
        raise BadRecord(f"{path}.mode", f"{mode!r} is not one of {', '.join(MODES)}")
    target = sb.get("target")
    if mode == "joined":
        owner = sandboxes.get(target)
        if not isinstance(owner, dict) or owner.get("mode", "none") in ("joined", "host") or target == name:
            raise BadRecord(f"{path}.target", f"{target!r} is not a sandbox of the file that owns its stack")
    elif mode == "adopted":
        if not target or not target.startswith("/"):
            raise BadRecord(f"{path}.target", f"{target!r} is not the path of the namespace it adopted")
    elif target is not None:
        raise BadRecord(f"{path}.target", f"a sandbox of mode {mode} has no target")
    _strings(sb.get("dns", ()), f"{path}.dns")
    for i, ip in enumerate(sb.get("dns", ())):
        _ip(ip, f"{path}.dns[{i}]")
    _strings(sb.get("hosts", ()), f"{path}.hosts")
    for i, entry in enumerate(sb.get("hosts", ())):
        host, sep, ip = entry.partition(":")
        if not sep or not host:
            raise BadRecord(f"{path}.hosts[{i}]", f"{entry!r} is not HOST:IP")
        _ip(ip, f"{path}.hosts[{i}]")


def _check_port(p, endpoints: set, taken: dict, path: str) -> None:
    _fields(p, path, PORT)
    if (p["sandbox"], p["network"]) not in endpoints:
        raise BadRecord(path, f"sandbox {p['sandbox']} has no endpoint on network {p['network']}")
    if p["protocol"] not in PROTOCOLS:
        raise BadRecord(f"{path}.protocol", f"{p['protocol']!r} is not one of {', '.join(PROTOCOLS)}")
    host_ip = _ip(p["host_ip"], f"{path}.host_ip")
    count = p.get("count", 1)
    if count < 1:
        raise BadRecord(f"{path}.count", f"{count} is not a number of ports (1 or more)")
    for field in ("host_port", "port"):
        if not (1 <= p[field] and p[field] + count - 1 <= 65535):
            raise BadRecord(f"{path}.{field}", f"{p[field]} (and {count} ports from it) is not in 1-65535")
    # One host port of one protocol and family is mapped once per address, and
    # "any address" clashes with every address (core/ports.py's rule).
    for port in range(p["host_port"], p["host_port"] + count):
        ips = taken.setdefault((p["protocol"], host_ip.version, port), set())
        if ips and (host_ip in ips or host_ip.is_unspecified or any(ip.is_unspecified for ip in ips)):
            raise BadRecord(path, f"host port {port}/{p['protocol']} on {p['host_ip']} is published twice")
        ips.add(host_ip)
