"""The iptables backend (iptables-nft or legacy, whichever `iptables` is).

cnet's rules live in its own chains, rebuilt whole by one
`iptables-restore --noflush` per table and family (atomic per table; other
chains are not touched), and reached by one jump each from the built-in
chains. iptables has no maps, so each published host port is one DNAT rule;
isolation is two rules per network (Docker's two-stage scheme), never one
per pair of networks.

As in nftables.py, and for the same reasons (speed, issue 12; no verdict
changes): traffic between cnet subnets not to a host address is not tracked
(raw chains NOTRACK and NOTRACK-FROM), and same-bridge traffic of a bridge
that is not --no-icc returns from cnet's FORWARD chain at its first rules.
"""

from __future__ import annotations

import shutil
import subprocess

from .. import verbose
from ..errors import OperationFailed
from ..kernel.privilege import refused
from .plan import FirewallPlan

# (table, built-in chain, cnet chain, where the jump goes); chains named without
# their prefix ("CNET-", or "CNETid-" for a state file other than the default: owner.py)
JUMPS = [
    ("nat", "PREROUTING", "PREROUTING", "-I"),
    ("nat", "OUTPUT", "OUTPUT", "-I"),
    ("nat", "POSTROUTING", "POSTROUTING", "-I"),
    ("filter", "FORWARD", "FORWARD", "-I"),
    ("raw", "PREROUTING", "LOOPBACK", "-I"),
    ("raw", "PREROUTING", "NOTRACK", "-I"),
]
CHAINS = {
    "nat": ["PREROUTING", "OUTPUT", "POSTROUTING", "DNAT"],
    "filter": ["FORWARD", "ISOLATION"],
    "raw": ["LOOPBACK", "NOTRACK", "NOTRACK-FROM"],
}
TOOLS = {4: ("iptables", "iptables-restore"), 6: ("ip6tables", "ip6tables-restore")}
HOSTPOLICY_CHAIN = "ACCEPT"  # P + this: hostpolicy.py's accepts in the host's FORWARD, not this backend's


def render(plan: FirewallPlan, family: int, P: str = "CNET-") -> str:
    """iptables-restore input that rebuilds cnet's chains for one family; P: their prefix."""
    s = plan.structure
    subnets = s.subnets4 if family == 4 else s.subnets6
    out = ["*nat\n"]
    out += [f":{P}{c} - [0:0]\n" for c in CHAINS["nat"]]
    out += [f"-F {P}{c}\n" for c in CHAINS["nat"]]
    out.append(f"-A {P}PREROUTING -m addrtype --dst-type LOCAL -j {P}DNAT\n")
    if family == 6:  # [::1] is never published: refused at once, not sent to a sandbox it cannot reach
        out.append(f"-A {P}OUTPUT -d ::1/128 -j RETURN\n")
    out.append(f"-A {P}OUTPUT -m addrtype --dst-type LOCAL -j {P}DNAT\n")
    for d in sorted(plan.dnat):
        if d.family != family:
            continue
        dst = f"-d {d.host_ip} " if d.host_ip else ""
        target = f"[{d.target_ip}]" if family == 6 else d.target_ip
        out.append(f"-A {P}DNAT {dst}-p {d.protocol} -m {d.protocol} --dport {d.host_port} "
                   f"-j DNAT --to-destination {target}:{d.target_port}\n")
    for subnet in subnets:
        out.append(f"-A {P}POSTROUTING -s {subnet} -m conntrack --ctstate DNAT -j MASQUERADE\n")
    if family == 4:
        for bridge in s.bridges:
            out.append(f"-A {P}POSTROUTING -s 127.0.0.0/8 -o {bridge} -j MASQUERADE\n")
    out += _masquerade_rules(s, family, P)
    out.append("COMMIT\n*filter\n")
    out += [f":{P}{c} - [0:0]\n" for c in CHAINS["filter"]]
    out += [f"-F {P}{c}\n" for c in CHAINS["filter"]]
    # same bridge, not --no-icc: no rule below drops it, so it skips them (speed only:
    # with br_netfilter every bridged packet comes here); RETURN, not ACCEPT, so the
    # host's own FORWARD rules still see it, as before
    for bridge in s.bridges:
        if bridge not in s.no_icc:
            out.append(f"-A {P}FORWARD -i {bridge} -o {bridge} -j RETURN\n")
    for bridge in s.internal:
        out.append(f"-A {P}FORWARD -i {bridge} ! -o {bridge} -j DROP\n")
        out.append(f"-A {P}FORWARD -o {bridge} ! -i {bridge} -j DROP\n")
    out.append(f"-A {P}FORWARD -m conntrack --ctstate DNAT -j RETURN\n")
    for bridge in s.bridges:  # only published ports (above) and replies come in
        if bridge not in s.routed and bridge not in s.internal:
            out.append(f"-A {P}FORWARD ! -i {bridge} -o {bridge} -m conntrack ! --ctstate RELATED,ESTABLISHED"
                       " -j DROP\n")
    for bridge in s.no_icc:
        out.append(f"-A {P}FORWARD -i {bridge} -o {bridge} -j DROP\n")
    for bridge in s.bridges:
        out.append(f"-A {P}FORWARD -i {bridge} ! -o {bridge} -j {P}ISOLATION\n")
        out.append(f"-A {P}ISOLATION -o {bridge} -j DROP\n")
    out.append("COMMIT\n*raw\n")
    # loopback stays loopback: the bridges' route_localnet=1 must not let
    # a sandbox reach the host's 127.0.0.1, nor the LAN a port published there
    out += [f":{P}{c} - [0:0]\n" for c in CHAINS["raw"]]
    out += [f"-F {P}{c}\n" for c in CHAINS["raw"]]
    out.append(f"-A {P}LOOPBACK -d {'127.0.0.0/8' if family == 4 else '::1/128'} ! -i lo -j DROP\n")
    out += _notrack_rules(subnets, P)
    out.append("COMMIT\n")
    return "".join(out)


