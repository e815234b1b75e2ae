"""Sysctls of the current network namespace, read and written through /proc/sys.

/proc/sys/net shows the namespace of the process that opens it, so these act
on whichever namespace cnet runs in (the host's, or a test host's). A key is
given as its path parts, ("net", "ipv4", "conf", "br.10", "route_localnet"),
since an interface name may hold a dot; a dotted string is split on dots.
"""

from __future__ import annotations

import os

from .. import verbose
from ..errors import OperationFailed


def _path(key: str | tuple[str, ...]) -> str:
    parts = key.split(".") if isinstance(key, str) else key
    return os.path.join("/proc/sys", *parts)


def _name(key: str | tuple[str, ...]) -> str:
    return key if isinstance(key, str) else ".".join(key)


def exists(key: str | tuple[str, ...]) -> bool:
    return os.path.exists(_path(key))


def read(key: str | tuple[str, ...]) -> str:
    try:
        with open(_path(key)) as f:
            return f.read().strip()
    except OSError as e:
        raise OperationFailed(f"cannot read sysctl {_name(key)}: {e.strerror}") from e


def write(key: str | tuple[str, ...], value: str) -> None:
    try:
        with open(_path(key), "w") as f:
            f.write(value)
    except OSError as e:
        raise OperationFailed(f"cannot set sysctl {_name(key)}={value}: {e.strerror}") from e
    verbose.changed(f"sysctl {_name(key)}={value}")
