"""The host's health, for `cnet check`: what on this host, outside cnet's own
objects, keeps its networks from working. Each warning is one sentence: what
is wrong, what it breaks, what to do. Nothing is changed.

- forwarding off while a routed network of that family exists;
- a forward chain of another firewall that drops cnet's traffic and that
  cnet adds no accepts to (firewall/hostpolicy.py answers every iptables
  FORWARD chain and the forward chains of other ip, ip6 and inet tables; a
  missing accept there is a difference of `cnet check`, not a warning);
- rules in the other iptables stack (legacy beside nft, or the reverse)
  beside cnet's own accepts: both stacks see every packet;
- a host route overlapping a cnet subnet (other than the network's own);
- a network MTU above that of the link of a default route (the uplink);
- sandboxes whose resolv.conf names a loopback nameserver (a stub resolver
  such as systemd-resolved's 127.0.0.53), which nothing answers in their
  own namespace.

Where the time goes: one `nft -j list ruleset` (libnftables in-process, a
few ms; it grows with the elements of cnet's maps), a read of
/proc/net/ip_tables_names (the legacy stack's tables, so
iptables-legacy-save runs only where it has some), a read of /proc/net/route
and /proc/net/ipv6_route (kernel/routes.py: no netlink, whose route dump
costs ~0.1 ms a route and grows with the sandboxes), and sysfs and /proc/sys
reads. The sandboxes cost a dict lookup each.
"""

from __future__ import annotations

import ipaddress

from ..config import Config
from ..errors import OperationFailed
from ..firewall import hostpolicy, hostread
from ..kernel import routes, sysctl, sysfs
from ..model import Network, State
from ..resolver import Resolver
from .base import firewall_needs

FORWARDING = {4: "net.ipv4.ip_forward", 6: "net.ipv6.conf.all.forwarding"}
TOOL = {4: "iptables", 6: "ip6tables"}
NFT_FAMILIES = {"ip": (4,), "ip6": (6,), "inet": (4, 6), "bridge": (4, 6)}
SHOWN = 5  # names listed in a warning before "and N more"


def warnings(state: State, config: Config) -> list[str]:
    """The host's health warnings for this state, a line each."""
    routed = _routed(state)
    found = _forwarding_off(routed)
    if routed:
        found += _forward_path(routed)
    if state.networks:
        found += _routes(state, routed)
    found += _stub_resolvers(state, config)
    return list(dict.fromkeys(found))  # a dual-stack network over one uplink is said once


def _link(net: Network) -> str:
    return firewall_needs(net).interface or net.name


def _own_links(net: Network) -> set[str]:
    """The host links the network is or stands on, whose routes to its subnets are its own
    (a macvlan's parent is on the subnet's LAN by design)."""
    from .. import drivers

    return drivers.get(net.driver).links(net, ())


def _listed(kind: str, names) -> str:
    """"network br0", "networks a, b and c", "sandboxes a, ..., e and 7 more"."""
    names = sorted(names)
    if len(names) == 1:
        return f"{kind} {names[0]}"
    kinds = kind + ("es" if kind.endswith(("s", "x", "ch")) else "s")
    more = len(names) - SHOWN
    if more > 0:
        return f"{kinds} {', '.join(names[:SHOWN])} and {more} more"
    return f"{kinds} {', '.join(names[:-1])} and {names[-1]}"


def _routed(state: State) -> dict[int, list[Network]]:
    """IP family -> the networks whose traffic the host routes (their driver
    asks for that family's forwarding sysctl)."""
    routed: dict[int, list[Network]] = {}
    for net in state.networks.values():
        needs = firewall_needs(net).sysctls
        for family, key in FORWARDING.items():
            if key in needs:
                routed.setdefault(family, []).append(net)
    return routed


def _names(nets) -> set[str]:
    return {n.name for n in nets}


# -- forwarding ------------------------------------------------------------------

def _forwarding_off(routed: dict[int, list[Network]]) -> list[str]:
    found = []
    for family, nets in sorted(routed.items()):
        key = FORWARDING[family]
        try:
            value = sysctl.read(key)
        except OperationFailed:  # no such sysctl (IPv6 off at boot): nothing cnet could set either
            continue
        if value != "1":
            verb = "routes" if len(nets) == 1 else "route"
            found.append(f"{key} is {value}, but {_listed('network', _names(nets))} {verb} through the host:"
                         f" sandboxes there reach nothing beyond it and published ports do not answer from"
                         f" outside; `cnet restore` sets it to 1 (or sysctl -w {key}=1)")
    return found


# -- the forward path ------------------------------------------------------------

def _forward_path(routed: dict[int, list[Network]]) -> list[str]:
    found = []
    variants = {family: hostread.iptables_variant(family) for family in routed}
    for family in sorted(routed):
        if variants[family] == "nft":
            found += _legacy_beside_nft(family)
    items = hostread.nft_ruleset()
    if items is not None:
        found += _nftables(items, routed, variants)
    return found


