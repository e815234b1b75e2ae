"""Whose kernel objects these are: the tags of one state file.

Everything cnet makes carries its state file's tag, so that `cnet gc` can
find what a killed process or a lost state file left behind, and two state
files (`--state`) never touch each other's objects:

- links: a link group (IFLA_GROUP), which the kernel sets in the very
  request that creates the link, so no link of ours is ever untagged; and an
  ifalias that says what the link is ("cnet network br0", "cnet endpoint web
  br0"), set once the object is complete; a host link that a hostdev
  endpoint moved gets no group (it is not cnet's to delete) but an ifalias
  from the start, which also says what it was ("cnet device web hd0 eth1
  1500 52:54:00:12:34:56 up": gc gives it back as that);
- named namespaces: a marker file per name under `STATE.netns/`, written
  before the namespace is made and removed after it is gone (it also
  vouches for /etc/netns/NAME);
- the firewall: table `inet cnet` (iptables: chains CNET-*), or, for a
  state file other than the default one, names carrying its id.

The default state file's tags are the plain ones (alias "cnet ...", table
"cnet"); another state file's id is the CRC-32 of its absolute path, in hex
(zlib: no OpenSSL to load at start-up, and no secret is needed).
"""

from __future__ import annotations

import contextlib
import os
import zlib

from .state import DEFAULT_STATE_PATH

GROUP_BASE = 0x636E0000  # "cn": the low 16 bits tell state files apart


class Owner:
    def __init__(self, state_path: str) -> None:
        self.state_path = os.path.abspath(state_path)
        crc = zlib.crc32(self.state_path.encode())
        self.id = "" if self.state_path == DEFAULT_STATE_PATH else f"{crc:08x}"
        self.group = GROUP_BASE | (crc & 0xFFFF)
        self.marker_dir = self.state_path + ".netns"

    # -- links -------------------------------------------------------------

    @property
    def _prefix(self) -> str:
        return f"cnet@{self.id}" if self.id else "cnet"

    def network_tag(self, network: str) -> str:
        return f"{self._prefix} network {network}"

    def endpoint_tag(self, sandbox: str, network: str) -> str:
        return f"{self._prefix} endpoint {sandbox} {network}"

    def device_tag(self, sandbox: str, network: str, device) -> str:
        """The tag of a host link moved into a sandbox (device: model.HostDevice)."""
        return (f"{self._prefix} device {sandbox} {network} {device.name} {device.mtu} {device.mac}"
                f" {'up' if device.up else 'down'}")

    def read_tag(self, alias: str | None) -> tuple[str, ...] | None:
        """("network", NAME), ("endpoint", SANDBOX, NETWORK) or ("device",
        SANDBOX, NETWORK) for an alias of ours, None for any other."""
        words = (alias or "").split()
        if not words or words[0] != self._prefix:
            return None
        if len(words) == 3 and words[1] == "network":
            return ("network", words[2])
        if len(words) == 4 and words[1] == "endpoint":
            return ("endpoint", words[2], words[3])
        if self.read_device_tag(alias) is not None:
            return ("device", words[2], words[3])
        return None

    def read_device_tag(self, alias: str | None):
        """(sandbox, network, model.HostDevice as it was) of a device_tag, else None."""
        from .model import HostDevice

        words = (alias or "").split()
        if len(words) != 8 or words[:2] != [self._prefix, "device"] or not words[5].isdigit() or \
                words[7] not in ("up", "down"):
            return None
        return words[2], words[3], HostDevice(words[4], int(words[5]), words[6], words[7] == "up")

    def owns_link(self, alias: str | None, group: int | None) -> bool:
        return group == self.group or self.read_tag(alias) is not None

    # -- the firewall --------------------------------------------------------

    @property
    def tag(self) -> str:
        """The first word of its tags: "cnet", or "cnet@ID" (also on the rules
        cnet adds to firewalls it does not own: firewall/hostpolicy.py)."""
        return self._prefix

    @property
    def nft_table(self) -> str:
        """The name of the nftables table (family inet)."""
        return f"cnet_{self.id}" if self.id else "cnet"

    def iptables_chain(self, name: str) -> str:
        """CNET-NAME, or CNETid-NAME (at most 28 characters: 'CNET' 8 hex '-' and ~15)."""
        return f"CNET{self.id}-{name}" if self.id else f"CNET-{name}"

    # -- named namespaces -------------------------------------------------------

    def mark_netns(self, name: str) -> bool:
        """Before a name is made under /run/netns: it is ours from the start.
        False if the marker was there already (what a killed cnet left of that
        name is still tagged, and an undo of this attempt must leave it so)."""
        os.makedirs(self.marker_dir, mode=0o755, exist_ok=True)
        try:
            os.close(os.open(os.path.join(self.marker_dir, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                             0o644))
        except FileExistsError:
            return False
        return True

    def unmark_netns(self, name: str) -> None:
        """Once the name is gone."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.marker_dir, name))

    def marked_netns(self) -> set[str]:
        try:
            return set(os.listdir(self.marker_dir))
        except FileNotFoundError:
            return set()


DEFAULT = Owner(DEFAULT_STATE_PATH)
