"""The objects cnet records, as plain data (libnetwork's CNM made concrete).

A network is a driver's L2/L3 segment, a sandbox a named network namespace,
an endpoint one attachment of a sandbox to a network, a port mapping one
published port. These classes know how to become the plain dicts of the state
file and back; they know nothing of the kernel.

They are values: named tuples (collections.namedtuple), so equal field by
field, hashable when their fields are, and immutable. An operation that
changes one makes a new one (replace(), below) and puts it in the state in
place of the old. A copy of a state can therefore share its objects, and a
diff of two states is a set difference (firewall/plan.py). Their list fields
are tuples here (the state file still holds JSON arrays); a network's
subnets and options, which are never hashed, stay a list and a dict.

Named tuples, not dataclasses: the `dataclasses` module imports `inspect`,
and each class it makes execs several generated methods. That was ~20 ms of
every cnet command and of every cnet-cni call (docs/design-notes.md).
"""

from __future__ import annotations

import copy
from collections import namedtuple


def replace(value, **changes):
    """A copy of a model object with these fields changed, made through its
    constructor (so a list given for a tuple field becomes a tuple): what
    dataclasses.replace was for these classes."""
    return type(value)(**{**value._asdict(), **changes})


class Subnet(namedtuple("Subnet", "subnet gateway ip_range last", defaults=(None, None))):
    """One subnet of a network and its IPAM cursor.

    subnet: CIDR, e.g. "172.26.0.0/16"; gateway: address only, e.g.
    "172.26.0.1"; ip_range: a CIDR inside subnet that endpoints are drawn
    from, or None; last: the last address handed out (allocation continues
    after it), or None."""

    __slots__ = ()

    @property
    def prefixlen(self) -> int:
        return int(self.subnet.rpartition("/")[2])

    @property
    def gateway_cidr(self) -> str:
        return f"{self.gateway}/{self.prefixlen}"


class Network(namedtuple("Network", "name driver subnets mtu internal masquerade options created")):
    """name, driver; subnets: a list of Subnet; mtu; internal: no traffic in
    or out but its own; masquerade; options: the driver's (a dict); created:
    ISO 8601, UTC. Never hashed: its subnets and options are a list and a dict."""

    __slots__ = ()

    def __new__(cls, name: str, driver: str, subnets: list, mtu: int, internal: bool = False,
                masquerade: bool = True, options: dict | None = None, created: str = ""):
        return tuple.__new__(cls, (name, driver, list(subnets), mtu, internal, masquerade,
                                   {} if options is None else options, created))

    def to_dict(self) -> dict:
        d = self._asdict()
        d["subnets"] = [s._asdict() for s in self.subnets]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Network:
        d = dict(d)
        d["subnets"] = [Subnet(**s) for s in d.get("subnets", ())]
        return cls(**d)

    def same_definition(self, other: Network) -> bool:
        """True when two networks were asked for with the same settings
        (the IPAM cursor and creation time aside): what --exist-ok compares."""
        mine = [(s.subnet, s.gateway, s.ip_range) for s in self.subnets]
        theirs = [(s.subnet, s.gateway, s.ip_range) for s in other.subnets]
        return (self.driver, mine, self.mtu, self.internal, self.masquerade, self.options) == (
            other.driver, theirs, other.mtu, other.internal, other.masquerade, other.options)


class _Record:
    """What the sandbox, endpoint and port mapping share: they are the
    thousands of objects of a large state file, read and written often.
    _tuples: the positions of their fields that are tuples here and lists in
    the state file."""

    __slots__ = ()
    _tuples: tuple[int, ...] = ()

    def to_dict(self) -> dict:
        """The state file's dict (what the file holds, lists as lists)."""
        d = self._asdict()
        for i in self._tuples:
            name = self._fields[i]
            d[name] = list(d[name])
        return d

    @classmethod
    def from_dict(cls, d: dict):
        """cls(**d), quicker for the thousands of objects of a state file: a
        dict with exactly the class's fields becomes a tuple at once, its
        lists made tuples; any other goes through the constructor, which
        fills in defaults and raises TypeError for a field unknown or missing."""
        if d.keys() != cls._keys:
            return cls(**d)
        values = [d[name] for name in cls._fields]
        for i in cls._tuples:
            values[i] = tuple(values[i])
        return tuple.__new__(cls, values)


