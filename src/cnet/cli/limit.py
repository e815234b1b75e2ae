"""`cnet limit`, and the bandwidth options it shares with `cnet attach`."""

import click

from . import views
from .completion import networks, sandboxes
from .output import as_json, json_option


def limit_options(command):
    """--ingress-rate, --egress-rate, --ingress-burst and --egress-burst (texts, parsed by core)."""
    for direction, what in (("egress", "out of the sandbox"), ("ingress", "into the sandbox")):
        command = click.option(f"--{direction}-burst", metavar="SIZE",
                               help=f"Bucket size of the {direction} limit (default: 10 ms at the rate, at least "
                                    "4 packets).")(command)
        command = click.option(f"--{direction}-rate", metavar="RATE",
                               help=f"Limit the traffic {what} to RATE.")(command)
    return command


@click.command("limit")
@click.argument("ns", shell_complete=sandboxes)
@click.argument("network", shell_complete=networks)
@limit_options
@click.option("--clear", is_flag=True, help="Remove every limit of the endpoint.")
@json_option
@click.pass_obj
def limit(obj, ns, network, clear, json_out, **limits):
    """Change the bandwidth limits of sandbox NS's endpoint on NETWORK.

    A direction given replaces that direction's limit, the other is kept;
    a burst alone changes the burst of a limit the endpoint has. Prints the
    limits now in force, or "-" (--json: the endpoint).

    RATE in tc's units: 500kbit, 10mbit, 1gbit (powers of 1000; kibit ...
    for 1024), 1mbps for bytes a second; a bare number is bit/s. SIZE in
    bytes: 32kb, 1mb (powers of 1024); a bare number is bytes.

    \b
    Examples:
      cnet limit web mybr0 --egress-rate 50mbit --egress-burst 64kb
      cnet limit web mybr0 --clear
    """
    from ..bandwidth import describe

    endpoint = obj.api.limit(ns, network, clear=clear, **limits)
    if json_out:
        as_json(views.endpoint(endpoint))
    else:
        click.echo(describe(endpoint.limits))
