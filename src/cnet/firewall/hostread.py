"""Reading the host's own firewall, for `cnet check`'s health warnings and for
the accepts cnet adds to it (hostpolicy.py): what in the iptables FORWARD
chains and in nftables' forward-hook base chains drops or rejects forwarded
traffic, and whether two iptables stacks filter at once.

The readers run the tools and return their output, or None where a tool is
missing or fails (no warning then, never an error). The parsers are pure
(tests/unit/test_hostread.py feeds them recorded output). Nothing here
changes the firewall.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from typing import NamedTuple

IPTABLES_TABLES = {"filter", "nat", "mangle", "raw", "security"}  # the tables iptables-nft makes in nft
FIREWALLD_TABLE = ("inet", "firewalld")
LEGACY_TOOLS = {4: "iptables-legacy-save", 6: "ip6tables-legacy-save"}
SAVE_TOOLS = {4: "iptables-save", 6: "ip6tables-save"}


# -- readers -------------------------------------------------------------------

def _output(cmd: list[str]) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    result = subprocess.run(cmd, capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else None


def iptables_variant(family: int) -> str | None:
    """"nft" or "legacy": which stack `iptables` (`ip6tables`) is, from the
    program its name resolves to (xtables-nft-multi, xtables-legacy-multi), so
    no process is started; None when it is missing or neither."""
    path = shutil.which("iptables" if family == 4 else "ip6tables")
    if path is None:
        return None
    program = os.path.basename(os.path.realpath(path))
    return "legacy" if "legacy" in program else "nft" if "nft" in program else None


def iptables_filter(family: int) -> str | None:
    """`iptables-save -t filter` (or ip6tables-save) of whichever stack `iptables` is."""
    return _output([SAVE_TOOLS[family], "-t", "filter"])


def legacy_rules_text(family: int) -> str | None:
    """iptables-legacy-save of every table, or None when the legacy stack has
    no table in this namespace at all. The kernel makes a legacy table on its
    first use and lists it in /proc/net/ip(6)_tables_names, so on most hosts
    this costs one small read and no process."""
    names = "/proc/net/ip_tables_names" if family == 4 else "/proc/net/ip6_tables_names"
    try:
        with open(names) as f:
            if not f.read().strip():
                return None
    except OSError:  # no legacy iptables in this kernel
        return None
    return _output([LEGACY_TOOLS[family]])


def nft_ruleset() -> list[dict] | None:
    """The items of `nft -j list ruleset` (through libnftables in-process where
    it is installed), or None without nft."""
    from ..errors import OperationFailed
    from .nftables import _run

    try:
        errors, output = _run("list ruleset", json_output=True)
    except OperationFailed:  # no libnftables and no nft
        return None
    if errors:
        return None
    try:
        return json.loads(output).get("nftables", []) if output.strip() else []
    except ValueError:
        return None


def nft_foreign_ruleset() -> list[dict] | None:
    """nft_ruleset() without cnet's own tables, whose maps grow with the
    published ports: `list tables`, then `list table` of each other one (one
    command a run: nft 1.0.6 lists only one table of a script of several)."""
    from ..errors import OperationFailed
    from .nftables import _run

    items = []
    try:
        errors, output = _run("list tables", json_output=True)
        if errors:
            return None
        for table in [i["table"] for i in json.loads(output).get("nftables", []) if "table" in i]:
            if table["name"].startswith("cnet"):
                continue
            errors, output = _run(f"list table {table['family']} {table['name']}", json_output=True)
            if errors:
                return None
            items += json.loads(output).get("nftables", [])
    except (OperationFailed, ValueError):
        return None
    return items


# -- iptables-save ---------------------------------------------------------------

@dataclass(frozen=True)
class SavedTables:
    """What iptables-save printed: the policy of each built-in chain and the
    rules ("-A" lines, as words), by table."""

    policies: dict[tuple[str, str], str]  # (table, chain) -> ACCEPT | DROP
    rules: dict[str, list[list[str]]]  # table -> the words of each "-A" line, in order

    @property
    def rule_count(self) -> int:
        return sum(len(r) for r in self.rules.values())

    def restrictive_policies(self) -> list[str]:
        """"filter FORWARD DROP", ... for every built-in chain not accepting by default."""
        return [f"{table} {chain} {policy}" for (table, chain), policy in sorted(self.policies.items())
                if policy != "ACCEPT"]

    def forward(self) -> tuple[str, list[list[str]]] | None:
        """(policy, rules) of filter FORWARD, the rules without their "-A FORWARD"."""
        policy = self.policies.get(("filter", "FORWARD"))
        if policy is None:
            return None
        return policy, [words[2:] for words in self.rules.get("filter", []) if words[1] == "FORWARD"]


def parse_save(text: str) -> SavedTables:
    policies, rules, table = {}, {}, None
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
            rules.setdefault(table, [])
        elif line.startswith(":") and table:
            chain, _, rest = line[1:].partition(" ")
            policy = rest.split()[0] if rest.split() else "-"
            if policy != "-":  # "-": a user chain, which has no policy
                policies[(table, chain)] = policy
        elif line.startswith("-A ") and table:
            try:
                words = shlex.split(line)
            except ValueError:  # an unbalanced quote in a comment: take the words as they are
                words = line.split()
            if len(words) >= 2:
                rules[table].append(words)
    return SavedTables(policies, rules)


def _without_comments(words: list[str]) -> list[str]:
    kept, i = [], 0
    while i < len(words):
        if words[i:i + 3] == ["-m", "comment", "--comment"]:
            i += 4
            continue
        kept.append(words[i])
        i += 1
    return kept


def _is_unconditional_drop(words: list[str]) -> bool:
    """A rule (its words after "-A CHAIN") that drops or rejects every packet:
    a DROP or REJECT target and no match but a comment."""
    rest = _without_comments(words)
    return rest in (["-j", "DROP"], ["-j", "REJECT"]) or (
        rest[:2] == ["-j", "REJECT"] and len(rest) == 4 and rest[2] == "--reject-with")


class Blocked(NamedTuple):
    """Why a FORWARD chain drops cnet's forwarded traffic."""

    why: str  # a phrase
    by_policy: bool  # True: its policy (cnet's jump is missing); False: a rule refusing everything


