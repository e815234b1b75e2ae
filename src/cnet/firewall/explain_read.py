"""Reading the firewall for `cnet explain`: which rules a packet to one
published port meets, and what each does with it. Nothing here changes
the firewall.

The readers (ruleset(), iptables_save()) run the tools; the rest is pure
(tests/unit/test_explain_rules.py feeds it recorded output). A packet is followed
through the rules as the kernel would: an nft match or an iptables option
is decided from what is known of the first packet of a connection coming
from outside (its protocol, its destination after DNAT, the bridge it
leaves by, conntrack state new and dnat); a match on anything else (its
source, the interface it came in by, a mark, a rate) cannot be decided, so
a drop behind it is reported as one that "may" drop. cnet's own rules are
found by what they do or by their comment, never by their position.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from typing import NamedTuple

from . import hostread

CNET_COMMENT = "cnet"  # the comment prefix of the rules cnet adds to chains it does not own
TERMINAL = {"accept", "drop", "reject"}


class Packet(NamedTuple):
    """The first packet of a connection to a published port, at the forward
    hook: family 4 or 6, protocol "tcp" | "udp" | "sctp", its destination
    after DNAT (the sandbox's address and port) and the bridge it leaves by.
    It comes from outside: in by none of `bridges` (cnet's), by which
    interface else cannot be known."""

    family: int
    protocol: str
    daddr: str
    dport: int
    oifname: str
    bridges: tuple = ()


class Decision(NamedTuple):
    """What one chain does with the packet.

    verdict: "accept", "drop", "reject", or "continue" (an nft base chain
    that ends with policy accept lets the packet go on to the next one).
    chain and rule: where that was decided (rule: an nft handle or an
    iptables rule number; None: the chain's policy, or its end). certain:
    False when a rule before it could not be decided. maybe: (chain, rule,
    verdict) of drops and rejects that could not be decided. cnet_rule: the
    rule that decided is cnet's (its comment starts with "cnet", or, in
    iptables, it is in a chain of cnet's)."""

    verdict: str
    chain: str
    rule: int | None
    certain: bool
    maybe: tuple = ()
    cnet_rule: bool = False


# -- readers ---------------------------------------------------------------------

def ruleset() -> list[dict] | None:
    """The items of `nft -j list ruleset`, or None without nft."""
    return hostread.nft_ruleset()


def iptables_save(family: int, table: str) -> str | None:
    """iptables-save -t TABLE (ip6tables-save for 6), or None where it is missing or fails."""
    tool = hostread.SAVE_TOOLS[family]
    if shutil.which(tool) is None:
        return None
    result = subprocess.run([tool, "-t", table], capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else None


# -- nftables: the ruleset ---------------------------------------------------------

class Ruleset:
    """The chains, rules and sets of `nft -j list ruleset`, by (family, table, name)."""

    def __init__(self, items: list[dict]) -> None:
        self.chains: dict[tuple, dict] = {}
        self.rules: dict[tuple, list[dict]] = {}
        self.sets: dict[tuple, list] = {}
        for item in items:
            if "chain" in item:
                c = item["chain"]
                self.chains[(c["family"], c["table"], c["name"])] = c
                self.rules.setdefault((c["family"], c["table"], c["name"]), [])
            elif "rule" in item:
                r = item["rule"]
                self.rules.setdefault((r["family"], r["table"], r["chain"]), []).append(r)
            else:
                kind = "set" if "set" in item else "map" if "map" in item else None
                if kind:
                    s = item[kind]
                    self.sets[(s["family"], s["table"], s["name"])] = s.get("elem", [])

    def forward_chains(self, family: int) -> list[tuple]:
        """The base chains on the forward hook that see a packet of this family, by priority."""
        families = ("inet", "ip" if family == 4 else "ip6")
        found = [(_priority(c.get("prio", 0)), key) for key, c in self.chains.items()
                 if c.get("hook") == "forward" and key[0] in families]
        return [key for _, key in sorted(found)]

    def find(self, table: tuple[str, str], chain: str, wanted) -> dict | None:
        """The first rule of a chain for which wanted(rule) holds."""
        return next((r for r in self.rules.get((*table, chain), []) if wanted(r)), None)


def _priority(prio) -> int:
    named = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100}
    return named.get(prio, 0) if isinstance(prio, str) else int(prio)


def element_key(value) -> str:
    """A map element's key or value as render_full writes it: "tcp . 8080"."""
    if isinstance(value, dict) and "concat" in value:
        return " . ".join(str(v) for v in value["concat"])
    return str(value)


def map_element(rs: Ruleset, table: tuple[str, str], name: str, key: str) -> str | None:
    """"KEY : VALUE" of the element of map `name` with that key, or None."""
    for elem in rs.sets.get((*table, name), []):
        if isinstance(elem, list) and len(elem) == 2 and element_key(elem[0]) == key:
            return f"{key} : {element_key(elem[1])}"
    return None


def uses_map(rule: dict, name: str) -> bool:
    """A rule that takes its DNAT target from map @name."""
    return any(isinstance(e.get("dnat"), dict)
               and (e["dnat"].get("addr") or {}).get("map", {}).get("data") == f"@{name}"
               for e in rule.get("expr", []))


def _matches_of(rule: dict) -> list[dict]:
    return [e["match"] for e in rule.get("expr", []) if "match" in e]


def is_ct_dnat_accept(rule: dict) -> bool:
    """`ct status dnat accept` (comment or counter beside it, nothing else)."""
    matches = _matches_of(rule)
    return (_verdict(rule) == "accept" and len(matches) == 1
            and matches[0]["left"] == {"ct": {"key": "status"}} and matches[0]["right"] == "dnat")


def is_hairpin(rule: dict, family: int) -> bool:
    """`ct status dnat ip(6) saddr @subnets masquerade`."""
    ip = "ip" if family == 4 else "ip6"
    lefts = [m["left"] for m in _matches_of(rule)]
    return (any("masquerade" in e for e in rule.get("expr", [])) and {"ct": {"key": "status"}} in lefts
            and {"payload": {"protocol": ip, "field": "saddr"}} in lefts)


def is_localhost(rule: dict) -> bool:
    """`ip saddr 127.0.0.0/8 oifname @bridges masquerade`."""
    return any("masquerade" in e for e in rule.get("expr", [])) and any(
        m["left"] == {"payload": {"protocol": "ip", "field": "saddr"}}
        and m["right"] == {"prefix": {"addr": "127.0.0.0", "len": 8}} for m in _matches_of(rule))


def _verdict(rule: dict) -> str | None:
    """The verdict statement of a rule: "accept", "drop", "reject", "jump CHAIN",
    "goto CHAIN", "return", "vmap"; None for a rule without one."""
    for e in rule.get("expr", []):
        key = next(iter(e))
        if key in TERMINAL or key == "return":
            return key
        if key in ("jump", "goto"):
            return f"{key} {e[key]['target']}"
        if key == "vmap":
            return "vmap"
        if key == "xt" and e[key].get("type") == "target" and e[key].get("name") in ("ACCEPT", "DROP", "REJECT"):
            return e[key]["name"].lower()
    return None


# -- nftables: following a packet ------------------------------------------------

_UNKNOWN = object()  # a field of the packet that cannot be known


class _NoneOf(NamedTuple):
    """An interface name known only not to be one of these."""

    names: tuple


def _field(left, pkt: Packet):
    """The packet's value of a match's left side; False when the rule cannot
    apply to this packet at all (tcp dport on a UDP packet); _UNKNOWN."""
    if not isinstance(left, dict):
        return _UNKNOWN
    if "payload" in left:
        proto, field = left["payload"].get("protocol"), left["payload"].get("field")
        if proto in ("tcp", "udp", "sctp", "th"):
            if proto != "th" and proto != pkt.protocol:
                return False
            return pkt.dport if field == "dport" else _UNKNOWN
        if proto in ("ip", "ip6"):
            if proto != ("ip" if pkt.family == 4 else "ip6"):
                return False
            return ipaddress.ip_address(pkt.daddr) if field == "daddr" else _UNKNOWN
        return _UNKNOWN
    if "meta" in left:
        key = left["meta"].get("key")
        return {"l4proto": pkt.protocol, "nfproto": "ipv4" if pkt.family == 4 else "ipv6",
                "protocol": "ip" if pkt.family == 4 else "ip6", "oifname": pkt.oifname,
                "iifname": _NoneOf(pkt.bridges) if pkt.bridges else _UNKNOWN}.get(key, _UNKNOWN)
    if "ct" in left and "dir" not in left["ct"]:
        return {"state": {"new"}, "status": {"dnat"}}.get(left["ct"].get("key"), _UNKNOWN)
    return _UNKNOWN


def _member(value, right, rs: Ruleset, table: tuple) -> bool | None:
    """Whether value is (in) right: a value, a set, a range, a prefix, @named set."""
    if isinstance(right, str) and right.startswith("@"):
        if (*table, right[1:]) not in rs.sets:
            return None
        right = {"set": rs.sets[(*table, right[1:])]}
    if isinstance(value, _NoneOf):  # False where right names only such interfaces
        names = right["set"] if isinstance(right, dict) and "set" in right else [right]
        return False if all(isinstance(n, str) and n in value.names for n in names) else None
    if isinstance(right, dict) and "set" in right:
        found = [_member(value, r, rs, table) for r in right["set"]]
        return True if True in found else None if None in found else False
    if isinstance(right, dict) and "prefix" in right:
        if not isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            return None
        try:
            return value in ipaddress.ip_network(f"{right['prefix']['addr']}/{right['prefix']['len']}")
        except ValueError:
            return False  # a prefix of the other family
    if isinstance(right, dict) and "range" in right:
        low, high = right["range"]
        try:
            if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
                return ipaddress.ip_address(low) <= value <= ipaddress.ip_address(high)
            return int(low) <= value <= int(high)
        except (TypeError, ValueError):
            return None
    if isinstance(right, (dict, list)):
        return None  # a concatenation or an expression: not decided
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        try:
            return value == ipaddress.ip_address(right)
        except ValueError:
            return None
    if isinstance(value, str) and isinstance(right, str) and right.endswith("*"):
        return value.startswith(right[:-1])  # an interface name wildcard
    return value == right


def _match(m: dict, pkt: Packet, rs: Ruleset, table: tuple) -> bool | None:
    value = _field(m.get("left"), pkt)
    if value is False:
        return False
    if value is _UNKNOWN:
        return None
    op, right = m.get("op", "=="), m.get("right")
    if isinstance(value, set):  # ct state / status flags: any of them
        wanted = set(right) if isinstance(right, list) else {right}
        hit = bool(value & wanted)
        return hit if op in ("==", "in") else not hit if op == "!=" else None
    if op in ("==", "in", "!="):
        hit = _member(value, right, rs, table)
        return hit if op != "!=" or hit is None else not hit
    if op in ("<", ">", "<=", ">=") and isinstance(value, int) and isinstance(right, int):
        return {"<": value < right, ">": value > right, "<=": value <= right, ">=": value >= right}[op]
    return None


def rule_matches(rule: dict, pkt: Packet, rs: Ruleset) -> bool | None:
    """True, False, or None: not decided (it matches on what cannot be known)."""
    table = (rule["family"], rule["table"])
    decided = True
    for e in rule.get("expr", []):
        key = next(iter(e))
        if key == "match":
            hit = _match(e["match"], pkt, rs, table)
            if hit is False:
                return False
            if hit is None:
                decided = False
        elif key in ("limit", "quota", "meter", "xt") and not (key == "xt" and e[key].get("type") == "target"):
            decided = False  # a rate, a quota or an iptables match
    return True if decided else None


def follow_chain(rs: Ruleset, key: tuple, pkt: Packet) -> Decision:
    """What the base chain `key` (family, table, name) does with the packet."""
    decision = _walk(rs, key, pkt, depth=0)
    if decision.verdict in TERMINAL:
        return decision
    policy = rs.chains[key].get("policy", "accept")
    verdict = policy if policy in TERMINAL else "accept"
    return Decision("continue" if verdict == "accept" else verdict, key[2], None, decision.certain, decision.maybe)


def _walk(rs: Ruleset, key: tuple, pkt: Packet, depth: int) -> Decision:
    """A chain's rules in order: a terminal verdict, or "return" at its end."""
    certain, maybe = True, []
    for rule in rs.rules.get(key, []):
        verdict = _verdict(rule)
        if verdict is None:
            continue
        hit = rule_matches(rule, pkt, rs)
        if hit is False:
            continue
        if verdict in ("drop", "reject") and hit is None:
            maybe.append((key[2], rule["handle"], verdict))
            continue
        if hit is None or verdict == "vmap":
            certain = False  # it may accept, jump or return here
            continue
        if verdict == "return":
            break
        if verdict.startswith(("jump ", "goto ")) and depth < 16:
            inner = _walk(rs, (key[0], key[1], verdict.split()[1]), pkt, depth + 1)
            certain, maybe = certain and inner.certain, maybe + list(inner.maybe)
            if inner.verdict in TERMINAL:
                return inner._replace(certain=certain, maybe=tuple(maybe))
            if verdict.startswith("goto "):
                break
            continue
        if verdict in TERMINAL:
            ours = (rule.get("comment") or "").startswith(CNET_COMMENT)
            return Decision(verdict, key[2], rule["handle"], certain, tuple(maybe), ours)
    return Decision("return", key[2], None, certain, tuple(maybe))


# -- iptables --------------------------------------------------------------------

class IptablesRule(NamedTuple):
    chain: str
    number: int  # 1-based, as `iptables -L CHAIN --line-numbers` counts
    words: list  # after "-A CHAIN"


def iptables_rules(saved: hostread.SavedTables, table: str, chain: str) -> list[IptablesRule]:
    rules = [w[2:] for w in saved.rules.get(table, []) if w[1] == chain]
    return [IptablesRule(chain, i + 1, words) for i, words in enumerate(rules)]


def iptables_target(words: list[str]) -> str | None:
    for flag in ("-j", "-g"):
        if flag in words[:-1]:
            return words[words.index(flag) + 1]
    return None


def iptables_comment(words: list[str]) -> str:
    return words[words.index("--comment") + 1] if "--comment" in words[:-1] else ""


def _ports(text: str) -> list[tuple[int, int]]:
    found = []
    for part in text.split(","):
        low, _, high = part.partition(":")
        found.append((int(low or 0), int(high or 65535) if _ else int(low)))
    return found


def iptables_matches(words: list[str], pkt: Packet) -> bool | None:
    """Whether an iptables rule's options match the packet (None: not decided)."""
    decided, i, negate = True, 0, False
    protocol_numbers = {"6": "tcp", "17": "udp", "132": "sctp"}
    while i < len(words):
        word = words[i]
        if word == "!":
            negate, i = True, i + 1
            continue
        if word in ("-j", "-g"):
            break  # the target and its options
        arg = words[i + 1] if i + 1 < len(words) else ""
        hit: bool | None
        if word in ("-p", "--protocol"):
            hit = arg == "all" or protocol_numbers.get(arg, arg) == pkt.protocol
        elif word in ("-d", "--destination"):
            try:
                hit = ipaddress.ip_address(pkt.daddr) in ipaddress.ip_network(arg, strict=False)
            except ValueError:
                hit = None
        elif word in ("-i", "--in-interface"):
            hit = False if arg in pkt.bridges else None
        elif word in ("-o", "--out-interface"):
            hit = pkt.oifname.startswith(arg[:-1]) if arg.endswith("+") else pkt.oifname == arg
        elif word in ("--dport", "--dports", "--destination-port", "--destination-ports"):
            hit = any(low <= pkt.dport <= high for low, high in _ports(arg))
        elif word in ("--ctstate", "--state"):
            hit = bool({"NEW", "DNAT"} & set(arg.split(",")))
        elif word in ("-m", "--match", "--comment"):
            hit = True  # a module's name, a comment: no condition of its own
        else:
            hit = None
        if hit is None:
            decided = False
        elif hit == negate:
            return False
        negate = False
        i += 1
        while i < len(words) and not words[i].startswith("-") and words[i] != "!":
            i += 1  # the option's arguments
    return True if decided else None


def iptables_forward(saved: hostread.SavedTables, pkt: Packet, own_prefix: str) -> Decision | None:
    """What filter FORWARD does with the packet, following jumps into user
    chains (cnet's own among them); None when there is no FORWARD chain.
    Decision.rule is the rule number in Decision.chain; cnet_rule: that rule
    is cnet's (its comment, or a chain of cnet's)."""
    forward = saved.forward()
    if forward is None:
        return None
    decision = _iptables_walk(saved, "FORWARD", pkt, own_prefix, 0)
    if decision.verdict in TERMINAL:
        return decision
    policy = forward[0].lower()
    return Decision("continue" if policy == "accept" else policy, "FORWARD", None, decision.certain, decision.maybe)


def _iptables_walk(saved, chain: str, pkt: Packet, own_prefix: str, depth: int) -> Decision:
    certain, maybe = True, []
    for rule in iptables_rules(saved, "filter", chain):
        target = iptables_target(rule.words)
        if target is None:
            continue
        hit = iptables_matches(rule.words, pkt)
        if hit is False:
            continue
        verdict = target.lower()
        if verdict in ("drop", "reject") and hit is None:
            maybe.append((chain, rule.number, verdict))
            continue
        if hit is None:
            certain = False
            continue
        if target == "RETURN":
            break
        if verdict in TERMINAL:
            ours = iptables_comment(rule.words).startswith(CNET_COMMENT) or chain.startswith(own_prefix)
            return Decision(verdict, chain, rule.number, certain, tuple(maybe), ours)
        if ("filter", target) not in saved.policies and depth < 16 and iptables_rules(saved, "filter", target):
            inner = _iptables_walk(saved, target, pkt, own_prefix, depth + 1)
            certain, maybe = certain and inner.certain, maybe + list(inner.maybe)
            if inner.verdict in TERMINAL:
                return inner._replace(certain=certain, maybe=tuple(maybe))
            if "-g" in rule.words:
                break
    return Decision("return", chain, None, certain, tuple(maybe))


def find_iptables_rule(saved: hostread.SavedTables, table: str, chain: str, wanted) -> IptablesRule | None:
    return next((r for r in iptables_rules(saved, table, chain) if wanted(r.words)), None)


def option(words: list[str], flag: str) -> str | None:
    return words[words.index(flag) + 1] if flag in words[:-1] else None


def is_dnat_rule(words: list[str], protocol: str, host_port: int, host_ip: str | None, to: str) -> bool:
    """The DNAT rule iptables.render writes for one host port (to: "ADDR:PORT", "[ADDR6]:PORT")."""
    destination = option(words, "-d")
    if host_ip is None:
        wanted_destination = destination is None
    else:
        try:
            wanted_destination = destination is not None and (
                ipaddress.ip_network(destination, strict=False) == ipaddress.ip_network(host_ip))
        except ValueError:
            wanted_destination = False
    return (wanted_destination and option(words, "-p") == protocol and option(words, "--dport") == str(host_port)
            and iptables_target(words) == "DNAT" and option(words, "--to-destination") == to)
