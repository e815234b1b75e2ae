"""`cnet ls` and `cnet inspect`: read the state (and, for inspect, the kernel)."""

import click

from .output import as_json, network_view, table

LISTS = ("networks", "ns", "endpoints", "ports")


@click.command("ls")
@click.argument("what", type=click.Choice(LISTS), default="networks")
@click.option("--json", "json_out", is_flag=True, help="JSON output (a list of objects).")
@click.option("-q", "--quiet", is_flag=True, help="Names only, one a line.")
@click.pass_obj
def ls(obj, what, json_out, quiet):
    """List networks (default), sandboxes, endpoints or published ports."""
    state = obj.api.store.load()
    if what == "networks":
        counts = {}
        for e in state.endpoints:
            counts[e.network] = counts.get(e.network, 0) + 1
        items = [network_view(n, counts.get(n.name, 0)) for n in state.networks.values()]
        names = [n["name"] for n in items]
        rows = [[n["name"], n["driver"], ",".join(s["subnet"] for s in n["subnets"]),
                 ",".join(s["gateway"] for s in n["subnets"]), str(n["mtu"]), _flags(n),
                 str(n["endpoints"])] for n in items]
        headers = ["NAME", "DRIVER", "SUBNETS", "GATEWAYS", "MTU", "FLAGS", "ENDPOINTS"]
    elif what == "ns":
        items = [s.to_dict() for s in state.sandboxes.values()]
        names = [s["name"] for s in items]
        rows = [[s["name"], s["mode"], s["target"] or "-"] for s in items]
        headers = ["NAME", "MODE", "TARGET"]
    elif what == "endpoints":
        items = [e.to_dict() for e in state.endpoints]
        names = [f"{e['sandbox']}:{e['network']}" for e in items]
        rows = [[e["sandbox"], e["network"], e["ifname"], ",".join(e["addresses"]), e["host_ifname"]]
                for e in items]
        headers = ["SANDBOX", "NETWORK", "IFNAME", "ADDRESSES", "HOST-LINK"]
    else:
        items = [p.to_dict() for p in state.ports]
        names = [p["sandbox"] for p in items]
        rows = [[p["sandbox"], f"{p['host_ip']}:{p['host_port']}->{p['port']}/{p['protocol']}"] for p in items]
        headers = ["SANDBOX", "MAPPING"]
    if json_out:
        as_json(items)
    elif quiet:
        for n in names:
            click.echo(n)
    else:
        table(headers, rows)


def _flags(n: dict) -> str:
    flags = [f for f, on in (("internal", n["internal"]), ("no-masquerade", not n["masquerade"] and not n["internal"])) if on]
    return ",".join(flags) or "-"


@click.command("inspect")
@click.argument("name")
@click.option("--json", "json_out", is_flag=True, help="JSON output.")
@click.pass_obj
def inspect(obj, name, json_out):
    """Show a network as recorded and as the kernel has it."""
    seen = obj.api.inspect_network(name)
    view = network_view(seen["network"], len(seen["endpoints"]))
    view["endpoints"] = [e.to_dict() for e in seen["endpoints"]]
    view["kernel"] = seen["kernel"]
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
    else:
        owner = "" if k["owned"] else "  NOT TAGGED AS CNET'S"
        click.echo(f"kernel:     {k['kind']} {k['ifname']} state {k['state']} mtu {k['mtu']}{owner}")
        click.echo(f"addresses:  {' '.join(k['addresses']) or '-'}")
