"""cnet's configuration file.

Default path ``/etc/cnet/config.yaml``; ``--config`` or the ``CNET_CONFIG``
environment variable name another one. Every key is optional; a missing file
at the default path means all defaults, a missing file that was named
explicitly is an error. A key given as ``null`` (or with no value) means its
default. Full reference, with the defaults::

    firewall: nftables        # or iptables
    mtu: 1500                 # MTU of new networks, 68..65535
    dns: []                   # nameservers of sandboxes, e.g. [1.1.1.1, 2606:4700:4700::1111]
    address_pools:            # where subnets of new networks come from, in
      - base: 172.17.0.0/16   # this order; each pool is cut into subnets of
        size: 16              # prefix length `size` (base's prefix length
      # ... 172.18.0.0/16 up  # up to 30 for IPv4, 126 for IPv6)
      # to 172.31.0.0/16, each size 16
      - base: 192.168.0.0/16
        size: 20
    store: etcd://10.0.0.1:2379,10.0.0.2:2379   # overlays' etcd (or $CNET_STORE)
    advertise: 10.0.0.1       # this host's underlay address or interface
    host: node1               # this host's name among the overlay's hosts

Giving ``address_pools`` replaces the default pools entirely; it must not be
an empty list.
"""

import ipaddress
import os
from collections import namedtuple
from collections.abc import Iterable, Iterator
from typing import Any

from cnet.errors import InvalidInput

DEFAULT_CONFIG_PATH = "/etc/cnet/config.yaml"
CONFIG_ENV = "CNET_CONFIG"
FIREWALLS = ("nftables", "iptables")
MTU_MIN, MTU_MAX = 68, 65535

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class AddressPool(namedtuple("AddressPool", "base size")):
    """A range that subnets of new networks are carved from. base: an
    ip_network; size: the prefix length of each subnet carved from it."""

    __slots__ = ()

    def subnets(self) -> Iterator[Network]:
        """Every subnet of the pool, in address order, generated lazily."""
        return self.base.subnets(new_prefix=self.size)


DEFAULT_POOLS: tuple[AddressPool, ...] = tuple(
    AddressPool(ipaddress.IPv4Network(f"172.{i}.0.0/16"), 16) for i in range(17, 32)
) + (AddressPool(ipaddress.IPv4Network("192.168.0.0/16"), 20),)


class Config(namedtuple("Config", "firewall mtu dns address_pools store advertise host",
                        defaults=("nftables", 1500, (), DEFAULT_POOLS, None, None, None))):
    """The settings of config.yaml, a named tuple as the model's classes are
    (model.py says why not a dataclass). dns and address_pools are tuples;
    store, advertise and host are the overlay keys, read as given: their
    meaning is the overlay driver's."""

    __slots__ = ()


def iter_pool_subnets(pools: Iterable[AddressPool]) -> Iterator[Network]:
    """Every candidate subnet: each pool's subnets in turn, in pool order."""
    for pool in pools:
        yield from pool.subnets()


def config_path(explicit: str | None) -> str:
    """The path given explicitly, else $CNET_CONFIG (if non-empty), else the default."""
    return explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH


def with_overrides(config: Config, firewall: str | None = None) -> Config:
    """Config with the command-line overrides that were given applied."""
    if firewall is None:
        return config
    if firewall not in FIREWALLS:
        raise InvalidInput(f"firewall must be one of {', '.join(FIREWALLS)}, not {firewall!r}")
    return config._replace(firewall=firewall)


