"""Living beside other firewalls on the host.

A packet must be accepted by every base chain it meets, so cnet's own accept
verdicts cannot overrule another table's drop. Where the host's iptables
FORWARD policy is DROP (Docker sets that), cnet appends a jump to chain
CNET-ACCEPT, which accepts only what cnet's bridges need: traffic from them,
and replies and published-port traffic to them. Other forward chains with a
drop policy are reported as warnings: cnet does not touch them.
"""

from __future__ import annotations

import json
import shutil
import subprocess

from .plan import FirewallPlan

CHAIN = "CNET-ACCEPT"
TOOLS = {4: ("iptables", "iptables-restore"), 6: ("ip6tables", "ip6tables-restore")}


def _run(cmd: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True)


def forward_policy_is_drop(tool: str) -> bool:
    if shutil.which(tool) is None:
        return False
    result = _run([tool, "-t", "filter", "-S", "FORWARD"])
    return result.returncode == 0 and result.stdout.startswith("-P FORWARD DROP")


def render_accept(plan: FirewallPlan, chain: str = CHAIN) -> str:
    lines = ["*filter\n", f":{chain} - [0:0]\n", f"-F {chain}\n"]
    for bridge in plan.structure.bridges:
        lines.append(f"-A {chain} -i {bridge} -j ACCEPT\n")
        lines.append(f"-A {chain} -o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT\n")
    lines.append("COMMIT\n")
    return "".join(lines)


def sync(plan: FirewallPlan, chain: str = CHAIN) -> list[str]:
    """Put CNET-ACCEPT (chain: its name for this state file) where the FORWARD
    policy is DROP, take it out when cnet has no network left; return warnings
    about other dropping chains."""
    warnings = []
    for family, (tool, restore) in TOOLS.items():
        if shutil.which(tool) is None:
            continue
        has_jump = _run([tool, "-t", "filter", "-C", "FORWARD", "-j", chain]).returncode == 0
        if not plan.empty and forward_policy_is_drop(tool):
            result = _run([restore, "--noflush"], render_accept(plan, chain))
            if result.returncode == 0 and not has_jump:
                result = _run([tool, "-t", "filter", "-A", "FORWARD", "-j", chain])
            if result.returncode != 0:
                warnings.append(f"the {tool} FORWARD policy is DROP and cnet could not add its accept rules:"
                                f" {result.stderr.strip()}")
        elif has_jump or plan.empty:
            while _run([tool, "-t", "filter", "-D", "FORWARD", "-j", chain]).returncode == 0:
                pass
            _run([tool, "-t", "filter", "-F", chain])
            _run([tool, "-t", "filter", "-X", chain])
    if not plan.empty:
        warnings += other_dropping_chains()
    return warnings


def other_dropping_chains() -> list[str]:
    """Forward-hook base chains with a drop policy that are neither cnet's
    nor iptables' FORWARD (which CNET-ACCEPT answers)."""
    if shutil.which("nft") is None:
        return []
    result = _run(["nft", "-j", "list", "chains"])
    if result.returncode != 0:
        return []
    found = []
    try:
        items = json.loads(result.stdout).get("nftables", [])
    except ValueError:
        return []
    for item in items:
        chain = item.get("chain")
        if not chain or chain.get("hook") != "forward" or chain.get("policy") != "drop":
            continue
        if chain["table"].startswith("cnet") or (chain["table"] == "filter" and chain["name"] == "FORWARD"):
            continue
        found.append(f"chain {chain['name']} of table {chain['family']} {chain['table']} drops forwarded"
                     " traffic by default; traffic of cnet's networks may be dropped there")
    return found
