"""`cnet ls` and `cnet inspect`: read the state (and, for inspect, the kernel)."""

import click

from . import views
from .completion import networks_and_sandboxes
from .output import as_json, json_option, mapping_name, table
from .views import mapping_lines

LISTS = ("networks", "ns", "endpoints", "ports", "routers")


@click.command("ls")
@click.argument("what", type=click.Choice(LISTS), default="networks")
@json_option
@click.option("-q", "--quiet", is_flag=True, help="Names only, one a line.")
@click.pass_obj
def ls(obj, what, json_out, quiet):
    """List networks (default), sandboxes, endpoints, published ports or routers.

    STATUS (JSON: "status") is "ok", or "missing" when the record's kernel
    object is gone: a network's link, a sandbox's namespace, an endpoint's
    namespace or host link, a port's endpoint (`cnet restore` makes them again).

    With -q: network names, sandbox names, SANDBOX:NETWORK for an endpoint,
    SANDBOX:MAPPING for a published port (a range on one line, 9000-9010->90-100).

    \b
    Examples:
      cnet ls
      cnet ls ports --json
      cnet ls ns -q
    """
    from ..bandwidth import rates

    if quiet and not json_out:  # names only: no status to look up
        for name in _names(obj.api.read_state(), what):
            click.echo(name)
        return
    if what == "networks":
        listing = obj.api.network_listing()
        items = [views.network(n, count, status) for n, count, status in listing]
        rows = [[n["name"], n["driver"], ",".join(s["subnet"] for s in n["subnets"]),
                 ",".join(s["gateway"] for s in n["subnets"]), str(n["mtu"]), _flags(n),
                 str(n["endpoints"]), n["status"]] for n in items]
        headers = ["NAME", "DRIVER", "SUBNETS", "GATEWAYS", "MTU", "FLAGS", "ENDPOINTS", "STATUS"]
    elif what == "ns":
        listing = obj.api.sandbox_listing()
        items = [views.sandbox(s, nets, status) for s, nets, status in listing]
        rows = [[s.name, s.mode, s.target or "-", ",".join(nets) or "-", status] for s, nets, status in listing]
        headers = ["NAME", "MODE", "TARGET", "NETWORKS", "STATUS"]
    elif what == "endpoints":
        listing = obj.api.endpoint_listing()
        items = [views.endpoint(e, status) for e, status in listing]
        rows = [[e.sandbox, e.network, e.ifname, ",".join(e.addresses), views.host_link(e), rates(e.limits), status]
                for e, status in listing]
        headers = ["SANDBOX", "NETWORK", "IFNAME", "ADDRESSES", "HOST-LINK", "LIMITS", "STATUS"]
    elif what == "routers":
        state = obj.api.read_state()
        items = [views.router(sb.name, state.endpoints_of_sandbox(sb.name), status)
                 for sb, _, status in obj.api.sandbox_listing() if sb.mode == "router"]
        rows = [[r["name"], " ".join(f"{n['network']}:{','.join(n['addresses'])}" for n in r["networks"]),
                 r["status"]] for r in items]
        headers = ["NAME", "NETWORKS", "STATUS"]
    else:
        listing = obj.api.port_listing()
        items = [views.port(p, status) for p, status in listing]
        rows = [[p.sandbox, p.network, " ".join(mapping_lines(p) if p.count <= 3 else [
                 f"{mapping_lines(p)[0]} ... {mapping_lines(p)[-1]}"]), status] for p, status in listing]
        headers = ["SANDBOX", "NETWORK", "MAPPING", "STATUS"]
    if json_out:
        as_json(items)
    else:
        table(headers, rows)


def _names(state, what: str) -> list[str]:
    """What `ls -q` prints: one name a record."""
    if what == "networks":
        return list(state.networks)
    if what == "ns":
        return list(state.sandboxes)
    if what == "endpoints":
        return [f"{e.sandbox}:{e.network}" for e in state.endpoints]
    if what == "routers":
        return [sb.name for sb in state.sandboxes.values() if sb.mode == "router"]
    return [mapping_name(p) for p in state.ports]


def _flags(n: dict) -> str:
    options = n.get("options") or {}
    routed = options.get("routed", False)
    flags = [f for f, on in (("internal", n["internal"]), ("routed", routed),
                             ("no-masquerade", not n["masquerade"] and not n["internal"] and not routed
                              and n["driver"] == "bridge"),  # the others have no NAT to turn off
                             ("no-icc", not options.get("icc", True))) if on]
    return ",".join(flags) or "-"