class Sandbox(_Record, namedtuple("Sandbox", "name mode target dns hosts hostname created")):
    """name; mode: none | joined | adopted | host | router; target: joined:
    the sandbox that owns the stack, adopted: the namespace path, else None;
    dns: nameservers; hosts: "HOST:IP" entries; hostname, or None; created:
    ISO 8601, UTC."""

    __slots__ = ()
    _tuples = (3, 4)

    def __new__(cls, name: str, mode: str = "none", target: str | None = None, dns=(), hosts=(),
                hostname: str | None = None, created: str = ""):
        return tuple.__new__(cls, (name, mode, target, tuple(dns), tuple(hosts), hostname, created))


class Limits(namedtuple("Limits", "ingress_rate ingress_burst egress_rate egress_burst", defaults=(None,) * 4)):
    """An endpoint's bandwidth limits, directions as the sandbox sees them:
    ingress is the traffic into the sandbox, egress the traffic out of it.
    Rates in bit/s, bursts in bytes; a direction without a rate is not
    shaped (and then has no burst either). The state file holds only the
    fields that are set."""

    __slots__ = ()

    def to_dict(self) -> dict:
        return {k: v for k, v in zip(self._fields, self) if v is not None}

    @classmethod
    def from_dict(cls, d: dict) -> Limits:
        return cls(**d)


