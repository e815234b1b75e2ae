"""The CNI protocol as spec 1.0.0 and 1.1.0 write it: the request a runtime
makes (environment variables and the network configuration on stdin), and
the JSON a plugin answers with (results, version information, errors). Pure:
no kernel, no files; nothing here knows what cnet is.
"""

from __future__ import annotations

import json
import re
from typing import NamedTuple

SUPPORTED_VERSIONS = ("1.0.0", "1.1.0")
LATEST = SUPPORTED_VERSIONS[-1]
COMMANDS = ("ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION")
SINCE_1_1 = ("GC", "STATUS")  # a configuration of an older version cannot ask for these

# The spec's well-known error codes (0-99 are reserved for it; 100 and up are the plugin's).
INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
UNKNOWN_CONTAINER = 3
INVALID_ENVIRONMENT = 4
IO_FAILURE = 5
DECODE_FAILURE = 6
INVALID_CONFIG = 7
TRY_AGAIN_LATER = 11
NOT_AVAILABLE = 50  # STATUS: the plugin cannot serve ADD requests now
PLUGIN_ERRORS = 100  # cnet's own errors: 100 + the exit code the `cnet` command would give

# Which variables each command needs (as libcni's skel asks for them).
_REQUIRED = {
    "CNI_CONTAINERID": ("ADD", "DEL", "CHECK"),
    "CNI_NETNS": ("ADD", "CHECK"),
    "CNI_IFNAME": ("ADD", "DEL", "CHECK"),
    "CNI_PATH": ("ADD", "DEL", "CHECK", "GC", "STATUS"),
}
_CONTAINER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")  # libcni's ValidateContainerID
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


