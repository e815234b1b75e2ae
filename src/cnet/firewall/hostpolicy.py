"""Living beside other firewalls on the host.

A packet must be accepted by every base chain it meets (every iptables stack,
every nftables table at the forward hook), so cnet's own accepts cannot
overrule another firewall's drop. cnet puts narrow accepts in each such place
that could drop its traffic, for its bridges only: what comes from them; what
goes to them as a reply (established, related) or to a published port (ct
status dnat); and anything to a `--routed` bridge. An accept ends only the
chain it is in, so cnet's own forward chain still decides the rest
(isolation, internal networks, new connections into a bridge that is not
routed). All of it goes with cnet's last network and is placed again when
the networks change, at `cnet restore`, and `cnet check` reports what a
reload of the host's firewall took away (differences()).

- iptables, in each stack in use: the `iptables` command's (nft or legacy
  variant), and the other one when it has a filter table. Chain CNET-ACCEPT
  (owner.iptables_chain: another state file's carries its id), and a jump to
  it at the top of FORWARD, right after any jump to a cnet FORWARD chain
  (the iptables backend's, which must see the traffic first), wherever
  FORWARD's policy is not ACCEPT or it holds a rule that is not cnet's (a
  RHEL final REJECT, Docker's or ufw's jumps). That is enough for Docker's
  DOCKER-USER and ufw's ufw-user-forward too: they are reached from FORWARD
  after that jump, and an ACCEPT in FORWARD ends the filter table's FORWARD
  for the packet, so neither they nor DOCKER-FORWARD, ufw-before-forward or a
  final REJECT see cnet's traffic.
- nftables: in every base chain at the forward hook of a table of family ip,
  ip6 or inet that is not cnet's (nor iptables-nft's filter table, handled
  as iptables above) and that may drop (policy drop, or a drop, reject, jump
  or goto rule): the same accepts as rules at its top, each with the comment
  "TAG accept FINGERPRINT" (TAG: owner.tag; FINGERPRINT: CRC-32 of the
  rules, so a stale rule is told from a current one), found by comment and
  deleted by handle, all chains in one transaction. That covers firewalld's
  table inet firewalld: cnet does not run firewall-cmd (not installed on
  most hosts that have the table without the daemon, and a zone change is
  the user's); a firewalld reload removes cnet's rules, `cnet check` says
  so, and `cnet restore` puts them back.
- Where cnet adds nothing (a forward chain of another family, such as
  bridge; iptables-nft's other tables; a chain that refused cnet's rules) it
  warns: at create bridge (sync) and at every command such a drop affects
  (create ns, attach, publish: warnings()).

Reading costs: nftables through libnftables in-process, `list tables` and
one `list table` per table that is not cnet's (~2-3 ms here, whatever the
number of published ports, which only cnet's own maps hold); iptables one
`*-save -t filter` process per stack in use (~5-10 ms each), at sync, check
and restore only.
"""

from __future__ import annotations

import shutil
import subprocess
import zlib
from typing import NamedTuple

from . import hostread
from .plan import FirewallPlan, Structure

CHAIN = "CNET-ACCEPT"  # the default state file's: owner.iptables_chain("ACCEPT")
FAMILIES = {4: ("iptables", "ip"), 6: ("ip6tables", "ip6")}  # family -> (its iptables tool, its nft family)
NFT_FAMILIES = ("ip", "ip6", "inet")  # the nft families whose forward chains cnet adds its accepts to


def _run(cmd: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "unknown error")


def _needs_family(s: Structure, family: int) -> bool:
    """IPv4 for every network (as the iptables backend), IPv6 where a subnet has it."""
    return bool(s.bridges) and (family == 4 or bool(s.subnets6))


# -- iptables --------------------------------------------------------------------

def render_accept(plan: FirewallPlan, chain: str = CHAIN) -> str:
    """iptables-restore input that makes `chain` hold cnet's accepts."""
    lines = ["*filter\n", f":{chain} - [0:0]\n", f"-F {chain}\n"]
    for bridge in plan.structure.bridges:
        lines.append(f"-A {chain} -i {bridge} -j ACCEPT\n")
        lines.append(f"-A {chain} -o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT\n")
    for bridge in plan.structure.routed:
        lines.append(f"-A {chain} -o {bridge} -j ACCEPT\n")
    lines.append("COMMIT\n")
    return "".join(lines)