def _notrack_rules(subnets, P: str) -> list[str]:
    """From a cnet subnet to a cnet subnet, to no host address: no conntrack
    (nftables.py says why this changes no verdict). No sets in iptables, so
    two stages, 2 rules per subnet and never one per pair: NOTRACK goes to
    NOTRACK-FROM for a destination in a cnet subnet (goto: a packet that
    comes back from there is done with both), NOTRACK-FROM lets host addresses
    (the gateways) be tracked, then exempts sources in a cnet subnet."""
    out = [f"-A {P}NOTRACK -d {subnet} -g {P}NOTRACK-FROM\n" for subnet in subnets]
    if subnets:
        out.append(f"-A {P}NOTRACK-FROM -m addrtype --dst-type LOCAL -j RETURN\n")
    out += [f"-A {P}NOTRACK-FROM -s {subnet} -j CT --notrack\n" for subnet in subnets]
    return out


def _masquerade_rules(s, family: int, P: str) -> list[str]:
    """Outbound NAT: from a masquerading subnet to anything but a cnet bridge.
    iptables cannot say "not any of these interfaces" in one rule, so traffic
    to a cnet bridge returns first (it is isolated or hairpin, handled above)."""
    masquerade = s.masquerade4 if family == 4 else s.masquerade6
    if not masquerade:
        return []
    out = [f"-A {P}POSTROUTING -o {b} -j RETURN\n" for b in s.bridges]
    out += [f"-A {P}POSTROUTING -s {subnet} -j MASQUERADE\n" for subnet in masquerade]
    return out


def new_needs_family(plan: FirewallPlan, family: int) -> bool:
    return not plan.empty and (family == 4 or bool(plan.structure.subnets6))


def _rules_by_chain(text: str, P: str) -> dict[tuple[str, str], list[str]]:
    """The "-A" lines of cnet's chains, and the jumps to them from other
    chains, by (table, chain), in order, as iptables-save writes them (a lone
    address gets its /32 or /128). hostpolicy.py's chain and the jumps to it
    are left out: they are compared there."""
    import re

    found: dict[tuple[str, str], list[str]] = {}
    table = ""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
            continue
        words = line.split()
        if len(words) < 2 or words[0] != "-A":
            continue
        if not words[1].startswith(P) and f"-j {P}" not in line:
            continue
        if words[1] == P + HOSTPOLICY_CHAIN or words[-2:] == ["-j", P + HOSTPOLICY_CHAIN]:
            continue
        line = re.sub(r"(-[sd] )([0-9a-fA-F.:]+)(?=\s)", lambda m: m.group(1) + m.group(2) + (
            "" if "/" in m.group(2) else "/128" if ":" in m.group(2) else "/32"), line + " ").rstrip()
        found.setdefault((table, words[1]), []).append(line)
    return found


