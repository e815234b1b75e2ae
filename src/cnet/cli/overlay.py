"""`cnet agent` and `cnet overlay ...`: the hosts of overlay networks."""

import click

from .output import as_json, json_option

STORE_HELP = "etcd://HOST:2379[,HOST:2379...] (default $CNET_STORE, `store:`, else this host's overlays' store)."


@click.command("agent")
@click.option("--restore", is_flag=True, help="Also run `cnet restore` whenever `cnet check` finds a difference.")
@click.option("--store", metavar="URL", help=STORE_HELP)
@click.pass_obj
def agent(obj, restore, store):
    """Keep this host's overlays current with the store (in the foreground).

    Registers the host (a lease: other hosts see it down once the agent is
    gone), watches the store and updates this host's VXLAN entries within
    a second of a change on any host. Retries while the store is
    unreachable; the data path keeps working meanwhile. SIGTERM stops it.

    \b
    Examples:
      cnet agent
      cnet agent --restore            # examples/cnet-agent.service runs this
    """
    from ..core.agent import Agent

    try:
        Agent(obj.api, obj.api.store_of_overlays(store), restore=restore).run()
    except KeyboardInterrupt:  # SIGTERM or ^C: the agent's normal end
        return 0


@click.group("overlay")
def overlay():
    """The hosts of overlay networks."""


@overlay.command("forget")
@click.argument("host")
@click.option("--store", metavar="URL", help=STORE_HELP)
@json_option
@click.pass_obj
def forget(obj, host, store, json_out):
    """Release the addresses of HOST, a host that is gone for good.

    Prints each address released, "NETWORK IP" a line. Refused while the
    host's agent is alive.

    \b
    Examples:
      cnet overlay forget node3
    """
    released = obj.api.forget_host(host, store)
    if json_out:
        as_json([dict(zip(("network", "address"), line.split())) for line in released])
    else:
        for line in released:
            click.echo(line)
