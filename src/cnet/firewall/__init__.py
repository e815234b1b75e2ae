"""Firewall backends behind one interface: `sync(old_plan, new_plan)`, and
`update(gone, added, new)` when only published ports changed.

`nftables` (default) and `iptables` render the same plan (plan.py). Each
backend owns only its own table or chains. Besides, wherever another firewall
on the host may drop cnet's forwarded traffic (an iptables FORWARD chain of
either stack, a forward chain of another nftables table), cnet adds narrow,
tagged accept rules for its bridges, and takes them out with its last
network (hostpolicy.py).
"""

from __future__ import annotations

from collections.abc import Callable

from .plan import Dnat, FirewallPlan

# The version of the rules the backends write besides the sets and maps (the
# chains and their rules), recorded in the state (host.firewall_rules) at
# each full sync. A state that records another version, or none (written by
# an older cnet), gets a full sync at its next change of the firewall rather
# than an update of its maps, so that an upgraded cnet's new rules reach the
# kernel without a `cnet restore`. tests/unit/test_firewall_render.py pins the
# rendered rules of each version: changing them fails it until this is raised.
RULES_VERSION = 2


def backend(name: str, owner):
    """Backend `name` for the rules of owner (owner.Owner: whose table or chains)."""
    if name == "iptables":
        from .iptables import IptablesBackend

        return IptablesBackend(owner)
    from .nftables import NftablesBackend

    return NftablesBackend(owner)


def sync(name: str, previous: str | None, old: FirewallPlan | None, new: FirewallPlan, owner) -> list[str]:
    """Make the kernel hold `new` with backend `name`; `previous` is the backend
    that made `old` (switching removes its rules). Returns warnings for the user."""
    from . import hostpolicy

    if previous and previous != name:
        backend(previous, owner).sync(old, FirewallPlan())
        old = None
    backend(name, owner).sync(old, new)
    if old is not None and old.structure == new.structure:
        return []
    return hostpolicy.sync(new, owner)


def update(name: str, gone: frozenset[Dnat], added: frozenset[Dnat], new: Callable[[], FirewallPlan], owner) -> None:
    """Only published ports changed, and backend `name` holds the rest: take
    out `gone`, put in `added`. `new()` is the whole plan after the change,
    for a backend that rebuilds its rules (iptables) or a delta that failed."""
    backend(name, owner).update(gone, added, new)


def differences(name: str, plan: FirewallPlan, owner) -> list[str]:
    """How backend `name`'s rules in the kernel, and cnet's accepts in other
    firewalls, differ from `plan`, a line each."""
    from . import hostpolicy

    return backend(name, owner).differences(plan) + hostpolicy.differences(plan, owner)


def host_warnings(structure, owner) -> list[str]:
    """Others' forward chains that drop cnet's traffic where cnet has no accepts (cheap: create ns, attach, publish)."""
    from . import hostpolicy

    return hostpolicy.warnings(structure, owner)


def foreign_rules(owner) -> list[str]:
    """What cnet holds in firewalls it does not own, a line each."""
    from . import hostpolicy

    return hostpolicy.placed(owner)