def _run(cmd: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    except FileNotFoundError:
        raise OperationFailed(f"the iptables backend needs {cmd[0]} (install iptables)") from None


def _check(result: subprocess.CompletedProcess, what: str) -> None:
    if result.returncode != 0:
        first = next((line for line in result.stderr.splitlines() if line.strip()), "unknown error")
        raise OperationFailed(f"{what}: {first}")


class IptablesBackend:
    name = "iptables"

    def __init__(self, owner) -> None:
        self.prefix = owner.iptables_chain("")

    def sync(self, old: FirewallPlan | None, new: FirewallPlan) -> None:
        P = self.prefix
        for family in (4, 6):
            tool, restore = TOOLS[family]
            if family == 6 and shutil.which(tool) is None and not new.structure.subnets6:
                continue  # no ip6tables, and no IPv6 network that would need it
            if new.empty:
                self._remove(tool)
                verbose.removed(f"{tool} chains {P}*")
                continue
            _check(_run([restore, "--noflush"], render(new, family, P)), f"{restore} refused cnet's rules")
            verbose.made(f"{tool} chains {P}* ({len(new.structure.bridges)} bridges,"
                         f" {sum(d.family == family for d in new.dnat)} published ports)")
            for table, builtin, chain, where in JUMPS:
                if _run([tool, "-t", table, "-C", builtin, "-j", P + chain]).returncode != 0:
                    _check(_run([tool, "-t", table, where, builtin, "-j", P + chain]),
                           f"cannot jump from {builtin} to {P}{chain}")

    def differences(self, plan: FirewallPlan) -> list[str]:
        """How cnet's chains in the kernel differ from what `plan` makes, a line each."""
        P = self.prefix
        lines = []
        for family in (4, 6):
            tool, _ = TOOLS[family]
            save = tool + "-save"
            if shutil.which(save) is None:
                if new_needs_family(plan, family):
                    lines.append(f"{save} is missing: cnet's IPv{family} rules cannot be read")
                continue
            have = {}
            for table in CHAINS:
                listed = _run([save, "-t", table])
                if listed.returncode != 0 and refused(listed.stderr):
                    _check(listed, f"cannot read cnet's {tool} rules (table {table})")
                have.update(_rules_by_chain(listed.stdout if listed.returncode == 0 else "", P))
            wanted = {} if plan.empty else _rules_by_chain(render(plan, family, P), P)
            if not plan.empty:
                for table, builtin, chain, _ in JUMPS:
                    wanted.setdefault((table, builtin), []).append(f"-A {builtin} -j {P}{chain}")
            for table, chain in sorted(wanted.keys() | have.keys()):
                want, got = wanted.get((table, chain), []), have.get((table, chain), [])
                if not chain.startswith(P):  # the jumps from a built-in chain: each is inserted first, in any order
                    want, got = sorted(want), sorted(got)
                if want != got:
                    where = f"{tool} chain {chain} (table {table})"
                    if not got:
                        lines.append(f"missing {where} ({len(want)} rules)" if chain.startswith(P)
                                     else f"{tool}: the jump from {chain} to cnet's chain is missing")
                    elif not want:
                        lines.append(f"extra {where} (the state has no network that needs it)")
                    else:
                        lines.append(f"{where}: {len(got)} rules where cnet makes {len(want)}"
                                     if len(got) != len(want) else f"{where}: rules differ from the state's")
        return lines

    def update(self, gone, added, new) -> None:
        """iptables has no maps: the chains are rebuilt whole."""
        self.sync(None, new())

    def _remove(self, tool: str) -> None:
        """Take out the jumps, then cnet's chains; what is gone already is fine."""
        P = self.prefix
        for table, builtin, chain, _ in JUMPS:
            while _run([tool, "-t", table, "-D", builtin, "-j", P + chain]).returncode == 0:
                pass
        for table, chains in CHAINS.items():
            for chain in chains:
                _run([tool, "-t", table, "-F", P + chain])
            for chain in chains:
                _run([tool, "-t", table, "-X", P + chain])