@click.command("inspect")
@click.argument("name", shell_complete=networks_and_sandboxes)
@click.option("--type", "kind", type=click.Choice(["network", "ns"]), help="Which kind of object NAME is.")
@json_option
@click.pass_obj
def inspect(obj, name, kind, json_out):
    """Show a network or a sandbox as recorded and as the kernel has it.

    \b
    Examples:
      cnet inspect mybr0
      cnet inspect web --json
    """
    kind = kind or obj.api.kind_of(name)
    if kind == "ns":
        _inspect_ns(obj, name, json_out)
        return
    view = inspect_network_view(obj, name)
    if json_out:
        as_json(view)
        return
    click.echo(f"name:       {view['name']}\ndriver:     {view['driver']}")
    for s in view["subnets"]:
        extra = f"  ip-range {s['ip_range']}" if s["ip_range"] else ""
        click.echo(f"subnet:     {s['subnet']}  gateway {s['gateway']}{extra}")
    click.echo(f"mtu:        {view['mtu']}")
    click.echo(f"flags:      {_flags(view)}\ncreated:    {view['created']}")
    click.echo(f"endpoints:  {len(view['endpoints'])}")
    k = view["kernel"]
    if k is None:
        click.echo("kernel:     MISSING (no link of that name; cnet delete removes the record)")
    elif "parent" in k:  # a network of sub-interfaces (macvlan, ipvlan): the kernel has its parent
        p = k["parent"]
        click.echo(f"kernel:     parent {p['ifname']} ({p['kind'] or 'device'}) state {p['state']} mtu {p['mtu']}"
                   f"  mode {k['mode']}")
        if "host_link" in k:
            h = k["host_link"]
            click.echo("host link:  MISSING" if h is None else
                       f"host link:  {h['kind']} {h['ifname']} mode {h['mode']} state {h['state']}"
                       f"  {' '.join(h['addresses']) or '-'}")
    elif "device" in k:  # a hostdev network: its link, on the host while no sandbox has it
        d, parent = k["device"], view["options"]["parent"]
        holders = [e["sandbox"] for e in view["endpoints"]]
        if d is not None:
            click.echo(f"kernel:     link {parent} ({d['kind'] or 'device'}) on the host, state {d['state']}"
                       f" mtu {d['mtu']} mac {d['mac']}")
        elif holders:
            click.echo(f"kernel:     link {parent} in sandbox {holders[0]} (cnet inspect {holders[0]})")
        else:
            click.echo(f"kernel:     MISSING (no link {parent} on the host)")
    else:
        owner = "" if k["owned"] else "  NOT TAGGED AS CNET'S"
        click.echo(f"kernel:     {k['kind']} {k['ifname']} state {k['state']} mtu {k['mtu']}{owner}")
        click.echo(f"addresses:  {' '.join(k['addresses']) or '-'}")
        if "vxlan" in k:  # an overlay: its VXLAN port and the hosts of its store
            _show_overlay(k)


def _show_overlay(k: dict) -> None:
    v = k["vxlan"]
    click.echo("vxlan:      MISSING" if v is None else
               f"vxlan:      {v['name']} vni {v['vni']} local {v['local']} port {v['port']}")
    hosts = k["hosts"]
    if "error" in hosts:
        click.echo(f"hosts:      unknown ({hosts['error']})")
        return
    for i, (name, h) in enumerate(sorted(hosts.items())):
        state = "up" if h["alive"] else "down (no agent holds its lease)"
        click.echo(f"{'hosts:' if i == 0 else '':<12}{name} {h['vtep']} {state}")


def inspect_network_view(obj, name: str) -> dict:
    """What `inspect NETWORK --json` prints (and create bridge|macvlan|ipvlan|hostdev --json)."""
    seen = obj.api.inspect_network(name)
    return views.network_detail(seen["network"], seen["endpoints"], seen["kernel"])


def inspect_ns_view(obj, name: str, seen: dict | None = None) -> dict:
    """What `inspect NS --json` prints (and create ns --json)."""
    seen = seen or obj.api.inspect_ns(name)
    ports = [p for p in obj.api.read_state().ports if p.sandbox == seen["owner"]]
    return views.sandbox_detail(seen["sandbox"], seen["owner"], seen["endpoints"], ports, seen["kernel"])


def _inspect_ns(obj, name, json_out):
    from ..bandwidth import describe

    seen = obj.api.inspect_ns(name)
    view = inspect_ns_view(obj, name, seen)
    if json_out:
        as_json(view)
        return
    target = f" ({view['target']})" if view["target"] else ""
    click.echo(f"name:       {view['name']}\nmode:       {view['mode']}{target}")
    click.echo(f"created:    {view['created']}")
    for e in seen["endpoints"]:
        click.echo(f"endpoint:   {e.ifname} on {e.network}  {' '.join(e.addresses)}  "
                   f"mac {e.mac}  host link {views.host_link(e)}")
        if e.limits:
            click.echo(f"limits:     {e.ifname} {describe(e.limits)}")
    k = view["kernel"]
    if k is None:
        click.echo("kernel:     MISSING (no namespace at /run/netns; cnet delete ns removes the record)")
        return
    for link in k["links"]:
        click.echo(f"link:       {link['ifname']} {link['state']} mtu {link['mtu']}  {' '.join(link['addresses'])}")
    for route in k["routes"]:
        click.echo(f"route:      {route}")
