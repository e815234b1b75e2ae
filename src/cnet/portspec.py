"""The `-p` grammar of `docker run`, as `cnet publish` takes it. Pure.

    [HOST_IP:][HOST_PORT[-END]:]PORT[-END][/tcp|udp|sctp]

IPv6 host addresses go in brackets: `[::1]:8080:80`, `[2001:db8::1]::80`.
A missing host port (`80`, `127.0.0.1::80`) means "pick a free one".
"""

from __future__ import annotations

import ipaddress
from collections import namedtuple

from .errors import InvalidInput

PROTOCOLS = ("tcp", "udp", "sctp")


class PortSpec(namedtuple("PortSpec", "protocol port count host_ip host_port")):
    """protocol; port: the first sandbox port; count: how many consecutive
    ports; host_ip: None for every host address (of each family the endpoint
    has); host_port: None to pick a free one."""

    __slots__ = ()


def _port(text: str, spec: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise InvalidInput(f"port spec {spec!r}: {text!r} is not a port number")
    n = int(text)
    if not 1 <= n <= 65535:
        raise InvalidInput(f"port spec {spec!r}: port {n} is out of range (1-65535)")
    return n


def _range(text: str, spec: str) -> tuple[int, int]:
    first, sep, last = text.partition("-")
    lo = _port(first, spec)
    hi = _port(last, spec) if sep else lo
    if hi < lo:
        raise InvalidInput(f"port spec {spec!r}: range {text} is reversed")
    return lo, hi - lo + 1


def parse(spec: str) -> PortSpec:
    text, _, protocol = spec.partition("/")
    protocol = protocol or "tcp"
    if protocol not in PROTOCOLS:
        raise InvalidInput(f"port spec {spec!r}: unknown protocol {protocol!r} (tcp, udp or sctp)")
    host_ip = None
    if text.startswith("["):
        close = text.find("]")
        rest = text[close + 1:] if close > 0 else ""
        if not rest.startswith(":") or rest.count(":") != 2:
            raise InvalidInput(f"port spec {spec!r}: an IPv6 host address is written"
                               " [ADDRESS]:HOST_PORT:PORT or [ADDRESS]::PORT")
        host_ip = _address(text[1:close], spec, version=6)
        parts = rest[1:].split(":")
    else:
        parts = text.split(":")
        if len(parts) > 3:
            raise InvalidInput(f"port spec {spec!r}: too many ':' (IPv6 host addresses go in brackets)")
        if len(parts) == 3:
            host_ip = _address(parts[0], spec, version=4)
            parts = parts[1:]
    host_text, port_text = parts if len(parts) == 2 else ("", parts[0])
    if not port_text:
        raise InvalidInput(f"port spec {spec!r}: the sandbox port is missing")
    port, count = _range(port_text, spec)
    host_port = None
    if host_text:
        host_port, host_count = _range(host_text, spec)
        if host_count != count:
            raise InvalidInput(f"port spec {spec!r}: the host range has {host_count} ports"
                               f" and the sandbox range {count}")
    elif count > 1:
        raise InvalidInput(f"port spec {spec!r}: a range of sandbox ports needs a host range of the same length")
    return PortSpec(protocol, port, count, host_ip, host_port)


def _address(text: str, spec: str, version: int) -> str:
    """The host address in its canonical text, so that equal addresses compare equal."""
    if "%" in text:
        raise InvalidInput(f"port spec {spec!r}: a host address with a zone ({text}) cannot be published")
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidInput(f"port spec {spec!r}: {text!r} is not an IP address") from None
    if ip.version != version:
        if version == 4:
            raise InvalidInput(f"port spec {spec!r}: IPv6 host addresses go in brackets, e.g. [{text}]:8080:80")
        raise InvalidInput(f"port spec {spec!r}: an IPv4 host address is written without brackets, e.g. {text}:8080:80")
    return str(ip)


def format_mapping(host_ip: str, host_port: int, port: int, protocol: str) -> str:
    """One published port as `docker port` shows it: 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp."""
    shown = f"[{host_ip}]" if ":" in host_ip else host_ip
    return f"{shown}:{host_port}->{port}/{protocol}"

