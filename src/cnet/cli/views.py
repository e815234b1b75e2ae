"""The public JSON shape of cnet's objects: schema 1 (docs/json.md,
docs/cnet-output.schema.json). Every command's --json is built from these,
never from the state file's records (model.py's to_dict), so the state file
can change without breaking scripts.
"""

from __future__ import annotations

SCHEMA_VERSION = 1
LIMIT_KEYS = ("ingress_rate", "ingress_burst", "egress_rate", "egress_burst")


def _with_status(view: dict, status: str | None) -> dict:
    """status: "ok" or "missing" where the command looked at the kernel (ls), else left out."""
    if status is not None:
        view["status"] = status
    return view


def network(net, endpoints: int, status: str | None = None) -> dict:
    """endpoints: how many are on it."""
    return _with_status({
        "name": net.name,
        "driver": net.driver,
        "subnets": [{"subnet": s.subnet, "gateway": s.gateway, "ip_range": s.ip_range} for s in net.subnets],
        "mtu": net.mtu,
        "internal": net.internal,
        "masquerade": net.masquerade,
        "options": dict(net.options),
        "created": net.created,
        "endpoints": endpoints,
    }, status)


def network_detail(net, endpoints, kernel) -> dict:
    """`inspect NETWORK`: the network with its endpoints and the kernel's view of it (None: missing)."""
    return {**network(net, len(endpoints)), "endpoints": [endpoint(e) for e in endpoints], "kernel": kernel}


def limits(lim) -> dict | None:
    """Rates in bit/s, bursts in bytes; null for a direction not shaped, and null for no limits at all."""
    if lim is None:
        return None
    return {key: getattr(lim, key) for key in LIMIT_KEYS}


def device(dev) -> dict | None:
    """A hostdev endpoint's host link as it was on the host (what detach gives back); null for other drivers."""
    if dev is None:
        return None
    return {"name": dev.name, "mtu": dev.mtu, "mac": dev.mac, "up": dev.up}


def host_link(ep) -> str:
    """The host's name for an endpoint's link, for the HOST-LINK column: the
    host side its driver made, or the host link a hostdev endpoint moved in."""
    return ep.host_ifname or (ep.device.name if ep.device is not None else "")


def endpoint(ep, status: str | None = None) -> dict:
    return _with_status({
        "sandbox": ep.sandbox,
        "network": ep.network,
        "ifname": ep.ifname,
        "host_ifname": ep.host_ifname,
        "mac": ep.mac,
        "addresses": list(ep.addresses),
        "limits": limits(ep.limits),
        "device": device(ep.device),
    }, status)


def sandbox(sb, networks: list[str], status: str | None = None) -> dict:
    """networks: the networks its stack is on (a joined sandbox: its target's)."""
    return _with_status({
        "name": sb.name,
        "mode": sb.mode,
        "target": sb.target,
        "dns": list(sb.dns),
        "hosts": list(sb.hosts),
        "hostname": sb.hostname,
        "created": sb.created,
        "networks": list(networks),
    }, status)


def sandbox_detail(sb, stack_owner: str, endpoints, ports, kernel) -> dict:
    """`inspect NS`: the sandbox with its stack's endpoints and published ports, and what the
    kernel shows inside it (None: the namespace is missing)."""
    return {**sandbox(sb, [e.network for e in endpoints]), "stack_owner": stack_owner,
            "endpoints": [endpoint(e) for e in endpoints], "ports": [port(p) for p in ports], "kernel": kernel}


def mapping_lines(p) -> list[str]:
    """One line per host port, as `docker port` shows them: 0.0.0.0:8080->80/tcp."""
    from ..portspec import format_mapping

    return [format_mapping(p.host_ip, p.host_port + i, p.port + i, p.protocol) for i in range(p.count)]


def port(p, status: str | None = None) -> dict:
    """A port mapping: a port or a range of count ports, and its mapping lines."""
    return _with_status({
        "sandbox": p.sandbox,
        "network": p.network,
        "protocol": p.protocol,
        "host_ip": p.host_ip,
        "host_port": p.host_port,
        "port": p.port,
        "count": p.count,
        "mappings": mapping_lines(p),
    }, status)


def router(name: str, endpoints, status: str | None = None) -> dict:
    return _with_status({"name": name,
                         "networks": [{"network": e.network, "addresses": list(e.addresses)} for e in endpoints]},
                        status)


def removed(networks=(), sandboxes=(), routers=(), endpoints=(), ports=()) -> dict:
    """What delete, detach and unpublish took away (lists of the views above, without status)."""
    return {"networks": list(networks), "sandboxes": list(sandboxes), "routers": list(routers),
            "endpoints": list(endpoints), "ports": list(ports)}


def removal_of_network(state, name: str) -> dict:
    """What deleting network name takes away (read from the state before): the network, and with
    --force the endpoints on it and their ports."""
    net = state.networks.get(name)
    if net is None:
        return removed()
    endpoints = state.endpoints_of_network(name)
    ports = [p for p in state.ports if p.network == name]
    return removed(networks=[network(net, len(endpoints))], endpoints=[endpoint(e) for e in endpoints],
                   ports=[port(p) for p in ports])


def removal_of_sandbox(state, name: str, as_router: bool = False) -> dict:
    """What deleting sandbox (or router) name takes away, read from the state before: the sandbox,
    and unless other sandboxes joined its stack (they inherit it) or it joined another's, its
    endpoints and their ports."""
    sb = state.sandboxes.get(name)
    if sb is None:
        return removed()
    keeps_stack = sb.mode == "joined" or state.joiners(name)
    endpoints = [] if keeps_stack else state.endpoints_of_sandbox(name)
    ports = [] if keeps_stack else [p for p in state.ports if p.sandbox == name]
    gone = [endpoint(e) for e in endpoints], [port(p) for p in ports]
    if as_router:
        return removed(routers=[router(name, endpoints)], endpoints=gone[0], ports=gone[1])
    on = [e.network for e in state.endpoints_of_sandbox(state.owner(name))]
    return removed(sandboxes=[sandbox(sb, on)], endpoints=gone[0], ports=gone[1])


def check_report(differences, warnings, foreign_rules) -> dict:
    """foreign_rules: what cnet holds in firewalls it does not own, a line each."""
    return {"in_sync": not differences, "differences": [d.to_dict() for d in differences],
            "warnings": list(warnings), "foreign_rules": list(foreign_rules)}


def explain_report(explained, verdict: str) -> dict:
    return {"mappings": [e.to_dict() for e in explained], "verdict": verdict}


def restore_report(done, failed) -> dict:
    return {"restored": list(done), "failed": list(failed)}


def gc_report(lines, dry_run: bool) -> dict:
    """lines: gc's "removed: X" / "would remove: X"; the report keeps the X."""
    prefix = "would remove: " if dry_run else "removed: "
    return {"dry_run": dry_run, "removed": [line.removeprefix(prefix) for line in lines]}
