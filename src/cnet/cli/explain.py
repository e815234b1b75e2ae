"""`cnet explain`: the path of a published port and every rule that decides it."""

import click

from . import views
from .output import as_json, json_option


@click.command("explain")
@click.argument("args", nargs=-1, metavar="[NS] PORT[/PROTO]")
@json_option
@click.pass_obj
def explain(obj, args, json_out):
    """Show the path a packet to a published port takes, and every rule that decides it.

    With NS, PORT is the sandbox's port; alone, PORT is a host port (as
    `ls ports` shows it). PROTO is tcp (default), udp or sctp. For each
    matching mapping, in the order a packet meets them: 1 the DNAT (cnet's
    map element or rule), 2 every forward chain (cnet's and any other
    table's, with table, chain and handle or rule number and the verdict),
    3 the connections conntrack tracks for that host port, 4 the hairpin and
    localhost masquerade rules and the forwarding sysctl. The last line is
    the verdict: "should answer", or where the packet is blocked.

    Exit 0 whenever the path could be explained, blocked or not (the verdict
    says which); 2 for a bad PORT/PROTO; 3 when NS or the mapping is not found.

    \b
    Examples:
      cnet explain web 80
      cnet explain 8080/tcp --json
    """
    if len(args) not in (1, 2):
        raise click.UsageError("give PORT[/PROTO] (a host port) or NS PORT[/PROTO] (a sandbox's port)")
    ns, port = args if len(args) == 2 else (None, args[0])
    explained = obj.api.explain(ns, port)
    blocked = next((e for e in explained if not e.verdict.startswith("should answer")), None)
    overall = blocked.verdict if blocked else explained[0].verdict
    if json_out:
        as_json(views.explain_report(explained, overall))
        return
    for e in explained:
        view = e.to_dict()
        click.echo(f"{view['mapping']}  sandbox {e.mapping.sandbox}, network {e.mapping.network}"
                   f" (bridge {e.bridge}), IPv{e.family}")
        for s in e.steps:
            detail = f"  {s.detail}" if s.detail else ""
            where = f"{s.where}: " if s.where else ""
            click.echo(f"  {s.stage}. {s.step:<9}  {where}{s.verdict}{detail}")
            for m in s.maybe:
                click.echo(f"     {'':<9}  may drop it: {m} (it matches on what cnet cannot know)")
        if len(explained) > 1:
            click.echo(f"  verdict: {e.verdict}")
    prefix = f"{blocked.to_dict()['mapping']}: " if blocked and len(explained) > 1 else ""
    click.echo(f"verdict: {prefix}{overall}")
