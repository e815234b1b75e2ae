"""`cnet attach`, `cnet detach` and `cnet exec`."""

import click

from . import views
from .completion import networks, sandboxes
from .limit import limit_options
from .output import as_json, json_option


@click.command("attach")
@click.argument("ns", shell_complete=sandboxes)
@click.argument("network", shell_complete=networks)
@click.option("--ip", "ips", multiple=True, metavar="IP", help="Pin an address (one per subnet).")
@click.option("--mac", metavar="MAC", help="MAC address of the interface in the sandbox.")
@click.option("--ifname", metavar="IF", help="Interface name in the sandbox (default eth0, eth1, ...).")
@limit_options
@json_option
@click.pass_obj
def attach(obj, ns, network, ips, mac, ifname, json_out, **limits):
    """Plug sandbox NS into NETWORK; prints its address(es), one a line.

    The rates shape what goes into the sandbox (ingress) and out of it
    (egress); see `cnet limit --help` for the units.

    \b
    Examples:
      cnet attach web mybr0
      cnet attach web back --ip 10.2.0.10 --ifname eth1
      cnet attach web mybr0 --ingress-rate 20mbit --egress-rate 5mbit
    """
    endpoint = obj.api.attach(ns, network, ips=ips, mac=mac, ifname=ifname, limits=limits)
    if json_out:
        as_json(views.endpoint(endpoint))
        return
    for address in endpoint.addresses:
        click.echo(address)


@click.command("detach")
@click.argument("ns", shell_complete=sandboxes)
@click.argument("network", shell_complete=networks)
@json_option
@click.pass_obj
def detach(obj, ns, network, json_out):
    """Unplug sandbox NS from NETWORK and release its addresses (and its ports published there).

    \b
    Examples:
      cnet detach web back
    """
    state = obj.api.read_state()  # what goes: read before, as the state has it
    gone = views.removed()
    if ns in state.sandboxes:
        owner = state.owner(ns)
        gone = views.removed(
            endpoints=[views.endpoint(e) for e in state.endpoints_of_sandbox(owner) if e.network == network],
            ports=[views.port(p) for p in state.ports if p.sandbox == owner and p.network == network])
    obj.api.detach(ns, network)
    if json_out:
        as_json(gone)


@click.command("exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("ns", shell_complete=sandboxes)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
def exec_(obj, ns, command):
    """Run COMMAND in sandbox NS (cnet exec NS -- COMMAND...); exits with its status.

    \b
    Examples:
      cnet exec web -- ip addr
      cnet exec web -- ping -c1 172.26.0.3
    """
    argv = list(command)
    if argv[:1] == ["--"]:  # click passes the separator through with these settings
        argv = argv[1:]
    obj.api.exec_ns(ns, argv)
