"""`cnet publish` and `cnet unpublish`."""

import click

from . import views
from .completion import published_specs, sandboxes
from .output import as_json, json_option, print_mappings


@click.command("publish")
@click.argument("ns", shell_complete=sandboxes)
@click.argument("spec")
@click.option("--network", metavar="NET", help="Which of the sandbox's networks (default: its first routed one).")
@json_option
@click.pass_obj
def publish(obj, ns, spec, network, json_out):
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
    made = obj.api.publish(ns, spec, network=network)
    if json_out:
        as_json([views.port(p) for p in made])
    else:
        print_mappings(made)


@click.command("unpublish")
@click.argument("ns", shell_complete=sandboxes)
@click.argument("spec", shell_complete=published_specs)
@json_option
@click.pass_obj
def unpublish(obj, ns, spec, json_out):
    """Remove the mappings of sandbox NS that SPEC names (prints them).

    \b
    Examples:
      cnet unpublish web 8080:80
      cnet unpublish web 5353:53/udp
    """
    gone = obj.api.unpublish(ns, spec)
    if json_out:
        as_json(views.removed(ports=[views.port(p) for p in gone]))
    else:
        print_mappings(gone)
