"""What this process may ask of the kernel: its effective capabilities, read
from /proc/self/status (no system call, no netlink), so that a command that
cannot look says so at once instead of taking every refusal for an absence."""

from __future__ import annotations

CAPABILITY_BITS = {"CAP_NET_ADMIN": 12, "CAP_SYS_ADMIN": 21}  # linux/capability.h
STATUS = "/proc/self/status"


def lacking(*names: str) -> list[str]:
    """Those of the capabilities `names` that this process does not have in
    effect ([] where the kernel does not say: it answers for itself then)."""
    try:
        with open(STATUS) as f:
            effective = next((int(line.split()[1], 16) for line in f if line.startswith("CapEff:")), None)
    except OSError:
        return []
    if effective is None:
        return []
    return [name for name in names if not effective >> CAPABILITY_BITS[name] & 1]


REFUSALS = ("Operation not permitted", "Permission denied")  # EPERM, EACCES as nft and iptables print them


def refused(message: str) -> bool:
    """Whether a tool's error output says the kernel refused it (no privilege,
    a seccomp or LSM policy), which is not "there is no such object"."""
    return any(words in message for words in REFUSALS)
