"""From a CNI request to cnet's terms: the plugin entry's keys, the
capabilities a runtime passes in runtimeConfig, the sandbox's name. Pure.

A conflist entry for cnet:

    {"type": "cnet", "network": "mybr0",
     "subnet": "10.88.0.0/24",                 # with it, the network is made if missing
     "capabilities": {"portMappings": true, "ips": true, "mac": true}}

The keys that create a network are `cnet create`'s option names (as in
`cnet apply` files); "state", "config" and "firewall" are cnet's global
options, for a runtime whose containers go to another state file.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from typing import NamedTuple

from ..names import SANDBOX_NAME
from .protocol import INVALID_CONFIG, INVALID_ENVIRONMENT, UNSUPPORTED_FIELD, CniError

# Keys libcni or the spec put in every entry, which mean nothing more to cnet.
_STANDARD_KEYS = {"cniVersion", "name", "type", "capabilities", "runtimeConfig", "prevResult", "dns", "args",
                  "cni.dev/valid-attachments", "cni.dev/attachments"}
_CNET_KEYS = {"network", "driver", "subnet", "gateway", "ip-range", "mtu", "internal", "no-masquerade", "no-icc",
              "routed", "options", "state", "config", "firewall"}
# CNI_ARGS that runtimes send and cnet reads or may leave aside; others need IgnoreUnknown=1.
_KNOWN_ARGS = {"IgnoreUnknown", "K8S_POD_NAME", "K8S_POD_NAMESPACE", "K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID",
               "IP", "MAC"}
_HOSTNAME_CHARS = re.compile(r"[^A-Za-z0-9-]+")
SHORT_ID = 12  # as docker and podman show a container ID


class NetworkRequest(NamedTuple):
    """What `cnet create DRIVER NETWORK ...` would be asked, to make the network when it is missing."""

    driver: str
    subnets: tuple[str, ...]
    gateways: tuple[str, ...] = ()
    ip_range: str | None = None
    mtu: int | None = None
    internal: bool = False
    masquerade: bool = True
    options: dict | None = None  # None: no driver options


class PluginConfig(NamedTuple):
    """cnet's reading of its conflist entry."""

    network: str
    create: NetworkRequest | None  # None: the network must exist
    state: str | None = None
    config: str | None = None
    firewall: str | None = None


class Attachment(NamedTuple):
    """What an ADD asks for beyond the network: from runtimeConfig and CNI_ARGS."""

    ips: tuple[str, ...] = ()  # addresses, without their prefix length
    mac: str | None = None
    publish: tuple[str, ...] = ()  # `cnet publish` specs
    hostname: str | None = None  # the engine's name of the container, where it gives one
    limits: dict | None = None  # `cnet attach`'s limit options (ingress_rate=...), from the bandwidth capability


def plugin_config(config: dict) -> PluginConfig:
    unknown = sorted(set(config) - _STANDARD_KEYS - _CNET_KEYS)
    if unknown:
        raise CniError(UNSUPPORTED_FIELD, f"cnet does not know the key(s) {', '.join(unknown)}",
                       "keys: network, driver, subnet, gateway, ip-range, mtu, internal, no-masquerade, no-icc,"
                       " routed, options, state, config, firewall")
    network = config.get("network", config["name"])
    if not isinstance(network, str) or not network:
        raise CniError(INVALID_CONFIG, "\"network\" must be the name of a cnet network")
    for key in ("state", "config", "firewall", "driver", "ip-range"):
        _expect(config, key, str)
    for key in ("internal", "no-masquerade", "no-icc", "routed"):
        _expect(config, key, bool)
    _expect(config, "mtu", int)
    _expect(config, "options", dict)
    _expect(config, "dns", dict)  # handed back in ADD's result as it is
    capabilities = config.get("capabilities", {})
    if not isinstance(capabilities, dict):
        raise CniError(INVALID_CONFIG, "\"capabilities\" must be an object")
    create = None
    if "subnet" in config:
        create = _network_request(config)
    else:
        given = sorted(k for k in ("driver", "gateway", "ip-range", "mtu", "internal", "no-masquerade", "no-icc",
                                   "routed", "options") if k in config)
        if given:
            raise CniError(INVALID_CONFIG, f"{', '.join(given)} without \"subnet\"",
                           "the keys that make a network go with its subnet")
    return PluginConfig(network=network, create=create, state=config.get("state"), config=config.get("config"),
                        firewall=config.get("firewall"))


def _network_request(config: dict) -> NetworkRequest:
    subnets = _strings(config, "subnet")
    if not subnets:
        raise CniError(INVALID_CONFIG, "\"subnet\" is empty")
    options = dict(config.get("options") or {})
    if config.get("no-icc"):
        options["icc"] = False
    if config.get("routed"):
        options["routed"] = True
    return NetworkRequest(driver=config.get("driver", "bridge"), subnets=subnets,
                          gateways=_strings(config, "gateway"), ip_range=config.get("ip-range"),
                          mtu=config.get("mtu"), internal=config.get("internal", False),
                          masquerade=not (config.get("no-masquerade") or config.get("routed")), options=options)


def _strings(config: dict, key: str) -> tuple[str, ...]:
    value = config.get(key, [])
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise CniError(INVALID_CONFIG, f"\"{key}\" must be a string or a list of strings")
    return tuple(values)


def _expect(config: dict, key: str, kind: type) -> None:
    if key in config and (type(config[key]) is not kind):  # type(): true is no int here
        raise CniError(INVALID_CONFIG, f"\"{key}\" must be a {_KIND_NAMES[kind]}")


