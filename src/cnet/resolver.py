"""Name resolution files of sandboxes: /etc/netns/NAME/resolv.conf and hosts.

`ip netns exec NAME` and `cnet exec NAME` bind every file of /etc/netns/NAME
over /etc, so these are what programs in the sandbox read.

Hosts files are kept current on every attach, detach and delete without
rewriting one file per peer (which would make attaching the 500th sandbox
cost 500 writes): each network has one hosts file, beside the state file,
listing localhost and every sandbox on it; a sandbox on one network with no
extra entries gets a symlink to that file. Only sandboxes on several
networks, or with --add-host entries, get a private file, rebuilt
when one of their networks changes. Files are rewritten in place, not
renamed, so processes already running in a sandbox see the change too.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections import defaultdict

from .model import Sandbox, State

ETC_NETNS = "/etc/netns"
LOCALHOST = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
FALLBACK_DNS = ("8.8.8.8", "8.8.4.4")  # what Docker falls back to


def etc_dir(name: str) -> str:
    return os.path.join(ETC_NETNS, name)


class _Index:
    """One pass over the state, so that updating the files of a network costs
    time in proportion to that network, not to every sandbox times every other."""

    def __init__(self, state: State):
        self.state = state
        self.by_owner: dict[str, list] = defaultdict(list)
        self.by_network: dict[str, list] = defaultdict(list)
        self.joiners: dict[str, list[str]] = defaultdict(list)
        self.aliases: dict[str, str] = {}  # owner -> its names, where that is more than the owner's own
        for ep in state.endpoints:
            self.by_owner[ep.sandbox].append(ep)
            self.by_network[ep.network].append(ep)
        for sb in state.sandboxes.values():
            if sb.mode == "joined":
                self.joiners[sb.target].append(sb.name)
            if sb.mode == "joined" or sb.hostname:
                self.aliases[self.owner(sb)] = ""  # filled in below, once the joiners are known
        for owner in self.aliases:
            names = [owner, *self.joiners.get(owner, ())]
            names += [h for n in list(names) if (h := state.sandboxes[n].hostname) and h not in names]
            self.aliases[owner] = " ".join(names)
        # The sandboxes with a private hosts file, by the networks that file lists.
        self.private_on: dict[str, set[str]] = defaultdict(set)
        for sb in state.sandboxes.values():
            if sb.mode != "host" and not self.shares_network_file(sb):
                for ep in self.by_owner.get(self.owner(sb), ()):
                    self.private_on[ep.network].add(sb.name)

    @staticmethod
    def owner(sb: Sandbox) -> str:
        return sb.target if sb.mode == "joined" else sb.name

    def names(self, owner: str) -> str:
        """The names one stack answers to: its owner, the sandboxes joined to
        it, and their --hostname names."""
        return self.aliases.get(owner, owner)

    def lines(self, ep, names: str) -> list[str]:
        return [f"{a.partition('/')[0]}\t{names}\n" for a in ep.addresses]

    def shares_network_file(self, sb: Sandbox) -> bool:
        return not sb.hosts and len(self.by_owner.get(self.owner(sb), ())) == 1


class Resolver:
    def __init__(self, state_path: str):
        self.hosts_dir = os.path.join(os.path.dirname(os.path.abspath(state_path)), "hosts")

    def network_file(self, network: str) -> str:
        return os.path.join(self.hosts_dir, network)

    # -- what the files say (pure) ---------------------------------------

    @staticmethod
    def network_hosts(index: _Index, network: str) -> str:
        lines = [LOCALHOST]
        for ep in index.by_network[network]:
            lines.extend(index.lines(ep, index.names(ep.sandbox)))
        return "".join(lines)

    @staticmethod
    def private_hosts(index: _Index, sb: Sandbox) -> str:
        owner = index.owner(sb)
        mine = index.by_owner[owner]
        lines = [LOCALHOST]
        own_names = index.names(owner)
        for ep in mine:
            lines.extend(index.lines(ep, own_names))
        for host_ip in sb.hosts:
            host, _, ip = host_ip.partition(":")
            lines.append(f"{ip}\t{host}\n")
        for ep in mine:
            for peer in index.by_network[ep.network]:
                if peer.sandbox != owner:
                    lines.extend(index.lines(peer, index.names(peer.sandbox)))
        return "".join(lines)

    @staticmethod
    def resolv_conf(sb: Sandbox, default_dns, host_resolv: str) -> str:
        if sb.dns or default_dns:
            return "".join(f"nameserver {ip}\n" for ip in (sb.dns or default_dns))
        # The host's, without loopback nameservers (they would point into the sandbox itself).
        kept, servers = [], 0
        for line in host_resolv.splitlines():
            words = line.split()
            if words[:1] == ["nameserver"] and len(words) > 1:
                if ipaddress.ip_address(words[1].split("%")[0]).is_loopback:
                    continue
                servers += 1
            kept.append(line + "\n")
        if not servers:
            kept.extend(f"nameserver {ip}\n" for ip in FALLBACK_DNS)
        return "".join(kept)

    # -- writing --------------------------------------------------------

    def write_sandbox(self, sb: Sandbox, default_dns=()) -> None:
        """resolv.conf of a new sandbox (the host mode has none). Its hosts
        file follows once the state is saved (networks_changed)."""
        if sb.mode == "host":
            return
        os.makedirs(etc_dir(sb.name), mode=0o755, exist_ok=True)
        try:
            with open("/etc/resolv.conf") as f:
                host_resolv = f.read()
        except OSError:
            host_resolv = ""
        _write_in_place(os.path.join(etc_dir(sb.name), "resolv.conf"),
                        self.resolv_conf(sb, default_dns, host_resolv))

    def update_hosts(self, state: State, sb: Sandbox, index: _Index | None = None) -> None:
        index = index or _Index(state)
        path = os.path.join(etc_dir(sb.name), "hosts")
        if index.shares_network_file(sb):
            (ep,) = index.by_owner[index.owner(sb)]
            target = self.network_file(ep.network)
            if os.path.islink(path) and os.readlink(path) == target:
                return
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            os.symlink(target, path)
        else:
            if os.path.islink(path):
                os.unlink(path)
            _write_in_place(path, self.private_hosts(index, sb))

    def networks_changed(self, state: State, networks, sandboxes=()) -> None:
        """After an attach, detach or delete: rewrite the hosts files of these
        networks, the private files of sandboxes on them, and the files of the
        given sandboxes (and of those joined to them), whose attachments changed."""
        index = _Index(state)
        networks = set(networks)
        for net in networks:
            if net in state.networks:
                os.makedirs(self.hosts_dir, mode=0o755, exist_ok=True)
                _write_in_place(self.network_file(net), self.network_hosts(index, net))
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.network_file(net))
        todo = set()
        for name in sandboxes:
            if name in state.sandboxes:
                todo.update([name, *index.joiners.get(name, ())])
        for net in networks:
            todo |= index.private_on.get(net, set())
        for name in todo:
            if state.sandboxes[name].mode != "host":
                self.update_hosts(state, state.sandboxes[name], index)

    @staticmethod
    def remove_sandbox(name: str) -> None:
        """The sandbox's /etc/netns directory, whatever is left of it. It
        holds the files cnet wrote, so it is emptied without shutil, whose
        import (with its compression modules) costs ~3 ms of a teardown;
        shutil.rmtree only for one that someone gave a directory of its own.
        Errors are ignored, as rmtree(ignore_errors=True) did here before."""
        path = etc_dir(name)
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        import shutil

                        shutil.rmtree(path, ignore_errors=True)
                        return
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
            os.rmdir(path)
        except OSError:
            pass


def _write_in_place(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
