"""Validation of the names users give objects."""

import re

from .errors import InvalidInput

IFNAMSIZ = 15  # the kernel's limit on an interface name, without the NUL
# Names the kernel refuses for a new link (EINVAL) although dev_valid_name
# passes them: they are the directories /proc/sys/net/ipv4/conf/all and
# default, which every interface's own directory sits beside.
RESERVED_IFNAMES = ("all", "default")


def check_ifname(name: str, what: str = "network name") -> str:
    """A name that will be a Linux interface name: 1-15 bytes, no '/', ':'
    or whitespace, not '.' or '..' (the kernel's dev_valid_name rules), not
    'all' or 'default' (see RESERVED_IFNAMES), and no '%', which the kernel
    would take as a pattern to number ('br%d' -> br0)."""
    if not name:
        raise InvalidInput(f"{what} must not be empty")
    if len(name.encode()) > IFNAMSIZ:
        raise InvalidInput(
            f"{what} {name!r} is {len(name.encode())} bytes long; an interface name has at most {IFNAMSIZ}")
    if name in (".", ".."):
        raise InvalidInput(f"{what} {name!r} is not a valid interface name")
    if name in RESERVED_IFNAMES:
        raise InvalidInput(f"{what} {name!r} is reserved: the kernel refuses 'all' and 'default' as interface "
                           "names (they name the sysctl directories net/ipv4/conf/all and default)")
    bad = sorted({c for c in name if c in "/:%" or c.isspace() or not c.isprintable()})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise InvalidInput(f"{what} {name!r} contains {shown}, which an interface name cannot hold")
    # Stricter than the kernel: the name goes into nftables and iptables rules
    # and into sysctl paths, where quotes and the like would break them.
    odd = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c in "_.-"))})
    if odd:
        shown = ", ".join(repr(c) for c in odd)
        raise InvalidInput(f"{what} {name!r} contains {shown}: use letters, digits, '_', '.' and '-'")
    return name


# Like Docker's container names: a sandbox's name is also a file under
# /run/netns and /etc/netns and a host name in the sandboxes' hosts files.
SANDBOX_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