class HostDevice(namedtuple("HostDevice", "name mtu mac up alias", defaults=("",))):
    """A host link that a hostdev endpoint moved into its sandbox, as it was
    on the host: what detach gives back (drivers/hostdev.py). Its ifalias is
    kept only when it had one."""

    __slots__ = ()

    def to_dict(self) -> dict:
        d = self._asdict()
        if not d["alias"]:
            del d["alias"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> HostDevice:
        return cls(**d)


class Endpoint(_Record, namedtuple("Endpoint", "sandbox network ifname host_ifname mac addresses limits device")):
    """sandbox, network; ifname: its name inside the sandbox (eth0, eth1,
    ...); host_ifname: the host-side link its driver made (a bridge: the
    veth's host end), or ""; mac; addresses: CIDRs, e.g. ("172.26.0.2/16",);
    limits: Limits or None; device: a hostdev endpoint's host link as it was
    before it moved (HostDevice), or None. The state file holds limits and
    device only when they are set."""

    __slots__ = ()
    _tuples = (5,)
    _optional = {"limits": Limits, "device": HostDevice}

    def __new__(cls, sandbox: str, network: str, ifname: str, host_ifname: str, mac: str, addresses,
                limits: Limits | None = None, device: HostDevice | None = None):
        return tuple.__new__(cls, (sandbox, network, ifname, host_ifname, mac, tuple(addresses), limits, device))

    def to_dict(self) -> dict:
        d = super().to_dict()
        for name in self._optional:
            value = d.pop(name)
            if value is not None:
                d[name] = value.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Endpoint:
        if d.keys() == cls._keys:  # the common case: neither limits nor device
            return tuple.__new__(cls, (d["sandbox"], d["network"], d["ifname"], d["host_ifname"], d["mac"],
                                       tuple(d["addresses"]), None, None))
        return cls(**{**d, **{name: kind.from_dict(d[name]) for name, kind in cls._optional.items()
                              if d.get(name) is not None}})


class PortMapping(_Record, namedtuple("PortMapping", "sandbox network protocol host_ip host_port port count")):
    """sandbox, network; protocol: tcp | udp | sctp; host_ip: "0.0.0.0",
    "::" or one address; host_port; port: the sandbox's; count: a range maps
    host_port..host_port+count-1 to port..port+count-1."""

    __slots__ = ()

    def __new__(cls, sandbox: str, network: str, protocol: str, host_ip: str, host_port: int, port: int,
                count: int = 1):
        return tuple.__new__(cls, (sandbox, network, protocol, host_ip, host_port, port, count))


# The keys of a state-file record that from_dict turns into an object at once.
Sandbox._keys = frozenset(Sandbox._fields)
Endpoint._keys = frozenset(Endpoint._fields) - {"limits", "device"}  # an endpoint without them
PortMapping._keys = frozenset(PortMapping._fields)
_PLAIN_ENDPOINT = Endpoint._fields[:-2]


def record_dicts(records: list) -> list[dict]:
    """[r.to_dict() for r in records] for sandboxes, endpoints and port
    mappings, ~3x quicker (a save of a state of 10,000 endpoints makes
    30,000), and with their tuples left tuples, which JSON writes as arrays."""
    return [dict(zip(_PLAIN_ENDPOINT, r)) if type(r) is Endpoint and r[6] is None and r[7] is None
            else r.to_dict() if type(r) is Endpoint else dict(zip(r._fields, r)) for r in records]


class State:
    """Everything cnet owns. The kernel is made to match it.

    Operations replace networks, sandboxes, endpoints and port mappings (new
    objects) and never change them in place: copy() (and so the state a
    batch restores after a failed line, and the one a StateStore keeps)
    shares them. Only its containers and the host record are the
    operation's own to change.

    host: what cnet did to the host itself: the firewall backend its rules
    are in, and the sysctls it changed with their values before (restored
    with the last network)."""

    __slots__ = ("networks", "sandboxes", "endpoints", "ports", "host")

    def __init__(self, networks: dict[str, Network] | None = None, sandboxes: dict[str, Sandbox] | None = None,
                 endpoints: list[Endpoint] | None = None, ports: list[PortMapping] | None = None,
                 host: dict | None = None):
        self.networks = {} if networks is None else networks
        self.sandboxes = {} if sandboxes is None else sandboxes
        self.endpoints = [] if endpoints is None else endpoints
        self.ports = [] if ports is None else ports
        self.host = {} if host is None else host

    def _parts(self) -> tuple:
        return self.networks, self.sandboxes, self.endpoints, self.ports, self.host

    def __eq__(self, other) -> bool:
        return self._parts() == other._parts() if type(other) is State else NotImplemented

    __hash__ = None  # changed in place: not a value

    def __repr__(self) -> str:
        return ("State(" + ", ".join(f"{name}={value!r}" for name, value in zip(self.__slots__, self._parts()))
                + ")")

    def endpoints_of_network(self, name: str) -> list[Endpoint]:
        return [e for e in self.endpoints if e.network == name]

    def endpoints_of_sandbox(self, name: str) -> list[Endpoint]:
        return [e for e in self.endpoints if e.sandbox == name]

    def owner(self, name: str) -> str:
        """The sandbox that holds the stack `name` uses: itself, or the one it joined."""
        sb = self.sandboxes[name]
        return sb.target if sb.mode == "joined" else name

    def joiners(self, name: str) -> list[str]:
        return [s.name for s in self.sandboxes.values() if s.mode == "joined" and s.target == name]

    def copy(self) -> State:
        """A state that can be changed without changing this one: its own
        containers and host record (whose sysctls an operation changes in
        place). The networks, sandboxes, endpoints and port mappings are
        shared: they are replaced, never changed, so no deep copy is needed
        (a planner returns a network with its IPAM cursor moved)."""
        return State(dict(self.networks), dict(self.sandboxes), list(self.endpoints), list(self.ports),
                     copy.deepcopy(self.host))

    def restore(self, saved: State) -> None:
        """Back to a copy() taken before, in this same object (operations hold it)."""
        self.networks, self.sandboxes = saved.networks, saved.sandboxes
        self.endpoints, self.ports, self.host = saved.endpoints, saved.ports, saved.host

    def to_dict(self) -> dict:
        return {
            "networks": {n: v.to_dict() for n, v in self.networks.items()},
            "sandboxes": {n: v.to_dict() for n, v in self.sandboxes.items()},
            "endpoints": [e.to_dict() for e in self.endpoints],
            "ports": [p.to_dict() for p in self.ports],
            "host": self.host,
        }

    @classmethod
    def from_dict(cls, d: dict) -> State:
        """Build from the state file's dict; raises TypeError/KeyError/ValueError
        on a malformed document (the caller names the file)."""
        return cls(
            networks={n: Network.from_dict(v) for n, v in (d.get("networks") or {}).items()},
            sandboxes={n: Sandbox.from_dict(v) for n, v in (d.get("sandboxes") or {}).items()},
            endpoints=[Endpoint.from_dict(e) for e in d.get("endpoints") or ()],
            ports=[PortMapping.from_dict(p) for p in d.get("ports") or ()],
            host=dict(d.get("host") or {}),
        )
