"""The nftables backend: all of cnet's rules in table `inet cnet`, changed by
one `nft -f -` transaction each.

The rules are fixed; what varies lives in sets and maps: the cnet bridges,
their subnets, and one map element per published host port. So a change of
networks replaces the tables whole (atomic: a failing script leaves the old
ones), and a publish adds one element, whatever the number of ports.

Isolation needs no rule per pair of networks: traffic from a cnet bridge to
another cnet bridge is dropped unless (in, out) is in the set of
(bridge, bridge) pairs, one element per network.

Inbound, as Docker: a new connection from outside into a cnet bridge is
dropped unless it was DNATed to a published port or the bridge is in
@routed (`create bridge --routed`). Packets to 127.0.0.0/8 or ::1 arriving
on any link but lo are dropped before conntrack and routing (raw priority):
the bridges have route_localnet=1 so that the host's 127.0.0.1:PORT reaches
a sandbox, and without that rule a sandbox could reach the host's
localhost-only services, and the LAN a port published on 127.0.0.1.

Two rules are there for speed only (issue 12), and change no verdict. With
br_netfilter on, bridged traffic crosses the host's IP hooks, so a packet from
a sandbox through a router sandbox to a sandbox on another bridge meets
conntrack and the forward chain once on each bridge. Chain untracked (raw
priority, before conntrack) exempts traffic from a cnet subnet to a cnet
subnet unless its destination is a host address: no NAT ever applies to it,
and no rule needs its state (the one `ct state` drop is for packets from
outside the bridges, which untracked packets also fail). A gateway address
is local, so a sandbox's connection to a port published there is still
tracked and DNATed, and so are the replies of every DNATed or masqueraded
flow (they go to a gateway or leave the cnet subnets). The first rule of
chain forward accepts same-bridge traffic of a bridge that is not --no-icc,
which no later rule of the chain would drop.
"""

from __future__ import annotations

from .. import verbose
from ..errors import OperationFailed
from ..kernel.privilege import refused
from .plan import Dnat, FirewallPlan

TABLE = "inet cnet"  # the default state file's; another's carries its id (owner.py)

_CHAINS = """\
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    fib daddr type local jump published
  }
  chain output {
    type nat hook output priority -100; policy accept;
    ip6 daddr ::1 return comment "[::1] is never published: refused at once, not sent to a sandbox it cannot reach"
    fib daddr type local jump published
  }
  chain published {
    meta nfproto ipv4 dnat ip to ip daddr . meta l4proto . th dport map @dnat4
    meta nfproto ipv4 dnat ip to meta l4proto . th dport map @dnat4any
    meta nfproto ipv6 dnat ip6 to ip6 daddr . meta l4proto . th dport map @dnat6
    meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @dnat6any
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    ct status dnat ip saddr @subnets4 masquerade comment "hairpin: a sandbox to a published port"
    ct status dnat ip6 saddr @subnets6 masquerade
    ip saddr 127.0.0.0/8 oifname @bridges masquerade comment "localhost to a published port"
    ip saddr @masquerade4 oifname != @bridges masquerade comment "outbound"
    ip6 saddr @masquerade6 oifname != @bridges masquerade
  }
  chain forward {
    type filter hook forward priority 0; policy accept;
    iifname @icc iifname . oifname @same accept comment "same bridge, not --no-icc: no rule below drops it"
    iifname @internal iifname . oifname != @same drop comment "internal networks"
    oifname @internal iifname . oifname != @same drop
    ct status dnat accept comment "published ports, from any network"
    oifname @bridges iifname != @bridges oifname != @routed ct state != { established, related } drop comment "only published ports come in"
    iifname @no_icc iifname . oifname @same drop comment "--no-icc (bridged traffic: br_netfilter)"
    iifname @bridges oifname @bridges iifname . oifname != @same drop comment "isolation"
  }
  chain untracked {
    type filter hook prerouting priority raw; policy accept;
    ip saddr @subnets4 ip daddr @subnets4 fib daddr type != local notrack comment "sandbox to sandbox: no NAT, no conntrack"
    ip6 saddr @subnets6 ip6 daddr @subnets6 fib daddr type != local notrack
  }
  chain loopback {
    type filter hook prerouting priority raw; policy accept;
    iifname != "lo" ip daddr 127.0.0.0/8 drop comment "loopback stays loopback"
    iifname != "lo" ip6 daddr ::1 drop
  }
"""