class Stack(NamedTuple):
    """An iptables stack in use for one family."""

    family: int
    tool: str  # "iptables", "ip6tables-legacy", "iptables-nft", ...
    variant: str  # "nft", "legacy", "" (not known)


def stacks(items: list[dict] | None) -> list[Stack]:
    """The stacks with a filter table: `iptables`'s (`ip6tables`'s), and the
    other variant's. Asking a stack with no table would make one, so the
    legacy stack is read from /proc/net/ip(6)_tables_names and the nft one
    from the ruleset (items: `list ruleset`, None if it could not be read)."""
    found = []
    for family, (tool, nft_family) in FAMILIES.items():
        variant = hostread.iptables_variant(family)
        if variant is None:
            if shutil.which(tool):
                found.append(Stack(family, tool, ""))
            continue
        if _has_filter(variant, family, items):
            found.append(Stack(family, tool, variant))
        other = "legacy" if variant == "nft" else "nft"
        if shutil.which(f"{tool}-{other}") and _has_filter(other, family, items):
            found.append(Stack(family, f"{tool}-{other}", other))
    return found


def _has_filter(variant: str, family: int, items: list[dict] | None) -> bool:
    if variant == "legacy":
        try:
            with open("/proc/net/ip_tables_names" if family == 4 else "/proc/net/ip6_tables_names") as f:
                return "filter" in f.read().split()
        except OSError:
            return False
    return items is None or hostread.has_table(items, FAMILIES[family][1], "filter")


class View(NamedTuple):
    """What a stack's filter table holds of FORWARD and of cnet's accept chain."""

    policy: str
    forward: list[list[str]]  # the words of each FORWARD rule after "-A FORWARD"
    accept: list[str] | None  # the accept chain's "-A" lines; None: no such chain


def read_view(text: str, chain: str) -> View | None:
    """From `iptables-save -t filter`; None without a FORWARD chain."""
    saved = hostread.parse_save(text)
    forward = saved.forward()
    if forward is None:
        return None
    exists = any(line.startswith(f":{chain} ") for line in text.splitlines())
    accept = [" ".join(w) for w in saved.rules.get("filter", []) if w[1] == chain] if exists else None
    return View(forward[0], forward[1], accept)


def _target(words: list[str]) -> str:
    return words[words.index("-j") + 1] if "-j" in words[:-1] else ""


def is_cnets(words: list[str]) -> bool:
    """A jump to a chain of cnet's (CNET-..., CNETid-...), of any state file."""
    return _target(words).startswith("CNET")


def _is_cnet_forward(words: list[str]) -> bool:
    target = _target(words)
    return target.startswith("CNET") and target.endswith("-FORWARD")


def forward_refusal(view: View) -> str | None:
    """Why FORWARD may drop cnet's traffic (a phrase), None when it cannot."""
    if view.policy != "ACCEPT":
        return f"has policy {view.policy}"
    foreign = next((i for i, words in enumerate(view.forward) if not is_cnets(words)), None)
    if foreign is None:
        return None
    return f"holds rules that are not cnet's (rule {foreign + 1}: `{' '.join(view.forward[foreign])}`)"


def jump_in_place(view: View, chain: str) -> bool:
    """One jump to `chain`, after every jump to a cnet FORWARD chain and before any rule not cnet's."""
    jumps = [i for i, words in enumerate(view.forward) if _target(words) == chain]
    if len(jumps) != 1:
        return False
    before, after = view.forward[:jumps[0]], view.forward[jumps[0] + 1:]
    return all(is_cnets(w) for w in before) and not any(_is_cnet_forward(w) for w in after)


def jump_position(view: View, chain: str) -> int:
    """Where (`-I FORWARD N`) the jump goes once the old ones are deleted."""
    rules = [words for words in view.forward if _target(words) != chain]
    return 1 + max((i + 1 for i, words in enumerate(rules) if _is_cnet_forward(words)), default=0)


def _wanted_lines(plan: FirewallPlan, chain: str) -> list[str]:
    return [line.strip() for line in render_accept(plan, chain).splitlines() if line.startswith("-A ")]


