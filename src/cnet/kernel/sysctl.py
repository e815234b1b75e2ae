"""Sysctls of the current network namespace, read and written through /proc/sys.

/proc/sys/net shows the namespace of the process that opens it, so these act
on whichever namespace cnet runs in (the host's, or a test host's).
"""

from ..errors import OperationFailed


def _path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


def read(key: str) -> str:
    with open(_path(key)) as f:
        return f.read().strip()


def write(key: str, value: str) -> None:
    try:
        with open(_path(key), "w") as f:
            f.write(value)
    except OSError as e:
        raise OperationFailed(f"cannot set sysctl {key}={value}: {e.strerror}") from e