_MAPS = {
    "dnat4": "ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service",
    "dnat4any": "inet_proto . inet_service : ipv4_addr . inet_service",
    "dnat6": "ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service",
    "dnat6any": "inet_proto . inet_service : ipv6_addr . inet_service",
}


def icc_bridges(s) -> list[str]:
    """The bridges whose sandboxes may reach each other (all but --no-icc)."""
    return [b for b in s.bridges if b not in s.no_icc]


def _quoted(names) -> list[str]:
    return [f'"{n}"' for n in names]


def _set(name: str, kind: str, elements: list[str], interval: bool = False) -> str:
    flags = " flags interval;" if interval else ""
    body = f" elements = {{ {', '.join(elements)} }};" if elements else ""
    return f"  set {name} {{ type {kind};{flags}{body} }}\n"


def map_of(d: Dnat) -> str:
    return f"dnat{d.family}" + ("" if d.host_ip else "any")


def key_of(d: Dnat) -> str:
    key = f"{d.protocol} . {d.host_port}"
    return f"{d.host_ip} . {key}" if d.host_ip else key


def element_of(d: Dnat) -> str:
    return f"{key_of(d)} : {d.target_ip} . {d.target_port}"


def render_full(plan: FirewallPlan, table: str = TABLE) -> str:
    """A script that replaces cnet's table with the plan (or removes it when it is empty)."""
    s = plan.structure
    lines = [f"add table {table}\ndelete table {table}\n"]
    if plan.empty:
        return "".join(lines)
    lines.append(f"table {table} {{\n")
    lines.append(_set("bridges", "ifname", _quoted(s.bridges)))
    lines.append(_set("same", "ifname . ifname", [f'"{b}" . "{b}"' for b in s.bridges]))
    lines.append(_set("internal", "ifname", _quoted(s.internal)))
    lines.append(_set("no_icc", "ifname", _quoted(s.no_icc)))
    lines.append(_set("icc", "ifname", _quoted(icc_bridges(s))))
    lines.append(_set("routed", "ifname", _quoted(s.routed)))
    lines.append(_set("subnets4", "ipv4_addr", list(s.subnets4), interval=True))
    lines.append(_set("subnets6", "ipv6_addr", list(s.subnets6), interval=True))
    lines.append(_set("masquerade4", "ipv4_addr", list(s.masquerade4), interval=True))
    lines.append(_set("masquerade6", "ipv6_addr", list(s.masquerade6), interval=True))
    by_map: dict[str, list[str]] = {name: [] for name in _MAPS}
    for d in sorted(plan.dnat):
        by_map[map_of(d)].append(element_of(d))
    for name, kind in _MAPS.items():
        body = f" elements = {{ {', '.join(by_map[name])} }};" if by_map[name] else ""
        lines.append(f"  map {name} {{ type {kind};{body} }}\n")
    lines.append(_CHAINS)
    lines.append("}\n")
    return "".join(lines)


def render_changes(gone, added, table: str = TABLE) -> str:
    """A script that takes out the `gone` entries and puts in the `added` ones."""
    lines = []
    for d in sorted(gone):
        lines.append(f"delete element {table} {map_of(d)} {{ {key_of(d)} }}\n")
    for d in sorted(added):
        lines.append(f"add element {table} {map_of(d)} {{ {element_of(d)} }}\n")
    return "".join(lines)


def _nft(script: str) -> None:
    """Run an nft script as one transaction: through libnftables in this
    process where it is installed (no process to start: ~1 ms instead of
    5-20), else through the nft command."""
    errors, _ = _run(script)
    if errors:
        first = next((line for line in errors.splitlines() if line.strip()), "unknown error")
        raise OperationFailed(f"nft refused cnet's rules: {first}")


