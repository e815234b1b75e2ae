"""`cnet publish` and `cnet unpublish`."""

import click

from .completion import published_specs, sandboxes
from .output import print_mappings


@click.command("publish")
@click.argument("ns", shell_complete=sandboxes)
@click.argument("spec")
@click.option("--network", metavar="NET", help="Which of the sandbox's networks (default: its first routed one).")
@click.pass_obj
def publish(obj, ns, spec, network):
    """Publish a port of sandbox NS on the host.

    SPEC is [HOST_IP:][HOST_PORT[-END]:]PORT[-END][/tcp|udp|sctp], as with
    `docker run -p`; IPv6 host addresses in brackets. Without a host port, a
    free one is picked. Prints each mapping as HOST_IP:HOST_PORT->PORT/PROTO.

    \b
    Examples:
      cnet publish web 8080:80
      cnet publish web 127.0.0.1:5353:53/udp
      cnet publish web 80      # a free host port, printed
    """
    print_mappings(obj.api.publish(ns, spec, network=network))


@click.command("unpublish")
@click.argument("ns", shell_complete=sandboxes)
@click.argument("spec", shell_complete=published_specs)
@click.pass_obj
def unpublish(obj, ns, spec):
    """Remove the mappings of sandbox NS that SPEC names (prints them).

    \b
    Examples:
      cnet unpublish web 8080:80
      cnet unpublish web 5353:53/udp
    """
    print_mappings(obj.api.unpublish(ns, spec))