def forward_blocks(policy: str, rules: list[list[str]], accept_chain: str) -> Blocked | None:
    """Whether a FORWARD chain (its policy and rules, as SavedTables.forward
    gives them) drops the forwarded traffic of cnet's networks; None when it
    does not. cnet answers a policy that is not ACCEPT, or rules that are
    not its own, with a jump to accept_chain at the top of the chain
    (hostpolicy.py): a rule that drops or rejects every packet before that
    jump defeats it, and so does one when the jump is missing."""
    jump = next((i for i, words in enumerate(rules) if words[-2:] == ["-j", accept_chain]), None)
    drop = next((i for i, words in enumerate(rules) if _is_unconditional_drop(words)), None)
    if drop is not None and (jump is None or drop < jump):
        where = (f"before the jump to {accept_chain}" if jump is not None
                 else f"and no jump to {accept_chain} comes first")
        return Blocked(f"rule {drop + 1} of FORWARD (`{' '.join(rules[drop])}`) refuses every packet {where}", False)
    if policy != "ACCEPT" and jump is None:
        return Blocked(f"the FORWARD policy is {policy} and FORWARD has no jump to {accept_chain}", True)
    return None


# -- nftables ----------------------------------------------------------------------

@dataclass(frozen=True)
class NftBlock:
    """A base chain on the forward hook that drops what no rule before accepted."""

    family: str
    table: str
    chain: str
    why: str  # "policy drop", "a rule that rejects every packet"

    @property
    def where(self) -> str:
        return f"chain {self.chain} of table {self.family} {self.table}"


def _verdict_of_unconditional(expr: list[dict]) -> str | None:
    """"drop" or "reject" for a rule that refuses every packet (a counter or
    log beside the verdict, and no match), None for any other rule."""
    if not expr or not all(next(iter(e)) in ("counter", "log") for e in expr[:-1]):
        return None
    last = expr[-1]
    if "drop" in last:
        return "drop"
    if "reject" in last:
        return "reject"
    xt = last.get("xt") or {}  # a target iptables-nft wrote that nft cannot show natively
    if xt.get("type") == "target" and xt.get("name") in ("DROP", "REJECT"):
        return xt["name"].lower()
    return None


def iptables_nft_table(family: str, table: str) -> bool:
    """A table iptables-nft makes (and iptables-save shows)."""
    return family in ("ip", "ip6") and table in IPTABLES_TABLES


def nft_forward_blocks(items: list[dict], skip) -> list[NftBlock]:
    """Forward-hook base chains that refuse what they do not accept: policy
    drop, or a rule refusing every packet. Leaves out cnet's own tables
    (names starting with "cnet"), firewalld's (reported on its own) and the
    tables skip(family, table) says are read another way (iptables-nft's,
    through iptables-save)."""
    chains, first_drop = {}, {}
    for item in items:
        if "chain" in item:
            c = item["chain"]
            if c.get("hook") == "forward":
                chains[(c["family"], c["table"], c["name"])] = c
        elif "rule" in item:
            r = item["rule"]
            key = (r["family"], r["table"], r["chain"])
            if key not in first_drop:
                verdict = _verdict_of_unconditional(r.get("expr", []))
                if verdict:
                    first_drop[key] = verdict
    found = []
    for (family, table, name), c in chains.items():
        if table.startswith("cnet") or (family, table) == FIREWALLD_TABLE or skip(family, table):
            continue
        if c.get("policy") == "drop":
            found.append(NftBlock(family, table, name, "policy drop"))
        elif (family, table, name) in first_drop:
            verdict = first_drop[(family, table, name)]
            found.append(NftBlock(family, table, name, f"a rule that {verdict}s every packet"))
    return found


