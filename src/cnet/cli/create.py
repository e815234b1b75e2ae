"""`cnet create ...`"""

import click

from . import views
from .limit import limit_options
from .output import as_json, json_option, print_mappings


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
@click.option("--no-icc", is_flag=True, help="Sandboxes on this bridge cannot reach each other (published ports aside).")
@click.option("--routed", is_flag=True,
              help="Let the LAN reach the sandboxes by routing to the subnet (no NAT for outbound traffic).")
@click.option("--exist-ok", is_flag=True, help="Succeed if an identical network exists already.")
@click.option("--force-subnet", is_flag=True,
              help="Use --subnet even where it overlaps a network the host is on (never one of its addresses).")
@json_option
@click.pass_obj
def create_bridge(obj, name, subnets, gateways, ip_range, mtu, internal, no_masquerade, no_icc, routed, exist_ok,
                  force_subnet, json_out):
    """Create a bridge network NAME (the bridge device is called NAME).

    \b
    Examples:
      cnet create bridge mybr0 --subnet 172.26.0.0/16
      cnet create bridge dual0 --subnet 10.89.0.0/24 --subnet fd00:89::/64
      cnet create bridge lab0 --routed --subnet 10.90.0.0/24   # the LAN routes to it
    """
    options = {**({"icc": False} if no_icc else {}), **({"routed": True} if routed else {})}
    obj.api.create_network("bridge", name, subnets=subnets, gateways=gateways, ip_range=ip_range, mtu=mtu,
                           internal=internal, masquerade=not (no_masquerade or routed),
                           options=options, exist_ok=exist_ok,
                           force_subnet=force_subnet)
    _made_network(obj, name, json_out)


def _made_network(obj, name: str, json_out: bool) -> None:
    """The network's name, or with --json the network as `inspect --json` shows it."""
    if json_out:
        from .show import inspect_network_view

        as_json(inspect_network_view(obj, name))
    else:
        click.echo(name)


def _lan_options(command):
    """--parent, --subnet and --gateway of the networks on a parent's LAN (macvlan, ipvlan)."""
    command = click.option("--gateway", "gateways", multiple=True, metavar="IP",
                           help="The LAN's router on the n-th subnet (default: its first host address);"
                                " never handed out.")(command)
    command = click.option("--subnet", "subnets", multiple=True, metavar="CIDR",
                           help="The LAN's subnet (one IPv4 and/or one IPv6); default: the first free one of"
                                " the address pools.")(command)
    return click.option("--parent", required=True, metavar="IFACE",
                        help="The host link whose LAN the network is on.")(command)


@create.command("macvlan")
@click.argument("name")
@_lan_options
@click.option("--ip-range", metavar="CIDR", help="Hand out endpoint addresses from this part of the subnet only.")
@click.option("--mode", type=click.Choice(["bridge", "private", "vepa", "passthru"]), default="bridge",
              show_default=True, help="The kernel's macvlan mode (private: sandboxes do not reach each other;"
              " passthru: one endpoint, with the parent's MAC).")
@click.option("--mtu", type=int,
              help="MTU of the endpoints (default from the config, else 1500; at most the parent's).")
@click.option("--host-access", is_flag=True,
              help="Let the host reach the sandboxes, through a macvlan of its own on the parent.")
@click.option("--exist-ok", is_flag=True, help="Succeed if an identical network exists already.")
@json_option
@click.pass_obj
def create_macvlan(obj, name, parent, subnets, gateways, ip_range, mode, mtu, host_access, exist_ok, json_out):
    """Create a macvlan network NAME: sandboxes on PARENT's LAN, each with its own MAC.

    \b
    Examples:
      cnet create macvlan lan --parent eth1 --subnet 192.168.1.0/24 --gateway 192.168.1.1 --ip-range 192.168.1.192/27
      cnet create macvlan lan --parent eth1 --subnet 192.168.1.0/24 --host-access
    """
    options = {"parent": parent, "mode": mode, **({"host_access": True} if host_access else {})}
    obj.api.create_network("macvlan", name, subnets=subnets, gateways=gateways, ip_range=ip_range, mtu=mtu,
                           masquerade=False, options=options, exist_ok=exist_ok)
    _made_network(obj, name, json_out)


@create.command("ipvlan")
@click.argument("name")
@_lan_options
@click.option("--mode", type=click.Choice(["l2", "l3", "l3s"]), default="l2", show_default=True,
              help="The kernel's ipvlan mode.")
@click.option("--exist-ok", is_flag=True, help="Succeed if an identical network exists already.")
@json_option
@click.pass_obj
def create_ipvlan(obj, name, parent, subnets, gateways, mode, exist_ok, json_out):
    """Create an ipvlan network NAME: sandboxes on PARENT's LAN, sharing its MAC.

    \b
    Examples:
      cnet create ipvlan lan --parent eth1 --subnet 192.168.1.0/24 --gateway 192.168.1.1 --mode l2
    """
    obj.api.create_network("ipvlan", name, subnets=subnets, gateways=gateways, masquerade=False,
                           options={"parent": parent, "mode": mode}, exist_ok=exist_ok)
    _made_network(obj, name, json_out)


@create.command("hostdev")
@click.argument("name")
@click.option("--parent", required=True, metavar="IFACE",
              help="The host link (a spare NIC, an SR-IOV VF) that moves into the sandbox attached.")
@click.option("--subnet", "subnets", multiple=True, metavar="CIDR",
              help="The link's LAN subnet (one IPv4 and/or one IPv6); default: the first free one of the"
                   " address pools.")
