"""`cnet create ...`"""

import click


@click.group()
def create():
    """Create a network or a sandbox."""


@create.command("bridge")
@click.argument("name")
@click.option("--subnet", "subnets", multiple=True, metavar="CIDR",
              help="Subnet (one IPv4 and/or one IPv6); default: the first free one of the address pools.")
@click.option("--gateway", "gateways", multiple=True, metavar="IP",
              help="Gateway of the n-th subnet (default: its first host address).")
@click.option("--ip-range", metavar="CIDR", help="Hand out endpoint addresses from this part of the subnet only.")
@click.option("--mtu", type=int, help="MTU of the bridge and its endpoints (default from the config, else 1500).")
@click.option("--internal", is_flag=True, help="No route out and no NAT for this network.")
@click.option("--no-masquerade", is_flag=True, help="Route outbound traffic without NAT.")
@click.option("--exist-ok", is_flag=True, help="Succeed if an identical network exists already.")
@click.pass_obj
def create_bridge(obj, name, subnets, gateways, ip_range, mtu, internal, no_masquerade, exist_ok):
    """Create a bridge network NAME (the bridge device is called NAME)."""
    obj.api.create_bridge(name, subnets=subnets, gateways=gateways, ip_range=ip_range, mtu=mtu,
                          internal=internal, masquerade=not no_masquerade, exist_ok=exist_ok)
    click.echo(name)