def _read(stack: Stack, chain: str) -> View | None:
    result = _run([f"{stack.tool}-save", "-t", "filter"])
    return read_view(result.stdout, chain) if result.returncode == 0 else None


def _iptables_sync(stack: Stack, view: View, plan: FirewallPlan, chain: str) -> str | None:
    """Make one stack hold what `plan` needs; returns a warning if it could not."""
    tool = stack.tool
    why = forward_refusal(view) if _needs_family(plan.structure, stack.family) else None
    jumps = sum(1 for words in view.forward if _target(words) == chain)
    if why is None:
        if view.accept is not None or jumps:
            for _ in range(jumps):
                _run([tool, "-t", "filter", "-D", "FORWARD", "-j", chain])
            _run([tool, "-t", "filter", "-F", chain])
            _run([tool, "-t", "filter", "-X", chain])
        return None
    result = None
    if view.accept != _wanted_lines(plan, chain):
        result = _run([f"{tool}-restore", "--noflush"], render_accept(plan, chain))
    if (result is None or result.returncode == 0) and not jump_in_place(view, chain):
        for _ in range(jumps):
            _run([tool, "-t", "filter", "-D", "FORWARD", "-j", chain])
        result = _run([tool, "-t", "filter", "-I", "FORWARD", str(jump_position(view, chain)), "-j", chain])
    if result is not None and result.returncode != 0:
        return (f"{tool}: FORWARD {why}, and cnet could not add its accept rules there ({_first_line(result.stderr)}):"
                " forwarded traffic of cnet's networks is dropped there")
    return None


def _iptables_difference(stack: Stack, view: View, plan: FirewallPlan, chain: str) -> str | None:
    why = forward_refusal(view) if _needs_family(plan.structure, stack.family) else None
    present = view.accept is not None or any(_target(words) == chain for words in view.forward)
    if why is None:
        return (f"extra {stack.tool} chain {chain} (nothing in FORWARD drops cnet's traffic, or the state has no"
                " network that needs it)") if present else None
    if view.accept != _wanted_lines(plan, chain) or not jump_in_place(view, chain):
        return (f"{stack.tool}: FORWARD {why}, and cnet's accepts are missing there (chain {chain} and a jump to it"
                " at the top of FORWARD): forwarded traffic of cnet's networks is dropped")
    return None


# -- nftables --------------------------------------------------------------------

def _nft_set(names) -> str:
    return "{ " + ", ".join(f'"{n}"' for n in names) + " }"


def nft_rules(s: Structure) -> list[str]:
    """The accepts cnet puts at the top of another table's forward chain, in order."""
    bridges = _nft_set(s.bridges)
    rules = [f"iifname {bridges} accept",
             f"oifname {bridges} ct state established,related accept",
             f"oifname {bridges} ct status dnat accept"]
    if s.routed:
        rules.append(f"oifname {_nft_set(s.routed)} accept")
    return rules


def nft_comment(s: Structure, tag: str) -> str:
    fingerprint = zlib.crc32("\n".join(nft_rules(s)).encode())
    return f"{tag} accept {fingerprint:08x}"


def _own(rule: hostread.NftRule, tag: str) -> bool:
    return rule.comment.split()[:2] == [tag, "accept"]


class ChainFix(NamedTuple):
    """A change to one foreign chain: the nft script, and what is wrong until
    it runs; missing: cnet's accepts are (else stale ones are left there)."""

    chain: hostread.ForwardChain
    script: str
    problem: str
    missing: bool


def answered(chain: hostread.ForwardChain, skip) -> bool:
    """Whether cnet adds its accepts to this chain when it may drop. skip(family,
    table): a table read as iptables (iptables-nft's)."""
    return chain.family in NFT_FAMILIES and not skip(chain.family, chain.table)