def _nftables(items: list[dict], routed: dict[int, list[Network]], variants: dict) -> list[str]:
    found = []
    for family in sorted(routed):
        if variants[family] != "legacy":
            continue
        rules = hostread.iptables_nft_rules(items, "ip" if family == 4 else "ip6")
        if rules:
            tool = TOOL[family]
            found.append(f"iptables-nft's tables in nftables hold {rules} IPv{family} rule(s) while {tool} is the"
                         " legacy variant: both stacks see every packet (cnet adds its forward accepts to both, and"
                         f" nothing else); move them to one stack ({tool}-nft-save | {tool}-legacy-restore) and"
                         " flush the other")
    for chain, why, reason in hostpolicy.untouched_in(items):
        nets = [n for family in NFT_FAMILIES.get(chain.family, ()) for n in routed.get(family, ())]
        if nets:  # else a family cnet routes none of
            found.append(hostpolicy.untouched_warning(chain, why, reason, _listed("network", _names(nets)),
                                                      min(_link(n) for n in nets)))
    return found


def _legacy_beside_nft(family: int) -> list[str]:
    """The legacy stack filtering beside iptables-nft (the `iptables` command):
    what it holds besides cnet's accepts and the FORWARD policy they answer."""
    text = hostread.legacy_rules_text(family)
    if text is None:
        return []
    saved = hostread.parse_save(text)
    rules = sum(1 for table in saved.rules.values() for words in table
                if not words[1].startswith("CNET") and not hostpolicy.is_cnets(words[2:]))
    restrictive = [p for p in saved.restrictive_policies() if p.rsplit(" ", 1)[0] != "filter FORWARD"]
    if not rules and not restrictive:
        return []  # tables made by a listing, or holding only what cnet answers
    tool = f"{TOOL[family]}-legacy"
    what = [f"{rules} rule(s)"] + ([f"policies {', '.join(restrictive)}"] if restrictive else [])
    return [f"{tool} holds {' and '.join(what)} beside {TOOL[family]} (nft): both stacks see every packet (cnet adds"
            f" its forward accepts to both, and nothing else); move them ({tool}-save | {TOOL[family]}-restore)"
            f" and flush {tool}, or remove them"]


# -- routes and MTU ----------------------------------------------------------------

def _routes(state: State, routed: dict[int, list[Network]]) -> list[str]:
    """Host routes overlapping cnet's subnets, and MTUs above the uplinks'."""
    subnets = [(net, ipaddress.ip_network(s.subnet)) for net in state.networks.values() for s in net.subnets]
    found = []
    for family in sorted({subnet.version for _, subnet in subnets}):
        table = routes.routes(family)
        for net, subnet in subnets:
            if subnet.version == family:
                found += [f"the host route {r} overlaps subnet {subnet} of network {net.name}: traffic between the"
                          " host and those addresses may take the wrong link; remove or narrow that route, or move"
                          " the network to a free subnet (delete and create it again)"
                          for r in table if not r.default and r.dev not in _own_links(net) and r.dst.overlaps(subnet)]
        found += _mtu_above_uplinks(routed.get(family, []), {r.dev for r in table if r.default and r.dev})
    return found


def _mtu_above_uplinks(nets: list[Network], uplinks: set[str]) -> list[str]:
    mtus = {name: link.mtu for name in uplinks if (link := sysfs.link(name)) is not None}
    found = []
    for net in nets:
        lower = [(mtu, name) for name, mtu in mtus.items() if mtu < net.mtu]
        if lower:
            mtu, name = min(lower)
            found.append(f"network {net.name} has MTU {net.mtu}, above the {mtu} of {name}, the link of the host's"
                         f" default route: packets above {mtu} bytes leaving the host are fragmented or dropped,"
                         f" which stalls connections; create the network with --mtu {mtu} or less")
    return found


# -- resolvers --------------------------------------------------------------------

def _stub_resolvers(state: State, config: Config) -> list[str]:
    """Sandboxes whose resolv.conf names a loopback nameserver: cnet writes the
    host's nameservers without those, but --dns and the config's dns as given."""
    by_servers: dict[tuple[tuple[str, ...], str], list[str]] = {}
    loopback_of: dict[tuple[str, ...], tuple[str, ...]] = {}
    for sb in state.sandboxes.values():
        if sb.mode == "host":
            continue  # no resolv.conf of its own: the host's, where its stub resolver listens
        dns = sb.dns or tuple(config.dns)
        if dns not in loopback_of:
            text = Resolver.resolv_conf(sb, config.dns, "")  # the host's part never has a loopback one
            servers = [words[1] for words in map(str.split, text.splitlines()) if words[:1] == ["nameserver"]]
            loopback_of[dns] = tuple(s for s in servers if ipaddress.ip_address(s.split("%")[0]).is_loopback)
        if loopback_of[dns]:
            source = "from --dns" if sb.dns else "from the config's dns"
            by_servers.setdefault((loopback_of[dns], source), []).append(sb.name)
    return [f"{_listed('sandbox', names)} {'gets' if len(names) == 1 else 'get'} nameserver {', '.join(servers)}"
            f" ({source}), a loopback address: nothing answers there inside a sandbox's own namespace (a stub"
            " resolver such as 127.0.0.53 listens in the host's), so names do not resolve; give a nameserver"
            " they can reach (--dns IP or the config's dns; for sandboxes made already, /etc/netns/NAME/resolv.conf)"
            for (servers, source), names in sorted(by_servers.items())]