def _run(script: str, json_output: bool = False) -> tuple[str, str]:
    """(errors, output) of an nft script: errors "" when it succeeded."""
    found = _run_with_library(script, json_output)
    if found is not None:
        return found
    import subprocess  # only without libnftables

    try:
        result = subprocess.run(["nft", *(["-j"] if json_output else []), "-f", "-"], input=script,
                                capture_output=True, text=True)
    except FileNotFoundError:
        raise OperationFailed("the nftables backend needs nft (install nftables, or use --firewall iptables)") from None
    return (result.stderr or "failed") if result.returncode != 0 else "", result.stdout


_library = []  # [CDLL] once loaded, [None] if there is none
NFT_CTX_OUTPUT_JSON = 1 << 4
# The context of the last command, freed at the start of the next one (or
# left to the process's end). Freeing a context closes its netlink socket,
# and after a commit that close waits for an RCU grace period: 10-15 ms here.
# The kernel work that follows a commit in a teardown (deleting a veth) waits
# for a grace period anyway, after which the close costs nothing: a cnet-cni
# DEL and a `cnet delete ns` are that much quicker (bench/results/peers.md).
# (A list's append and pop are atomic: no two threads free one context.)
_last_context = []


def _run_with_library(script: str, json_output: bool) -> tuple[str, str] | None:
    """(errors, output) as _run, or None without libnftables."""
    if not _library:
        import ctypes

        try:
            lib = ctypes.CDLL("libnftables.so.1")
        except OSError:
            lib = None
        else:
            lib.nft_ctx_new.restype = ctypes.c_void_p
            lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
            lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
            for name in ("nft_ctx_buffer_error", "nft_ctx_buffer_output"):
                getattr(lib, name).argtypes = [ctypes.c_void_p]
            for name in ("nft_ctx_get_error_buffer", "nft_ctx_get_output_buffer"):
                getattr(lib, name).restype = ctypes.c_char_p
                getattr(lib, name).argtypes = [ctypes.c_void_p]
            lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
            lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        _library.append(lib)
    lib = _library[0]
    if lib is None:
        return None
    try:
        lib.nft_ctx_free(_last_context.pop())
    except IndexError:
        pass
    ctx = lib.nft_ctx_new(0)
    lib.nft_ctx_buffer_error(ctx)
    lib.nft_ctx_buffer_output(ctx)
    if json_output:
        lib.nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON)
    failed = lib.nft_run_cmd_from_buffer(ctx, script.encode()) != 0
    output = (lib.nft_ctx_get_output_buffer(ctx) or b"").decode(errors="replace")
    errors = (lib.nft_ctx_get_error_buffer(ctx) or b"unknown error").decode(errors="replace") if failed else ""
    _last_context.append(ctx)  # only once done with: another thread's command may free it from now on
    return errors, output


def _canonical(value) -> str:
    """An element as nft's JSON shows it, written as render_full writes it."""
    if isinstance(value, dict):
        if "concat" in value:
            return " . ".join(_canonical(v) for v in value["concat"])
        if "prefix" in value:
            return f"{value['prefix']['addr']}/{value['prefix']['len']}"
        if "elem" in value:
            return _canonical(value["elem"]["val"])
        if "range" in value:
            return "-".join(_canonical(v) for v in value["range"])
    if isinstance(value, list) and len(value) == 2:  # a map element: [key, value]
        return f"{_canonical(value[0])} : {_canonical(value[1])}"
    return str(value)