def nft_fixes(chains: list[hostread.ForwardChain], s: Structure, tag: str, skip) -> list[ChainFix]:
    """What to change in others' forward chains so they hold cnet's accepts
    for `s` (an empty structure: none) exactly where they may drop."""
    fixes = []
    for chain in chains:
        ours = [r for r in chain.rules if _own(r, tag)]
        where = f"{chain.family} {chain.table} {chain.name}"
        deletes = "".join(f"delete rule {where} handle {r.handle}\n" for r in ours)
        family = {"ip": 4, "ip6": 6}.get(chain.family)  # inet: both
        wanted = bool(s.bridges) and answered(chain, skip) and (family is None or _needs_family(s, family))
        why = chain.refusal() if wanted else None
        if why is None:
            if ours:
                fixes.append(ChainFix(chain, deletes, f"extra accept rules of cnet's in nftables {chain.where}"
                                      " (nothing of cnet's needs them there)", False))
            continue
        comment = nft_comment(s, tag)
        rules = nft_rules(s)
        first_foreign = next((i for i, r in enumerate(chain.rules) if not hostread.is_cnet_comment(r.comment)),
                             len(chain.rules))
        in_place = (len(ours) == len(rules) and all(r.comment == comment for r in ours)
                    and all(chain.rules.index(r) < first_foreign for r in ours))
        if not in_place:
            inserts = "".join(f'insert rule {where} {rule} comment "{comment}"\n' for rule in reversed(rules))
            fixes.append(ChainFix(chain, deletes + inserts,
                                  f"nftables {chain.where} (not cnet's) has {why}, and cnet's accepts at its top are"
                                  " missing or out of date: forwarded traffic of cnet's networks is dropped there",
                                  True))
    return fixes


def untouched(chains: list[hostread.ForwardChain], skip) -> list[tuple[hostread.ForwardChain, str, str]]:
    """(chain, why it may drop, why cnet adds nothing there) for the dropping
    forward chains cnet leaves alone."""
    found = []
    for chain in chains:
        why = chain.refusal()
        if why is None or answered(chain, skip):
            continue
        if chain.family not in NFT_FAMILIES:
            reason = f"cnet adds rules to chains of families {', '.join(NFT_FAMILIES)} only"
        elif chain.table == "filter":
            continue  # iptables-nft's filter FORWARD: answered through iptables
        else:
            reason = f"it is iptables-nft's table {chain.table}: cnet answers filter FORWARD only"
        found.append((chain, why, reason))
    return found


def untouched_warning(chain: hostread.ForwardChain, why: str, reason: str, networks: str, bridge: str) -> str:
    return (f"nftables {chain.where} (not cnet's) has {why}: a packet must pass every forward chain, so forwarded"
            f" traffic of {networks} may be dropped there whatever cnet accepts, and cnet adds nothing there"
            f" ({reason}); accept it in that chain first (iifname \"{bridge}\" accept; oifname \"{bridge}\" ct state"
            " established,related accept; ct status dnat accept), or remove the chain")


def untouched_in(items: list[dict]) -> list[tuple[hostread.ForwardChain, str, str]]:
    """untouched() of a ruleset (core/health.py)."""
    return untouched(hostread.nft_forward_chains(items), _skip_of(stacks(items)))


def _skip_of(found: list[Stack]):
    """skip(family, table) for nft_fixes: the tables of the iptables-nft stacks in use."""
    nft = {FAMILIES[s.family][1] for s in found if s.variant == "nft"}
    return lambda family, table: family in nft and hostread.iptables_nft_table(family, table)


def _nft_apply(fixes: list[ChainFix]) -> list[str]:
    """Run the fixes in one transaction; if nft refuses it, chain by chain,
    to name the ones that refuse. Returns a warning for each of those."""
    from .nftables import _run as nft

    if not fixes or not nft("".join(f.script for f in fixes))[0]:
        return []
    failed = []
    for fix in fixes:
        errors, _ = nft(fix.script)
        if errors:
            failed.append(f"nft refused cnet's accept rules for {fix.chain.where} ({_first_line(errors)}):"
                          " forwarded traffic of cnet's networks may be dropped there")
    return failed


# -- what the rest of cnet calls ----------------------------------------------------