class CniError(Exception):
    """An error as the spec's error JSON says it: a code, a message, details."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details

    def to_json(self, version: str) -> dict:
        answer = {"cniVersion": version, "code": self.code, "msg": self.msg}
        if self.details:
            answer["details"] = self.details
        return answer


class Request(NamedTuple):
    """One call of the plugin (CNI_* values not given are "")."""

    command: str
    version: str  # the configuration's cniVersion, one this plugin supports
    config: dict  # the network configuration (one plugin's entry of a conflist, as libcni hands it over)
    container_id: str
    netns: str
    ifname: str
    args: dict[str, str]  # CNI_ARGS
    path: tuple[str, ...]


def parse_command(environ) -> str:
    command = environ.get("CNI_COMMAND", "")
    if not command:
        raise CniError(INVALID_ENVIRONMENT, "CNI_COMMAND is not set")
    if command not in COMMANDS:
        raise CniError(INVALID_ENVIRONMENT, f"unknown CNI_COMMAND {command!r}",
                       f"this plugin knows {', '.join(COMMANDS)}")
    return command


def version_answer(stdin: str) -> dict:
    """VERSION: the versions this plugin speaks. The input's cniVersion is
    echoed (the spec says so); libcni sends that of the configuration it
    negotiates for, and may send nothing at all."""
    try:
        given = json.loads(stdin).get("cniVersion") if stdin.strip() else None
    except (ValueError, AttributeError):
        given = None
    return {"cniVersion": given if isinstance(given, str) and given else LATEST,
            "supportedVersions": list(SUPPORTED_VERSIONS)}


def decode_config(stdin: str) -> dict:
    """The network configuration on stdin, as a JSON object."""
    try:
        config = json.loads(stdin)
    except ValueError as e:
        raise CniError(DECODE_FAILURE, "the network configuration on stdin is not JSON", str(e)) from None
    if not isinstance(config, dict):
        raise CniError(DECODE_FAILURE, "the network configuration on stdin is not a JSON object")
    return config


def config_version(config: dict) -> str:
    version = config.get("cniVersion")
    if not isinstance(version, str) or not version:
        raise CniError(INVALID_CONFIG, "the network configuration has no cniVersion")
    if version not in SUPPORTED_VERSIONS:
        raise CniError(INCOMPATIBLE_VERSION, f"CNI version {version} is not supported",
                       f"supported: {', '.join(SUPPORTED_VERSIONS)}")
    return version


def error_version(config: dict | None) -> str:
    """The cniVersion an error answer carries: the configuration's when this
    plugin speaks it, else the latest it does."""
    version = (config or {}).get("cniVersion")
    return version if version in SUPPORTED_VERSIONS else LATEST


def parse_request(environ, stdin: str, command: str) -> Request:
    """Everything a call other than VERSION gives, checked."""
    config = decode_config(stdin)
    version = config_version(config)
    for key in ("name", "type"):
        if not isinstance(config.get(key), str) or not config[key]:
            raise CniError(INVALID_CONFIG, f"the network configuration has no {key}")
    if command in SINCE_1_1 and _version_tuple(version) < (1, 1, 0):
        raise CniError(INCOMPATIBLE_VERSION, f"config version {version} does not allow {command}",
                       f"{command} came with CNI 1.1.0")
    values = {}
    for var, commands in _REQUIRED.items():
        values[var] = environ.get(var, "")
        if command in commands and not values[var]:
            raise CniError(INVALID_ENVIRONMENT, f"{var} is not set", f"{command} needs it")
    if values["CNI_CONTAINERID"] and not _CONTAINER_ID.fullmatch(values["CNI_CONTAINERID"]):
        raise CniError(INVALID_ENVIRONMENT, f"CNI_CONTAINERID {values['CNI_CONTAINERID']!r} is invalid",
                       "letters, digits, '_', '.' and '-', starting with a letter or digit")
    return Request(command=command, version=version, config=config, container_id=values["CNI_CONTAINERID"],
                   netns=environ.get("CNI_NETNS", ""), ifname=values["CNI_IFNAME"],
                   args=parse_args(environ.get("CNI_ARGS", "")),
                   path=tuple(p for p in values["CNI_PATH"].split(":") if p))


def parse_args(text: str) -> dict[str, str]:
    """CNI_ARGS: KEY=VALUE pairs separated by ';'."""
    args = {}
    for pair in filter(None, text.split(";")):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CniError(INVALID_ENVIRONMENT, f"CNI_ARGS: {pair!r} is not KEY=VALUE")
        args[key] = value
    return args


def _version_tuple(version: str) -> tuple[int, ...]:
    m = _VERSION.fullmatch(version)
    return tuple(int(n) for n in m.groups()) if m else (0, 0, 0)


def result(version: str, interfaces: list[dict], ips: list[dict], routes: list[dict], dns: dict) -> dict:
    """An ADD result (spec 1.0 and 1.1 share its shape): interfaces, each
    {name, mac, sandbox?}; ips {address (CIDR), gateway?, interface (an
    index in interfaces)}; routes {dst, gw?}; dns {nameservers, domain,
    search, options}."""
    answer = {"cniVersion": version, "interfaces": interfaces, "ips": ips}
    if routes:
        answer["routes"] = routes
    answer["dns"] = dns
    return answer


def chained(previous: dict | None, mine: dict) -> dict:
    """The result of ADD when an earlier plugin of the chain gave one
    (prevResult): its interfaces, addresses, routes and DNS, then ours, our
    addresses' interface indexes moved past its interfaces."""
    if not previous:
        return mine
    if not isinstance(previous, dict):
        raise CniError(DECODE_FAILURE, "prevResult is not a JSON object")
    interfaces = list(previous.get("interfaces") or [])
    offset = len(interfaces)
    ips = list(previous.get("ips") or [])
    ips += [{**ip, "interface": ip["interface"] + offset} if "interface" in ip else ip for ip in mine["ips"]]
    merged = {**previous, "cniVersion": mine["cniVersion"], "interfaces": interfaces + mine["interfaces"],
              "ips": ips}
    routes = list(previous.get("routes") or []) + mine.get("routes", [])
    if routes:
        merged["routes"] = routes
    merged["dns"] = previous.get("dns") or mine["dns"]
    return merged