_KIND_NAMES = {str: "string", bool: "boolean", int: "number", dict: "JSON object"}


def attachment(config: dict, args: dict[str, str]) -> Attachment:
    """The capabilities the runtime filled in (runtimeConfig holds only those
    that the entry's "capabilities" declares), and CNI_ARGS."""
    unknown = sorted(set(args) - _KNOWN_ARGS)
    if unknown and args.get("IgnoreUnknown", "").lower() not in ("1", "true"):
        raise CniError(INVALID_ENVIRONMENT, f"CNI_ARGS: unknown argument(s) {', '.join(unknown)}",
                       "IgnoreUnknown=1 lets a plugin leave them aside")
    runtime = config.get("runtimeConfig", {})
    if runtime is None:
        runtime = {}
    if not isinstance(runtime, dict):
        raise CniError(INVALID_CONFIG, "\"runtimeConfig\" must be an object")
    # runtimeConfig holds what the runtime filled in for the capabilities the
    # entry declares; without a declaration (a runtime driven by hand), all of it counts.
    declared = {k for k, on in (config.get("capabilities") or {}).items() if on}
    if declared:
        runtime = {k: v for k, v in runtime.items() if k in declared}
    limits = _limits(runtime.get("bandwidth"))
    ips = [_address(text, "runtimeConfig.ips") for text in _list(runtime, "ips")]
    if "IP" in args:
        ips += [_address(text, "CNI_ARGS IP") for text in args["IP"].split(",") if text]
    mac = runtime.get("mac") or args.get("MAC") or None
    if mac is not None and not isinstance(mac, str):
        raise CniError(INVALID_CONFIG, "runtimeConfig.mac must be a string")
    publish = tuple(_port_spec(m) for m in _list(runtime, "portMappings"))
    return Attachment(ips=tuple(ips), mac=mac, publish=publish, hostname=_hostname(args.get("K8S_POD_NAME", "")),
                      limits=limits)


def _limits(bandwidth) -> dict | None:
    """The bandwidth capability as the CNI bandwidth plugin reads it (rates in
    bit/s, bursts in bits) -> `cnet attach`'s options (a bare rate is bit/s,
    a bare size bytes). cnet checks the values as for its own options."""
    if not bandwidth:
        return None
    if not isinstance(bandwidth, dict):
        raise CniError(INVALID_CONFIG, "runtimeConfig.bandwidth must be an object")
    limits = {}
    for key, option, scale in (("ingressRate", "ingress_rate", 1), ("egressRate", "egress_rate", 1),
                               ("ingressBurst", "ingress_burst", 8), ("egressBurst", "egress_burst", 8)):
        value = bandwidth.get(key)
        if value in (None, 0):
            continue
        if type(value) is not int or value < 0:
            raise CniError(INVALID_CONFIG, f"runtimeConfig.bandwidth.{key} {value!r} is not a positive integer")
        limits[option] = str(max(1, value // scale))
    return limits or None


def _list(runtime: dict, key: str) -> list:
    value = runtime.get(key) or []
    if not isinstance(value, list):
        raise CniError(INVALID_CONFIG, f"runtimeConfig.{key} must be a list")
    return value


def _address(text, what: str) -> str:
    """An address of the ips capability ("10.88.0.5/24" or "10.88.0.5"), without its prefix length."""
    if not isinstance(text, str):
        raise CniError(INVALID_CONFIG, f"{what}: {text!r} is not an address")
    try:
        return str(ipaddress.ip_interface(text).ip)
    except ValueError:
        raise CniError(INVALID_CONFIG, f"{what}: {text!r} is not an address") from None


def _port_spec(mapping) -> str:
    """A portMappings entry ({hostPort, containerPort, protocol, hostIP}) as `cnet publish` writes it."""
    if not isinstance(mapping, dict):
        raise CniError(INVALID_CONFIG, f"portMappings: {mapping!r} is not an object")
    host_port, port = mapping.get("hostPort"), mapping.get("containerPort")
    for key, value in (("hostPort", host_port), ("containerPort", port)):
        if type(value) is not int:
            raise CniError(INVALID_CONFIG, f"portMappings: {key} {value!r} is not a port number")
    protocol = mapping.get("protocol") or "tcp"
    if not isinstance(protocol, str):
        raise CniError(INVALID_CONFIG, f"portMappings: protocol {protocol!r} is not a string")
    host_ip = mapping.get("hostIP") or ""
    if not isinstance(host_ip, str):
        raise CniError(INVALID_CONFIG, f"portMappings: hostIP {host_ip!r} is not a string")
    spec = f"{host_port}:{port}/{protocol.lower()}"
    if host_ip:
        spec = f"[{host_ip}]:{spec}" if ":" in host_ip else f"{host_ip}:{spec}"
    return spec


def _hostname(name: str) -> str | None:
    """The engine's container name as a host name (podman's `srv`, `nifty_pike` -> `nifty-pike`)."""
    name = _HOSTNAME_CHARS.sub("-", name).strip("-")[:63].rstrip("-")
    return name or None


def sandbox_name(container_id: str) -> str:
    """The sandbox of a container: its ID where that is a sandbox name
    (containerd's `default-srv`), else its first 12 characters and a hash of
    the whole ID (podman's 64 hex digits), so that two IDs never share one."""
    if SANDBOX_NAME.fullmatch(container_id):
        return container_id
    digest = hashlib.sha256(container_id.encode()).hexdigest()[:8]
    return f"{container_id[:SHORT_ID]}-{digest}"
