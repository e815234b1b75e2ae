"""IP address management for one subnet: pure computation, no I/O.

Policy
------
* The network address is never handed out (for IPv6 it is the subnet-router
  anycast address), nor is the IPv4 broadcast address.  IPv6 has no broadcast,
  so the last address of an IPv6 subnet is allocatable.
* The gateway defaults to the first host address (network address + 1) and is
  never handed out, even when it lies inside ``ip_range``.
* Automatic allocation scans ``ip_range`` if given, else the whole subnet, and
  works like the CNI host-local plugin: take the next free address after the
  one handed out last, wrapping around to the start of the range at its end.
  A released address is therefore not reused until the scan comes round again.
* A pinned address (``--ip``) may be anywhere in the subnet, also outside
  ``ip_range``, but never the network, broadcast or gateway address.
* A pool that could never hand out a single address is refused, so IPv4 /31,
  /32 and IPv6 /127, /128 are invalid; a /30 holds a gateway and one endpoint.

The caller passes in the set of addresses in use; the pool keeps no state.
"""

import ipaddress
import socket
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from cnet.errors import Conflict, InvalidInput

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network


def parse_cidr(text, what: str = "subnet") -> Network:
    """Parse ``ADDRESS/PREFIX`` strictly; ``what`` names the value in errors."""
    if isinstance(text, (IPv4Network, IPv6Network)):
        return text
    if not isinstance(text, str) or "/" not in text:
        raise InvalidInput(f"{what} {text!r} is not a valid CIDR (expected ADDRESS/PREFIX)")
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError:
        pass
    try:
        meant = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not a valid CIDR (expected ADDRESS/PREFIX)") from None
    raise InvalidInput(f"{what} {text} has host bits set (did you mean {meant}?)")


# Blocks no network of a host can be made of: (block, what it is). A subnet
# that overlaps one (holds part of it, or lies inside it) is refused.
_UNUSABLE = [(ipaddress.ip_network(block), what) for block, what in (
    ("0.0.0.0/8", "'this network' block (0.0.0.0/8), which no host address comes from"),
    ("127.0.0.0/8", "loopback network (127.0.0.0/8): each namespace has its own on lo"),
    ("169.254.0.0/16", "link-local network (169.254.0.0/16), which routers never forward"),
    ("224.0.0.0/4", "multicast range (224.0.0.0/4)"),
    ("240.0.0.0/4", "reserved range (240.0.0.0/4, class E and the broadcast address)"),
    ("::1/128", "loopback address (::1)"),
    ("::ffff:0:0/96", "IPv4-mapped IPv6 range (::ffff:0:0/96), which stands for IPv4 addresses"),
    ("::/8", "reserved IPv6 range (::/8: unspecified, loopback, IPv4-compatible)"),
    ("fe80::/10", "IPv6 link-local range (fe80::/10): every link has its own, the kernel gives it"),
    ("fec0::/10", "deprecated site-local IPv6 range (fec0::/10)"),
    ("ff00::/8", "IPv6 multicast range (ff00::/8)"),
)]


def check_usable(subnet: Network, what: str = "--subnet") -> None:
    """InvalidInput if no host could use the subnet for a network of its own."""
    if subnet.prefixlen == 0:
        raise InvalidInput(f"{what} {subnet} is every address (a default route), not a network")
    for block, kind in _UNUSABLE:
        if subnet.version == block.version and subnet.overlaps(block):
            inside = "is" if subnet.subnet_of(block) else "overlaps"
            raise InvalidInput(f"{what} {subnet} {inside} the {kind}; choose a private range such as"
                               f" {'10.0.0.0/8 or 172.16.0.0/12' if subnet.version == 4 else 'fd00::/8'}")


def overlaps(a: Network, b: Network) -> bool:
    """True if the two networks share an address; different versions never do."""
    return a.version == b.version and a.overlaps(b)


def _parse_ip(text, what: str) -> Address:
    if isinstance(text, (IPv4Address, IPv6Address)):
        return text
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidInput(f"{what}{text!r} is not a valid IP address") from None
    if getattr(ip, "scope_id", None):
        raise InvalidInput(f"{what}{text} must not carry a zone index")
    return ip


def _version_word(v: int) -> str:
    return f"IPv{v}"


