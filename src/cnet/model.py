"""The objects cnet records, as plain data (libnetwork's CNM made concrete).

A network is a driver's L2/L3 segment, a sandbox a named network namespace,
an endpoint one attachment of a sandbox to a network, a port mapping one
published port. These classes know how to become the plain dicts of the state
file and back; they know nothing of the kernel.

They are values: an operation that changes one makes a new one
(dataclasses.replace) and puts it in the state in place of the old. All but
Network are frozen and hashable (their lists are tuples; the state file
still holds JSON arrays), so a diff of two states is a set difference
(firewall/plan.py) and a copy of a state can share its objects.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class Subnet:
    """One subnet of a network and its IPAM cursor."""

    subnet: str  # CIDR, e.g. "172.26.0.0/16"
    gateway: str  # address only, e.g. "172.26.0.1"
    ip_range: str | None = None  # CIDR inside subnet that endpoints are drawn from
    last: str | None = None  # last address handed out: allocation continues after it

    @property
    def prefixlen(self) -> int:
        return int(self.subnet.rpartition("/")[2])

    @property
    def gateway_cidr(self) -> str:
        return f"{self.gateway}/{self.prefixlen}"


@dataclass
class Network:
    """Replaced, never changed in place, like the others; not frozen only
    because core/network_ops.py sets the subnets of one it has just planned."""

    name: str
    driver: str
    subnets: list[Subnet]
    mtu: int
    internal: bool = False
    masquerade: bool = True
    options: dict = field(default_factory=dict)
    created: str = ""  # ISO 8601, UTC

    def to_dict(self) -> dict:
        d = dict(vars(self))
        d["subnets"] = [dict(vars(s)) for s in self.subnets]
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


class _Value:
    """What the frozen classes below share. _tuples: their fields that are
    tuples here and lists in the state file."""

    _tuples: tuple[str, ...] = ()

    def __post_init__(self):
        for name in self._tuples:  # a tuple, whatever sequence the caller gave
            value = getattr(self, name)
            if type(value) is not tuple:
                object.__setattr__(self, name, tuple(value))

    def to_dict(self) -> dict:
        d = dict(vars(self))  # flat, so no dataclasses.asdict deep copy: thousands are saved often
        for name in self._tuples:
            d[name] = list(d[name])
        return d

    @classmethod
    def from_dict(cls, d: dict):
        """cls(**d), quicker for the thousands of objects of a state file: a
        frozen dataclass's __init__ sets each field through
        object.__setattr__, which made a load of 10,000 sandboxes and
        endpoints ~35 ms slower than with plain classes (this way, ~8 ms).
        A dict with exactly the class's fields is put in place as it is, its
        lists made tuples; any other goes through __init__, which fills in
        defaults and raises TypeError for a field unknown or missing."""
        if d.keys() != _FIELDS[cls]:
            return cls(**d)
        obj = object.__new__(cls)
        attributes = vars(obj)
        attributes.update(d)
        for name in cls._tuples:
            attributes[name] = tuple(d[name])
        return obj


@dataclass(frozen=True)
class Sandbox(_Value):
    name: str
    mode: str = "none"  # none | joined | adopted | host | router
    target: str | None = None  # joined: the sandbox that owns the stack; adopted: the namespace path
    dns: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()  # "HOST:IP" entries
    hostname: str | None = None
    created: str = ""

    _tuples = ("dns", "hosts")


@dataclass(frozen=True)
class Limits:
    """An endpoint's bandwidth limits, directions as the sandbox sees them:
    ingress is the traffic into the sandbox, egress the traffic out of it.
    Rates in bit/s, bursts in bytes; a direction without a rate is not
    shaped (and then has no burst either). The state file holds only the
    fields that are set."""

    ingress_rate: int | None = None
    ingress_burst: int | None = None
    egress_rate: int | None = None
    egress_burst: int | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict) -> Limits:
        return cls(**d)


@dataclass(frozen=True)
class HostDevice:
    """A host link that a hostdev endpoint moved into its sandbox, as it was
    on the host: what detach gives back (drivers/hostdev.py). Its ifalias is
    kept only when it had one."""

    name: str
    mtu: int
    mac: str
    up: bool
    alias: str = ""

    def to_dict(self) -> dict:
        d = dict(vars(self))
        if not d["alias"]:
            del d["alias"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> HostDevice:
        return cls(**d)


@dataclass(frozen=True)
class Endpoint(_Value):
    sandbox: str
    network: str
    ifname: str  # name inside the sandbox: eth0, eth1, ...
    host_ifname: str  # the host-side link its driver made (a bridge: the veth's host end), or ""
    mac: str
    addresses: tuple[str, ...]  # CIDRs, e.g. ("172.26.0.2/16",)
    # Only in the state file when there are limits: an endpoint without them
    # has no "limits" among its attributes (the class attribute says None),
    # so it is written and read as quickly as before limits existed.
    limits: Limits | None = None
    # A hostdev endpoint's host link as it was before it moved (the same way:
    # only in the state file, and among the attributes, when there is one).
    device: HostDevice | None = None

    _tuples = ("addresses",)
    _optional = {"limits": Limits, "device": HostDevice}

    def __post_init__(self):
        super().__post_init__()
        for name in self._optional:
            if getattr(self, name) is None:
                vars(self).pop(name, None)

    def to_dict(self) -> dict:
        d = super().to_dict()
        for name in self._optional:
            value = d.pop(name, None)
            if value is not None:
                d[name] = value.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Endpoint:
        if not any(d.get(name) is not None for name in cls._optional):
            return super().from_dict({k: v for k, v in d.items() if k not in cls._optional}
                                     if cls._optional.keys() & d.keys() else d)
        return cls(**{**d, **{name: kind.from_dict(d[name]) for name, kind in cls._optional.items()
                              if d.get(name) is not None}})


@dataclass(frozen=True)
class PortMapping(_Value):
    sandbox: str
    network: str
    protocol: str  # tcp | udp | sctp
    host_ip: str  # "0.0.0.0", "::" or one address
    host_port: int
    port: int  # the sandbox's port
    count: int = 1  # a range maps host_port..host_port+count-1 to port..port+count-1


_FIELDS = {cls: frozenset(f.name for f in fields(cls)) for cls in (Sandbox, Endpoint, PortMapping)}
_FIELDS[Endpoint] -= {"limits", "device"}  # what an endpoint without them has (see Endpoint.limits)


@dataclass
class State:
    """Everything cnet owns. The kernel is made to match it.

    Operations replace networks, sandboxes, endpoints and port mappings (new
    objects) and never change them in place: copy() (and so the state a
    batch restores after a failed line, and the one a StateStore keeps)
    shares them. Only its containers and the
    host record are the operation's own to change."""

    networks: dict[str, Network] = field(default_factory=dict)
    sandboxes: dict[str, Sandbox] = field(default_factory=dict)
    endpoints: list[Endpoint] = field(default_factory=list)
    ports: list[PortMapping] = field(default_factory=list)
    # What cnet did to the host itself: the firewall backend its rules are in,
    # and the sysctls it changed with their values before (restored with the last network).
    host: dict = field(default_factory=dict)

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