def load_config(path: str, *, must_exist: bool) -> Config:
    """Read and validate the file at path.

    A missing file means all defaults unless must_exist (the path was given
    explicitly), which makes it an InvalidInput error, like any invalid content.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        if must_exist:
            raise InvalidInput(f"config file {path} does not exist") from None
        return Config()
    except OSError as e:
        raise InvalidInput(f"{path}: cannot read config file: {e.strerror}") from None
    import yaml  # here, not at the top: most commands never read a config file

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        doc = yaml.load(data, Loader=loader)
    except yaml.MarkedYAMLError as e:
        what = ", ".join(str(part) for part in (e.context, e.problem) if part) or "syntax error"
        what = " ".join(what.split())  # one line, whatever yaml put in it
        where = f" at line {e.problem_mark.line + 1}" if e.problem_mark else ""
        raise InvalidInput(f"{path}: invalid YAML{where}: {what}") from None
    except yaml.YAMLError as e:
        raise InvalidInput(f"{path}: invalid YAML: {' '.join(str(e).split())}") from None
    return _parse(path, doc)


def _parse(path: str, doc: Any) -> Config:
    def bad(message: str) -> InvalidInput:
        return InvalidInput(f"{path}: {message}")

    if doc is None:
        return Config()
    if not isinstance(doc, dict):
        raise bad(f"the top level must be a mapping of keys, not {type(doc).__name__}")
    if unknown := [key for key in doc if key not in _FIELDS]:
        raise bad(f"unknown key {unknown[0]!r}")
    values: dict[str, Any] = {}

    firewall = doc.get("firewall")
    if firewall is not None:
        if firewall not in FIREWALLS:
            raise bad(f"'firewall' must be one of {', '.join(FIREWALLS)}, not {firewall!r}")
        values["firewall"] = firewall
    mtu = doc.get("mtu")
    if mtu is not None:
        if not _is_int(mtu) or not MTU_MIN <= mtu <= MTU_MAX:
            raise bad(f"'mtu' must be an integer between {MTU_MIN} and {MTU_MAX}, not {mtu!r}")
        values["mtu"] = mtu
    dns = doc.get("dns")
    if dns is not None:
        if not isinstance(dns, list):
            raise bad(f"'dns' must be a list of IP addresses, not {dns!r}")
        servers = []
        for i, server in enumerate(dns):
            try:
                servers.append(str(ipaddress.ip_address(server if isinstance(server, str) else "-")))
            except ValueError:
                raise bad(f"'dns[{i}]' must be an IP address, not {server!r}") from None
        values["dns"] = tuple(servers)
    pools = doc.get("address_pools")
    if pools is not None:
        if not isinstance(pools, list) or not pools:
            raise bad(f"'address_pools' must be a non-empty list of pools, not {pools!r}")
        values["address_pools"] = tuple(_pool(bad, f"address_pools[{i}]", p) for i, p in enumerate(pools))
    for key in ("store", "advertise", "host"):
        text = doc.get(key)
        if text is not None:
            if not isinstance(text, str) or not text.strip():
                raise bad(f"'{key}' must be a non-empty string, not {text!r}")
            values[key] = text
    return Config(**values)


def _pool(bad, where: str, entry: Any) -> AddressPool:
    if not isinstance(entry, dict):
        raise bad(f"'{where}' must be a mapping with 'base' and 'size', not {entry!r}")
    if unknown := [key for key in entry if key not in ("base", "size")]:
        raise bad(f"unknown key {unknown[0]!r} in '{where}'")
    for key in ("base", "size"):
        if entry.get(key) is None:
            raise bad(f"'{where}.{key}' is required")
    base, size = entry["base"], entry["size"]
    if not isinstance(base, str):
        raise bad(f"'{where}.base' is not a valid network: {base!r}")
    try:
        network = ipaddress.ip_network(base, strict=False)
    except ValueError as e:
        raise bad(f"'{where}.base' is not a valid network: {e}") from None
    if network.network_address != ipaddress.ip_interface(base).ip:
        raise bad(f"'{where}.base' has host bits set: {base!r} (did you mean {network}?)")
    top = 30 if network.version == 4 else 126
    if network.prefixlen > top:
        raise bad(f"'{where}.base' {network} is too small to carve subnets from (prefix length above {top})")
    if not _is_int(size) or not network.prefixlen <= size <= top:
        raise bad(f"'{where}.size' must be between {network.prefixlen} and {top} for {network}, not {size!r}")
    return AddressPool(network, size)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_FIELDS = set(Config._fields)