def expected_contents(plan: FirewallPlan) -> tuple[dict[str, set[str]], dict[str, int]]:
    """The elements of each set and map, and the number of rules of each chain,
    that render_full(plan) makes."""
    s = plan.structure
    contents = {
        "bridges": set(s.bridges), "same": {f"{b} . {b}" for b in s.bridges},
        "internal": set(s.internal), "no_icc": set(s.no_icc), "icc": set(icc_bridges(s)), "routed": set(s.routed),
        "subnets4": set(s.subnets4), "subnets6": set(s.subnets6),
        "masquerade4": set(s.masquerade4), "masquerade6": set(s.masquerade6),
        **{name: set() for name in _MAPS},
    }
    for d in plan.dnat:
        contents[map_of(d)].add(element_of(d))
    rules, chain = {}, None
    for line in _CHAINS.splitlines():
        words = line.split()
        if words[:1] == ["chain"]:
            chain = words[1]
            rules[chain] = 0
        elif words and words[0] not in ("type", "}"):
            rules[chain] += 1
    return contents, rules


def _tell_full(table: str, plan: FirewallPlan) -> None:
    if plan.empty:
        verbose.removed(f"nft table {table}")
    else:
        verbose.made(f"nft table {table} ({len(plan.structure.bridges)} bridges, {len(plan.dnat)} published ports)")


class NftablesBackend:
    name = "nftables"

    def __init__(self, owner) -> None:
        self.table = f"inet {owner.nft_table}"

    def sync(self, old: FirewallPlan | None, new: FirewallPlan) -> None:
        """Make the kernel hold `new`, given that it holds `old` (None: unknown)."""
        if old is not None and old.structure == new.structure and not new.empty:
            self.update(old.dnat - new.dnat, new.dnat - old.dnat, lambda: new)
            return
        if old is not None and old.empty and new.empty:
            return
        _nft(render_full(new, self.table))
        _tell_full(self.table, new)

    def differences(self, plan: FirewallPlan) -> list[str]:
        """How the kernel's table differs from what `plan` makes, a line each."""
        errors, output = _run(f"list table {self.table}", json_output=True)
        if errors and refused(errors):
            raise OperationFailed(f"cannot read firewall table {self.table}: {errors.strip().splitlines()[0]}")
        if errors:
            return [] if plan.empty else [f"missing firewall table {self.table}"]
        if plan.empty:
            return [f"extra firewall table {self.table} (the state has no network that needs it)"]
        import json

        found: dict[str, set[str]] = {}
        rules: dict[str, int] = {}
        for item in json.loads(output).get("nftables", []):
            kind = "set" if "set" in item else "map" if "map" in item else None
            if kind:
                found[item[kind]["name"]] = {_canonical(e) for e in item[kind].get("elem", ())}
            elif "chain" in item:
                rules.setdefault(item["chain"]["name"], 0)
            elif "rule" in item:
                rules[item["rule"]["chain"]] = rules.get(item["rule"]["chain"], 0) + 1
        wanted, wanted_rules = expected_contents(plan)
        lines = []
        for name, elements in wanted.items():
            have = found.get(name)
            if have is None:
                lines.append(f"firewall table {self.table}: set {name} is missing")
                continue
            missing, extra = len(elements - have), len(have - elements)
            if missing or extra:
                counts = [f"{n} {what}" for n, what in ((missing, "missing"), (extra, "not in the state")) if n]
                lines.append(f"firewall table {self.table}: {name}: elements {', '.join(counts)}")
        for chain, count in wanted_rules.items():
            if rules.get(chain) != count:
                have = "missing" if chain not in rules else f"{rules[chain]} rules where cnet makes {count}"
                lines.append(f"firewall table {self.table}: chain {chain} {have}")
        return lines

    def update(self, gone, added, new) -> None:
        """Only published ports changed: one element deleted or added per host port."""
        delta = render_changes(gone, added, self.table)
        if not delta:
            return
        try:
            _nft(delta)
        except OperationFailed:  # the table is not what the state says (flushed by hand?): rebuild it whole
            _nft(render_full(new(), self.table))
            _tell_full(self.table, new())
            return
        for d in sorted(gone):
            verbose.removed(f"nft element {self.table} {map_of(d)} {key_of(d)}")
        for d in sorted(added):
            verbose.made(f"nft element {self.table} {map_of(d)} {element_of(d)}")