def sync(plan: FirewallPlan, owner) -> list[str]:
    """Place cnet's accepts wherever a foreign firewall may drop its traffic,
    take out stale ones (all of them when the plan is empty); return warnings
    about what cnet could not or does not answer."""
    chain = owner.iptables_chain("ACCEPT")
    items = hostread.nft_foreign_ruleset()
    found = stacks(items)
    warnings = []
    for stack in found:
        view = _read(stack, chain)
        if view is not None and (warning := _iptables_sync(stack, view, plan, chain)):
            warnings.append(warning)
    if items is None:
        return warnings
    chains = hostread.nft_forward_chains(items)
    skip = _skip_of(found)
    warnings += _nft_apply(nft_fixes(chains, plan.structure, owner.tag, skip))
    if not plan.empty:
        bridge = plan.structure.bridges[0]
        warnings += [untouched_warning(c, why, reason, "cnet's networks", bridge)
                     for c, why, reason in untouched(chains, skip)]
        if hostread.has_firewalld(items) and shutil.which("firewall-cmd"):
            warnings.append("firewalld runs here: cnet added its accepts to table inet firewalld, which the next"
                            " `firewall-cmd --reload` removes (then `cnet restore`); for a lasting setup put cnet's"
                            f" bridges in a zone that forwards (firewall-cmd --permanent --zone=trusted"
                            f" --add-interface={bridge})")
    return warnings


def differences(plan: FirewallPlan, owner) -> list[str]:
    """What is missing or stale of cnet's accepts in foreign firewalls, a line each."""
    chain = owner.iptables_chain("ACCEPT")
    items = hostread.nft_foreign_ruleset()
    found = stacks(items)
    lines = []
    for stack in found:
        view = _read(stack, chain)
        if view is not None and (line := _iptables_difference(stack, view, plan, chain)):
            lines.append(line)
    if items is not None:
        lines += [f.problem for f in nft_fixes(hostread.nft_forward_chains(items), plan.structure, owner.tag,
                                               _skip_of(found))]
    return lines


def warnings(s: Structure, owner) -> list[str]:
    """For create ns, attach and publish: the forward chains that drop what
    they are about and that cnet does not answer, or no longer does (the host's
    firewall reloaded). nftables only (~2-3 ms, no process), which shows
    iptables-nft's FORWARD too; the legacy stack is left to `cnet check`."""
    if not s.bridges:
        return []
    items = hostread.nft_foreign_ruleset()
    if items is None:
        return []
    chains = hostread.nft_forward_chains(items)
    skip = _skip_of(stacks(items))
    found = [untouched_warning(c, why, reason, "cnet's networks", s.bridges[0])
             for c, why, reason in untouched(chains, skip)]
    lost = [f.problem for f in nft_fixes(chains, s, owner.tag, skip) if f.missing]
    lost += _iptables_nft_without_jump(items, s, owner.iptables_chain("ACCEPT"))
    return found + [f"{line}; `cnet restore` puts cnet's accepts back" for line in lost]


def _iptables_nft_without_jump(items: list[dict], s: Structure, chain: str) -> list[str]:
    """iptables-nft's FORWARD, as the ruleset shows it: may it drop, and does it lack the jump to `chain`?"""
    found = []
    for family, (tool, nft_family) in FAMILIES.items():
        if not _needs_family(s, family) or hostread.iptables_variant(family) != "nft":
            continue
        forward = next((c for c in hostread.nft_forward_chains(items)
                        if (c.family, c.table, c.name) == (nft_family, "filter", "FORWARD")), None)
        if forward is None or hostread.jumps_to(items, nft_family, "filter", "FORWARD", chain):
            continue
        if forward.policy == "drop" or forward.refusal():
            found.append(f"{tool}: FORWARD may drop forwarded traffic of cnet's networks, and its jump to {chain}"
                         " is missing")
    return found


def placed(owner) -> list[str]:
    """What cnet holds in firewalls it does not own, a line each (check --json)."""
    chain = owner.iptables_chain("ACCEPT")
    items = hostread.nft_foreign_ruleset()
    lines = []
    for stack in stacks(items):
        view = _read(stack, chain)
        if view is None or view.accept is None:
            continue
        at = [str(i + 1) for i, words in enumerate(view.forward) if _target(words) == chain]
        lines.append(f"{stack.tool} filter: chain {chain} ({len(view.accept)} rules), jumped to from FORWARD"
                     f" rule {', '.join(at) or '(none)'}")
    for c in hostread.nft_forward_chains(items or []):
        handles = [str(r.handle) for r in c.rules if _own(r, owner.tag)]
        if handles:
            lines.append(f"nftables {c.where}: {len(handles)} accept rules (handles {', '.join(handles)})")
    return lines

