"""Traffic control through pyroute2: the qdiscs and the ifb device that
shape an endpoint (see drivers/base.py for which direction is which).

- What leaves a link is shaped by a tbf qdisc at its root.
- What arrives on a link is taken, before anything else sees it, by an
  ingress qdisc whose u32 filter matches every packet and whose mirred
  action redirects it to an ifb device; the ifb's root tbf shapes it, and
  the ifb hands it back to the link's receive path. (This kernel has no
  matchall classifier nor police action, so neither the simpler filter nor
  policing in place is there to use.)

Every function takes a netlink handle (netlink.Netlink) of the namespace
the link is in. Nothing here decides limits: rates come in bit/s and
bursts in bytes, as cnet.bandwidth plans them.
"""

from __future__ import annotations

import errno

from .. import verbose
from ..bandwidth import format_rate, format_size
from .netlink import _failed
from .pyroute import NetlinkError

ETH_P_ALL = 0x0003  # the u32 filter's protocol: every packet
INGRESS_PARENT = 0xFFFF0000  # "ffff:", where the ingress qdisc's filters hang
ROOT_HANDLE = 0x10000  # "1:"
REDIRECT_CLASS = 0x10001  # "1:1": u32 needs a target; the ingress qdisc ignores it
# The tbf queue holds this much time at the rate on top of the burst: long
# enough for TCP to keep the link busy (measured: ~96 % of the set rate at
# 10 mbit to 1 gbit), short enough not to make a slow link's delay huge.
LATENCY = "50ms"
# What a kernel says when it lacks a qdisc, classifier or action.
_MISSING_KIND = {errno.ENOENT, errno.EOPNOTSUPP, errno.EINVAL}


def _tc(nl, what: str, module: str, *args, **kwargs):
    try:
        return nl.ipr.tc(*args, **kwargs)
    except NetlinkError as e:
        if e.code in _MISSING_KIND and args[0].startswith("add"):
            raise _failed(f"{what} (does the kernel have {module}?)", e) from e
        raise _failed(what, e) from e


def add_ifb(nl, name: str, mtu: int, group: int) -> int:
    """An ifb device, up, in link group `group` from its creation (see
    netlink.add_bridge); returns its index."""
    index = nl.add_link(f"cannot create ifb device {name}", ifname=name, kind="ifb", mtu=mtu, group=group)
    nl.set_up(index)
    return index


def shape_outgoing(nl, index: int, rate: int, burst: int) -> None:
    """A tbf qdisc at the root of link `index`: what leaves it, at most
    `rate` bit/s, in bursts of at most `burst` bytes."""
    _tc(nl, f"cannot add a tbf qdisc to link {nl._name(index)}", "sch_tbf", "add", "tbf", index=index,
        handle=ROOT_HANDLE, rate=rate // 8, burst=burst, latency=LATENCY)
    verbose.made(f"qdisc tbf rate {format_rate(rate)} burst {format_size(burst)} on link {nl._name(index)}{nl._where}")


def redirect_incoming(nl, index: int, ifb_index: int) -> None:
    """What arrives on link `index` goes through the ifb at ifb_index first."""
    link = nl._name(index)
    _tc(nl, f"cannot add an ingress qdisc to link {link}", "sch_ingress", "add", "ingress", index=index)
    _tc(nl, f"cannot redirect link {link} to its ifb", "cls_u32 and act_mirred", "add-filter", "u32",
        index=index, parent=INGRESS_PARENT, prio=1, protocol=ETH_P_ALL, keys=["0x0/0x0+0"],
        target=REDIRECT_CLASS,
        action={"kind": "mirred", "direction": "egress", "action": "redirect", "ifindex": ifb_index})
    verbose.made(f"qdisc ingress on link {link}{nl._where}, u32 match-all redirect to {nl._name(ifb_index)}")


def _delete(nl, what: str, **which) -> bool:
    """Delete a qdisc; False when it (or its link) was not there."""
    try:
        nl.ipr.tc("del", **which)
    except NetlinkError as e:
        if e.code in (errno.ENOENT, errno.EINVAL, errno.ENODEV):
            return False
        raise _failed(what, e) from e
    return True


def remove_outgoing(nl, index: int) -> bool:
    """Back to the link's default root qdisc."""
    link = nl._name(index)
    if _delete(nl, f"cannot delete the tbf qdisc of link {link}", index=index, root=True):
        verbose.removed(f"qdisc tbf on link {link}{nl._where}")
        return True
    return False


def remove_incoming(nl, index: int) -> bool:
    """Remove the ingress qdisc, and its filter with it."""
    link = nl._name(index)
    if _delete(nl, f"cannot delete the ingress qdisc of link {link}", kind="ingress", index=index,
               handle=INGRESS_PARENT):
        verbose.removed(f"qdisc ingress on link {link}{nl._where}")
        return True
    return False


def buffer_ticks(rate: int, burst: int) -> int:
    """What the kernel holds of a burst: the time it lasts at the rate, in
    psched ticks, as pyroute2 computes it from rate and burst."""
    from pyroute2.netlink.rtnl.tcmsg.common import calc_xmittime

    return calc_xmittime(rate // 8, burst)


def _burst_of(rate_bytes: int, ticks: int) -> int:
    from pyroute2.netlink.rtnl.tcmsg.common import TIME_UNITS_PER_SEC, tick_in_usec

    return round(ticks / tick_in_usec / TIME_UNITS_PER_SEC * rate_bytes)


def view(nl, index: int) -> dict:
    """What shapes link `index`: {"root": the root qdisc's kind or None,
    "tbf": {"rate": bit/s, "burst": bytes, "buffer": ticks} or None,
    "ingress": an ingress qdisc is there, "redirect": the ifindex its
    filters redirect to, or None}."""
    try:
        qdiscs = nl.ipr.get_qdiscs(index=index)
        found = {"root": None, "tbf": None, "ingress": False, "redirect": None}
        for q in qdiscs:
            kind = q.get("kind")
            if q["parent"] == 0xFFFFFFFF:  # TC_H_ROOT
                found["root"] = kind
                parms = q.get(("options", "TCA_TBF_PARMS")) if kind == "tbf" else None
                if parms:
                    found["tbf"] = {"rate": parms["rate"] * 8, "buffer": parms["buffer"],
                                    "burst": _burst_of(parms["rate"], parms["buffer"])}
            elif kind == "ingress":
                found["ingress"] = True
        if found["ingress"]:
            for f in nl.ipr.get_filters(index=index, parent=INGRESS_PARENT):
                actions = f.get(("options", "TCA_U32_ACT")) or {}
                for _, action in actions.get("attrs", ()):
                    parms = action.get(("TCA_ACT_OPTIONS", "TCA_MIRRED_PARMS"))
                    if parms:
                        found["redirect"] = parms["ifindex"]
    except NetlinkError as e:
        raise _failed(f"cannot read the qdiscs of link {index}", e) from e
    return found