@click.option("--gateway", "gateways", multiple=True, metavar="IP",
              help="The LAN's router on the n-th subnet (default: its first host address); never handed out.")
@click.option("--mtu", type=int, help="MTU of the link in the sandbox (default from the config, else 1500).")
@click.option("--exist-ok", is_flag=True, help="Succeed if an identical network exists already.")
@json_option
@click.pass_obj
def create_hostdev(obj, name, parent, subnets, gateways, mtu, exist_ok, json_out):
    """Create a hostdev network NAME: PARENT itself moves into the sandbox attached.

    One sandbox at a time has the link, as ethN with the network's address
    and routes; detach or `delete ns` gives it back to the host under its own
    name, MAC, MTU and up state.

    \b
    Examples:
      cnet create hostdev nic1 --parent enp3s0f1 --subnet 192.168.7.0/24 --gateway 192.168.7.1
      cnet attach web nic1 --ip 192.168.7.20
    """
    obj.api.create_network("hostdev", name, subnets=subnets, gateways=gateways, mtu=mtu, masquerade=False,
                           options={"parent": parent}, exist_ok=exist_ok)
    _made_network(obj, name, json_out)


@create.command("overlay")
@click.argument("name")
@click.option("--subnet", "subnets", multiple=True, metavar="CIDR",
              help="Subnet (one IPv4 and/or one IPv6); default: the store's, or the first free one of the address"
                   " pools.")
@click.option("--vni", type=click.IntRange(1, 2**24 - 1), metavar="N",
              help="VXLAN network identifier; default: the store's, or the lowest free one from 4096.")
@click.option("--mtu", type=int, help="MTU (default: the underlay link's less 50, the VXLAN headers).")
@click.option("--store", metavar="URL", help="etcd://HOST:2379[,HOST:2379...] (default $CNET_STORE or `store:`).")
@click.option("--exist-ok", is_flag=True, help="Succeed if an identical network exists already.")
@json_option
@click.pass_obj
def create_overlay(obj, name, subnets, vni, mtu, store, exist_ok, json_out):
    """Create or join an overlay network NAME: one L2 network across hosts.

    The first host records it in etcd; the same command on another host
    joins it (with the same settings, or none). Each host has a bridge NAME
    with a VXLAN port, and learns the other hosts' endpoints from the store
    (at once on each cnet command, within a second with `cnet agent`).

    \b
    Examples:
      cnet create overlay ov0 --subnet 10.60.0.0/24 --store etcd://10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379
      cnet create overlay ov0                       # on the other hosts (store: in the config)
    """
    options = {**({"vni": vni} if vni is not None else {}), **({"store": store} if store else {})}
    obj.api.create_network("overlay", name, subnets=subnets, mtu=mtu, options=options, exist_ok=exist_ok)
    _made_network(obj, name, json_out)


@create.command("ns")
@click.argument("name")
@click.option("--dns", multiple=True, metavar="IP", help="Nameserver for the sandbox's resolv.conf.")
@click.option("--add-host", "add_hosts", multiple=True, metavar="HOST:IP", help="An extra line of its hosts file.")
@click.option("--hostname", metavar="NAME", help="Host name seen by `cnet exec` (and in its hosts file).")
@click.option("--join", metavar="OTHER", help="Share OTHER's network stack (the container mode).")
@click.option("--pid", type=int, help="Adopt the network namespace of a running process.")
@click.option("--netns-path", metavar="PATH", help="Adopt the network namespace at PATH.")
@click.option("--host", is_flag=True, help="A name for the host's own namespace (for cnet exec).")
@click.option("--network", metavar="NET", help="Attach to NET at once (prints the addresses).")
@click.option("--ip", "ips", multiple=True, metavar="IP", help="Address on --network (one per subnet).")
@click.option("--publish", "-p", "publish", multiple=True, metavar="SPEC",
              help="Publish a port on --network at once, as `cnet publish` does.")
@limit_options
@json_option
@click.pass_obj
def create_ns(obj, name, dns, add_hosts, hostname, join, pid, netns_path, host, network, ips, publish, json_out,
              **limits):
    """Create a sandbox: a named network namespace (`ip netns` sees it).

    \b
    Examples:
      cnet create ns web --network mybr0 --publish 8080:80
      cnet create ns side --join web
      cnet create ns ctr --pid 4242              # adopt a running process's namespace
    """
    _, endpoint, mappings = obj.api.create_ns(
        name, join=join, pid=pid, netns_path=netns_path, host=host, dns=dns, add_hosts=add_hosts,
        hostname=hostname, network=network, ips=ips, publish=publish, limits=limits)
    if json_out:
        from .show import inspect_ns_view

        as_json(inspect_ns_view(obj, name))
        return
    if endpoint is not None:
        for address in endpoint.addresses:
            click.echo(address)
    print_mappings(mappings)


@create.command("router")
@click.argument("name")
@click.option("--network", "networks", multiple=True, required=True, metavar="NET[:IP]",
              help="A network to route between (twice or more), at IP or the next free address.")
@json_option
@click.pass_obj
def create_router(obj, name, networks, json_out):
    """Create a router NAME: a sandbox with forwarding on, on each --network.

    Every sandbox on one of the networks (now or attached later) gets routes
    to the others' subnets via the router; source addresses are kept. Prints
    the router's addresses as NET ADDRESS, one a line.

    \b
    Example:
      cnet create router r1 --network front --network back:10.2.0.254
    """
    _, endpoints = obj.api.create_router(name, list(networks))
    if json_out:
        as_json(views.router(name, endpoints))
        return
    for ep in endpoints:
        for address in ep.addresses:
            click.echo(f"{ep.network} {address}")