class SubnetPool:
    """Address pool of one subnet with a gateway and an optional allocation range."""

    def __init__(self, subnet: str, gateway: str | None = None, ip_range: str | None = None):
        self.subnet: Network = parse_cidr(subnet, "subnet")
        self.version: int = self.subnet.version
        self.prefixlen: int = self.subnet.prefixlen
        # Checked before the gateway so a /31 or /32 does not get a confusing
        # "gateway is the broadcast address / outside the subnet" message.
        if self.subnet.max_prefixlen - self.prefixlen < 2:
            raise self._too_small("subnet", self.subnet)
        if gateway is None:
            self.gateway: Address = self.subnet.network_address + 1
        else:
            self.gateway = self._check_gateway(gateway)
        self.ip_range: Network | None = None
        if ip_range is not None:
            rng = parse_cidr(ip_range, "ip_range")
            if rng.version != self.version:
                raise InvalidInput(f"ip_range {rng} is {_version_word(rng.version)} "
                                   f"but subnet {self.subnet} is {_version_word(self.version)}")
            if not rng.subnet_of(self.subnet):
                raise InvalidInput(f"ip_range {rng} is not inside subnet {self.subnet}")
            self.ip_range = rng
        if self.capacity() == 0:
            if self.ip_range is not None:
                raise self._too_small("ip_range", self.ip_range)
            raise self._too_small("subnet", self.subnet)

    def _too_small(self, what: str, net: Network) -> InvalidInput:
        return InvalidInput(f"{what} {net} is too small: it must hold a gateway "
                            f"and at least one endpoint")

    def _check_gateway(self, text) -> Address:
        gw = _parse_ip(text, "gateway ")
        if gw.version != self.version:
            raise InvalidInput(f"gateway {gw} is {_version_word(gw.version)} "
                               f"but subnet {self.subnet} is {_version_word(self.version)}")
        if gw not in self.subnet:
            raise InvalidInput(f"gateway {gw} is outside subnet {self.subnet}")
        if gw == self.subnet.network_address:
            raise InvalidInput(f"gateway {gw} is the network address of {self.subnet}")
        if self.version == 4 and gw == self.subnet.broadcast_address:
            raise InvalidInput(f"gateway {gw} is the broadcast address of {self.subnet}")
        return gw

    def _scan_net(self) -> Network:
        return self.ip_range if self.ip_range is not None else self.subnet

    def _describe_scan(self) -> str:
        if self.ip_range is not None:
            return f"ip_range {self.ip_range} of subnet {self.subnet}"
        return f"subnet {self.subnet}"

    def _addr(self, n: int) -> Address:
        return IPv4Address(n) if self.version == 4 else IPv6Address(n)

    def reserved(self) -> frozenset:
        """Addresses never handed out: network, gateway and (IPv4) broadcast."""
        res = {self.subnet.network_address, self.gateway}
        if self.version == 4:
            res.add(self.subnet.broadcast_address)
        return frozenset(res)

    def first_last(self) -> tuple[int, int]:
        """Inclusive integer bounds of the allocation scan, network/broadcast excluded."""
        net = self._scan_net()
        first = max(int(net.network_address), int(self.subnet.network_address) + 1)
        last = int(net.broadcast_address)
        if self.version == 4:
            last = min(last, int(self.subnet.broadcast_address) - 1)
        return first, last

    def capacity(self) -> int:
        """How many addresses allocate() can ever hand out."""
        first, last = self.first_last()
        if first > last:
            return 0
        return last - first + 1 - (first <= int(self.gateway) <= last)

    def _normalise(self, used) -> set[int]:
        """The used addresses of this pool's version, as integers. Strings go
        through inet_pton, ~20x quicker than ipaddress: this runs over every
        endpoint of the network on each allocation."""
        family = socket.AF_INET if self.version == 4 else socket.AF_INET6
        ints = set()
        for u in used:
            if isinstance(u, str):
                if (":" in u) != (self.version == 6):
                    continue
                try:
                    ints.add(int.from_bytes(socket.inet_pton(family, u), "big"))
                    continue
                except OSError:
                    pass  # not a plain address: the slow path says what is wrong
            ip = _parse_ip(u, "used address ")
            if ip.version == self.version:
                ints.add(int(ip))
        return ints

    def allocate(self, used, last=None) -> Address:
        """Next free address after ``last``, wrapping around; Conflict if none is left."""
        first, final = self.first_last()
        taken = self._normalise(used)
        taken.update(int(r) for r in self.reserved())
        start = first
        if last is not None:
            prev = _parse_ip(last, "last address ")
            if prev.version == self.version and first <= int(prev) <= final:
                start = int(prev) + 1 if int(prev) < final else first
        # Only len(taken) candidates can be bad, so checking one more than that
        # (or the whole range if smaller) either finds a free one or proves the
        # range full, without ever walking a 2**64-sized IPv6 range.
        steps = min(final - first + 1, len(taken) + 1)
        n = start
        for _ in range(steps):
            if n not in taken:
                return self._addr(n)
            n = n + 1 if n < final else first
        raise Conflict(f"no free address left in {self._describe_scan()}")

    def check_request(self, ip, used) -> Address:
        """Validate a pinned address: inside the subnet, not reserved, not in use."""
        addr = _parse_ip(ip, "")
        if addr.version != self.version:
            raise InvalidInput(f"{addr} is an {_version_word(addr.version)} address "
                               f"but subnet {self.subnet} is {_version_word(self.version)}")
        if addr not in self.subnet:
            raise InvalidInput(f"{addr} is outside subnet {self.subnet}")
        if addr == self.subnet.network_address:
            raise InvalidInput(f"{addr} is the network address of {self.subnet}")
        if self.version == 4 and addr == self.subnet.broadcast_address:
            raise InvalidInput(f"{addr} is the broadcast address of {self.subnet}")
        if addr == self.gateway:
            raise InvalidInput(f"{addr} is the gateway address of {self.subnet}")
        if int(addr) in self._normalise(used):
            raise Conflict(f"address {addr} is already in use")
        return addr
