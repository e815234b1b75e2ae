"""The iptables backend (iptables-nft or legacy, whichever `iptables` is).

cnet's rules live in its own chains, rebuilt whole by one
`iptables-restore --noflush` per table and family (atomic per table; other
chains are not touched), and reached by one jump each from the built-in
chains. iptables has no maps, so each published host port is one DNAT rule;
isolation is two rules per network (Docker's two-stage scheme), never one
per pair of networks.
"""

from __future__ import annotations

import shutil
import subprocess

from ..errors import OperationFailed
from .plan import FirewallPlan

# (table, built-in chain, cnet chain, where the jump goes)
JUMPS = [
    ("nat", "PREROUTING", "CNET-PREROUTING", "-I"),
    ("nat", "OUTPUT", "CNET-OUTPUT", "-I"),
    ("nat", "POSTROUTING", "CNET-POSTROUTING", "-I"),
    ("filter", "FORWARD", "CNET-FORWARD", "-I"),
]
CHAINS = {
    "nat": ["CNET-PREROUTING", "CNET-OUTPUT", "CNET-POSTROUTING", "CNET-DNAT"],
    "filter": ["CNET-FORWARD", "CNET-ISOLATION"],
}
TOOLS = {4: ("iptables", "iptables-restore"), 6: ("ip6tables", "ip6tables-restore")}


def render(plan: FirewallPlan, family: int) -> str:
    """iptables-restore input that rebuilds cnet's chains for one family."""
    s = plan.structure
    subnets = s.subnets4 if family == 4 else s.subnets6
    out = ["*nat\n"]
    out += [f":{c} - [0:0]\n" for c in CHAINS["nat"]]
    out += [f"-F {c}\n" for c in CHAINS["nat"]]
    out.append("-A CNET-PREROUTING -m addrtype --dst-type LOCAL -j CNET-DNAT\n")
    out.append("-A CNET-OUTPUT -m addrtype --dst-type LOCAL -j CNET-DNAT\n")
    for d in sorted(plan.dnat):
        if d.family != family:
            continue
        dst = f"-d {d.host_ip} " if d.host_ip else ""
        target = f"[{d.target_ip}]" if family == 6 else d.target_ip
        out.append(f"-A CNET-DNAT {dst}-p {d.protocol} -m {d.protocol} --dport {d.host_port} "
                   f"-j DNAT --to-destination {target}:{d.target_port}\n")
    for subnet in subnets:
        out.append(f"-A CNET-POSTROUTING -s {subnet} -m conntrack --ctstate DNAT -j MASQUERADE\n")
    if family == 4:
        for bridge in s.bridges:
            out.append(f"-A CNET-POSTROUTING -s 127.0.0.0/8 -o {bridge} -j MASQUERADE\n")
    out += _masquerade_rules(s, family)
    out.append("COMMIT\n*filter\n")
    out += [f":{c} - [0:0]\n" for c in CHAINS["filter"]]
    out += [f"-F {c}\n" for c in CHAINS["filter"]]
    for bridge in s.internal:
        out.append(f"-A CNET-FORWARD -i {bridge} ! -o {bridge} -j DROP\n")
        out.append(f"-A CNET-FORWARD -o {bridge} ! -i {bridge} -j DROP\n")
    out.append("-A CNET-FORWARD -m conntrack --ctstate DNAT -j RETURN\n")
    for bridge in s.no_icc:
        out.append(f"-A CNET-FORWARD -i {bridge} -o {bridge} -j DROP\n")
    for bridge in s.bridges:
        out.append(f"-A CNET-FORWARD -i {bridge} ! -o {bridge} -j CNET-ISOLATION\n")
        out.append(f"-A CNET-ISOLATION -o {bridge} -j DROP\n")
    out.append("COMMIT\n")
    return "".join(out)


def _masquerade_rules(s, family: int) -> list[str]:
    """Outbound NAT: from a masquerading subnet to anything but a cnet bridge.
    iptables cannot say "not any of these interfaces" in one rule, so traffic
    to a cnet bridge returns first (it is isolated or hairpin, handled above)."""
    masquerade = s.masquerade4 if family == 4 else s.masquerade6
    if not masquerade:
        return []
    out = [f"-A CNET-POSTROUTING -o {b} -j RETURN\n" for b in s.bridges]
    out += [f"-A CNET-POSTROUTING -s {subnet} -j MASQUERADE\n" for subnet in masquerade]
    return out


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

    def sync(self, old: FirewallPlan | None, new: FirewallPlan) -> None:
        for family in (4, 6):
            tool, restore = TOOLS[family]
            if family == 6 and shutil.which(tool) is None and not new.structure.subnets6:
                continue  # no ip6tables, and no IPv6 network that would need it
            if new.empty:
                self._remove(tool)
                continue
            _check(_run([restore, "--noflush"], render(new, family)), f"{restore} refused cnet's rules")
            for table, builtin, chain, where in JUMPS:
                if _run([tool, "-t", table, "-C", builtin, "-j", chain]).returncode != 0:
                    _check(_run([tool, "-t", table, where, builtin, "-j", chain]),
                           f"cannot jump from {builtin} to {chain}")

    def update(self, gone, added, new) -> None:
        """iptables has no maps: the chains are rebuilt whole."""
        self.sync(None, new())

    @staticmethod
    def _remove(tool: str) -> None:
        """Take out the jumps, then cnet's chains; what is gone already is fine."""
        for table, builtin, chain, _ in JUMPS:
            while _run([tool, "-t", table, "-D", builtin, "-j", chain]).returncode == 0:
                pass
        for table, chains in CHAINS.items():
            for chain in chains:
                _run([tool, "-t", table, "-F", chain])
            for chain in chains:
                _run([tool, "-t", table, "-X", chain])