def has_firewalld(items: list[dict]) -> bool:
    return any("table" in i and (i["table"]["family"], i["table"]["name"]) == FIREWALLD_TABLE for i in items)


def iptables_nft_rules(items: list[dict], family: str) -> int:
    """Rules in the nft tables iptables-nft makes for one family ("ip", "ip6"),
    but cnet's (in its CNET* chains, or jumping to one)."""
    return sum(1 for i in items if "rule" in i and i["rule"]["family"] == family
               and iptables_nft_table(family, i["rule"]["table"]) and not _cnets_nft_rule(i["rule"]))


def _cnets_nft_rule(rule: dict) -> bool:
    return rule["chain"].startswith("CNET") or any(
        str(e.get("jump", {}).get("target", "")).startswith("CNET") for e in rule.get("expr", ()))


# -- nftables forward chains cnet answers (hostpolicy.py) --------------------------

REFUSING = {"drop", "reject", "jump", "goto"}  # verdicts after which a packet may be dropped


def _refusal_in(value) -> str | None:
    """The first refusing verdict anywhere in a rule's expressions (also
    inside a verdict map), or an iptables-nft DROP/REJECT target."""
    if isinstance(value, list):
        return next((found for v in value if (found := _refusal_in(v))), None)
    if not isinstance(value, dict):
        return None
    for key, inner in value.items():
        if key in REFUSING:
            return key
        if key == "xt" and isinstance(inner, dict) and inner.get("name") in ("DROP", "REJECT"):
            return inner["name"].lower()
        found = _refusal_in(inner)
        if found:
            return found
    return None


def is_cnet_comment(comment: str | None) -> bool:
    """A comment cnet puts on the rules it adds to others' chains ("cnet
    accept ..." or "cnet@ID accept ...", owner.py), of any state file."""
    words = (comment or "").split()
    return len(words) >= 2 and (words[0] == "cnet" or words[0].startswith("cnet@")) and words[1] == "accept"


class NftRule(NamedTuple):
    handle: int
    comment: str
    refusal: str | None  # "drop", "reject", "jump", "goto": how it may drop a packet; None: it cannot


@dataclass(frozen=True)
class ForwardChain:
    """A base chain at the forward hook of a table that is not cnet's, and its rules in order."""

    family: str
    table: str
    name: str
    policy: str
    rules: tuple[NftRule, ...]

    @property
    def where(self) -> str:
        return f"chain {self.name} of table {self.family} {self.table}"

    def refusal(self) -> str | None:
        """How it may drop cnet's traffic ("policy drop", "a reject rule"), None if it cannot."""
        if self.policy == "drop":
            return "policy drop"
        found = next((r.refusal for r in self.rules if r.refusal and not is_cnet_comment(r.comment)), None)
        return f"a {found} rule" if found else None


def nft_forward_chains(items: list[dict]) -> list[ForwardChain]:
    """Every base chain at the forward hook (any family) of a table whose name
    does not start with "cnet", with its rules, as `list ruleset` gives them."""
    chains: dict[tuple[str, str, str], dict] = {}
    rules: dict[tuple[str, str, str], list[NftRule]] = {}
    for item in items:
        if "chain" in item:
            c = item["chain"]
            if c.get("hook") == "forward" and not c["table"].startswith("cnet"):
                chains[(c["family"], c["table"], c["name"])] = c
        elif "rule" in item:
            r = item["rule"]
            refusal = None if _cnets_nft_rule(r) else _refusal_in(r.get("expr", []))  # cnet's jumps: iptables-nft's
            rules.setdefault((r["family"], r["table"], r["chain"]), []).append(
                NftRule(r.get("handle", 0), r.get("comment", ""), refusal))
    return [ForwardChain(family, table, name, c.get("policy", "accept"), tuple(rules.get((family, table, name), ())))
            for (family, table, name), c in chains.items()]


def has_table(items: list[dict], family: str, name: str) -> bool:
    return any("table" in i and (i["table"]["family"], i["table"]["name"]) == (family, name) for i in items)


def jumps_to(items: list[dict], family: str, table: str, chain: str, target: str) -> bool:
    """Whether a rule of that chain jumps to chain `target` (as iptables-nft writes a -j to a user chain)."""
    return any("rule" in i and (i["rule"]["family"], i["rule"]["table"], i["rule"]["chain"]) == (family, table, chain)
               and any(e.get("jump", {}).get("target") == target for e in i["rule"].get("expr", ()))
               for i in items)
