"""The CNI commands, done with cnet's core API (cnet.core.Cnet): the same
state file, lock and transactions as the `cnet` command, so a CNI ADD and a
`cnet attach` at the same moment serialize.

A container is an adopted sandbox (its namespace is the runtime's, bound
under /run/netns so that `cnet exec` and `ip netns` reach it) named from its
container ID (mapping.sandbox_name), with one endpoint per CNI network it is
on, each on the CNI_IFNAME the runtime asked for. registry.py records which
sandboxes and endpoints are the runtime's.
"""

from __future__ import annotations

import os

from ..core.network_ops import NetworkOps
from ..core.port_ops import PortOps
from ..core.router_ops import RouterOps
from ..core.sandbox_ops import SandboxOps
from ..errors import CnetError
from ..names import check_ifname
from . import mapping, protocol
from .protocol import CniError, Request
from .registry import Record, Registry


class CniOps(NetworkOps, SandboxOps, RouterOps, PortOps):
    """The operations of cnet.core.Cnet that the CNI commands use: the same
    transactions, lock and state, without importing the modules of the others
    (apply, check and restore, limits, explain), which a plugin call never
    runs. RouterOps: delete_ns calls its _withdrawal."""


class Plugin:
    def __init__(self, request: Request) -> None:
        self.request = request
        self.conf = mapping.plugin_config(request.config)
        self.api = CniOps(state=self.conf.state, config=self.conf.config, firewall=self.conf.firewall)
        self.registry = Registry(self.api.store.path)
        self.sandbox = mapping.sandbox_name(request.container_id) if request.container_id else ""
        if request.ifname:
            try:
                check_ifname(request.ifname, "CNI_IFNAME")
            except CnetError as e:
                raise CniError(protocol.INVALID_ENVIRONMENT, str(e)) from None

    def run(self) -> dict | None:
        """The command's answer: a result (ADD), or None (nothing is printed)."""
        commands = {"ADD": self.add, "DEL": self.delete, "CHECK": self.check, "GC": self.gc, "STATUS": self.status}
        return commands[self.request.command]()

    # -- ADD -----------------------------------------------------------------

    def add(self) -> dict:
        req = self.request
        wanted = mapping.attachment(req.config, req.args)  # checked before anything is made
        if not os.path.exists(req.netns):
            raise CniError(protocol.UNKNOWN_CONTAINER, f"CNI_NETNS {req.netns} does not exist")
        state = self.api.read_state()
        existing = state.sandboxes.get(self.sandbox)
        mine = self.registry.of_sandbox(self.sandbox)
        if existing is not None and not mine:
            raise CniError(protocol.PLUGIN_ERRORS + 4, f"sandbox {self.sandbox} exists and is not a CNI container's",
                           "`cnet delete ns` it, or give the container another ID")
        self._network(state)
        record = Record(req.container_id, req.ifname, req.config["name"], self.conf.network, self.sandbox, req.netns)
        had_record = self.registry.get(self.sandbox, req.ifname) is not None
        self.registry.write(record)
        try:
            if existing is None:
                _, ep, mappings = self.api.create_ns(
                    self.sandbox, netns_path=req.netns, hostname=wanted.hostname, network=self.conf.network,
                    ips=wanted.ips, mac=wanted.mac, ifname=req.ifname, publish=wanted.publish,
                    limits=wanted.limits)
            else:
                ep, mappings = self._attach_more(existing, wanted)
        except BaseException:
            if not had_record:
                self.registry.remove(record)
            raise
        return protocol.chained(req.config.get("prevResult"), self._result(ep, mappings))

    def _network(self, state) -> None:
        """The network exists, or is made now when the entry says how."""
        if self.conf.network in state.networks:
            return
        ask = self.conf.create
        if ask is None:
            raise CniError(protocol.PLUGIN_ERRORS + 3, f"network {self.conf.network} not found",
                           "create it with `cnet create`, or give \"subnet\" in the entry to have it made")
        self.api.create_network(ask.driver, self.conf.network, subnets=ask.subnets, gateways=ask.gateways,
                                ip_range=ask.ip_range, mtu=ask.mtu, internal=ask.internal,
                                masquerade=ask.masquerade, options=ask.options or {}, exist_ok=True)

    def _attach_more(self, sandbox, wanted):
        """A container already on a cnet network joins one more: an endpoint
        of the same sandbox, then its ports (taken off again if those fail)."""
        from ..kernel import netns

        if sandbox.target != self.request.netns and not netns.same(sandbox.target, self.request.netns):
            raise CniError(protocol.PLUGIN_ERRORS + 4,
                           f"container {self.request.container_id} is in sandbox {self.sandbox} with another"
                           f" network namespace ({sandbox.target})", "DEL its other attachments first")
        ep = self.api.attach(self.sandbox, self.conf.network, ips=wanted.ips, mac=wanted.mac,
                             ifname=self.request.ifname, limits=wanted.limits)
        mappings = []
        try:
            for spec in wanted.publish:
                mappings += self.api.publish(self.sandbox, spec, network=self.conf.network)
        except BaseException:
            self.api.detach(self.sandbox, self.conf.network)
            raise
        return ep, mappings

    def _result(self, ep, mappings) -> dict:
        from ..core import sandboxes

        state = self.api.read_state()
        net = state.networks[ep.network]
        interfaces = []
        if ep.host_ifname:
            interfaces.append({"name": ep.host_ifname, **_mac_of(ep.host_ifname)})
        interfaces.append({"name": ep.ifname, "mac": ep.mac, "sandbox": self.request.netns})
        inside = len(interfaces) - 1
        gateways = {s.subnet: s.gateway for s in net.subnets}
        ips, routes = [], []
        gives_default = sandboxes.default_route_endpoint(state, self.sandbox, state.networks) == ep
        for address in ep.addresses:
            gateway = _gateway_for(address, gateways)
            ips.append({"address": address, **({"gateway": gateway} if gateway else {}), "interface": inside})
            if gives_default and gateway:
                routes.append({"dst": "::/0" if ":" in address else "0.0.0.0/0", "gw": gateway})
        dns = self.request.config.get("dns") or {}
        return protocol.result(self.request.version, interfaces, ips, routes, dns)

    # -- DEL -----------------------------------------------------------------

    def delete(self) -> None:
        """Idempotent: a container, network or namespace that is gone already is fine."""
        record = self.registry.get(self.sandbox, self.request.ifname)
        if record is not None:
            self._remove(record)

    def _remove(self, record: Record) -> None:
        state = self.api.read_state()
        others = [r for r in self.registry.of_sandbox(record.sandbox) if r.key != record.key]
        if record.sandbox in state.sandboxes:
            if not others:
                self.api.delete_ns(record.sandbox, if_exists=True)
            elif any(e.network == record.network for e in state.endpoints_of_sandbox(record.sandbox)):
                self.api.detach(record.sandbox, record.network)
        self.registry.remove(record)

    # -- CHECK ---------------------------------------------------------------

    def check(self) -> None:
        """The container's attachment as the state records it, what the kernel
        has of it, and the addresses the runtime was given (prevResult)."""
        from .. import drivers
        from ..kernel import netns
        from ..kernel.handles import Kernel

        req = self.request
        record = self.registry.get(self.sandbox, req.ifname)
        state = self.api.read_state()
        if record is None or record.sandbox not in state.sandboxes:
            raise CniError(protocol.UNKNOWN_CONTAINER, f"container {req.container_id} has no cnet attachment"
                           f" on {req.ifname}")
        found = [e for e in state.endpoints_of_sandbox(record.sandbox) if e.network == record.network]
        if not found:
            raise _differs(f"sandbox {record.sandbox} is not attached to network {record.network}")
        ep, net = found[0], state.networks[record.network]
        if not netns.exists(record.sandbox):
            raise _differs(f"the namespace of sandbox {record.sandbox} is gone from /run/netns")
        if not netns.same(netns.path_of(record.sandbox), req.netns):
            raise _differs(f"sandbox {record.sandbox} is bound to another namespace than CNI_NETNS {req.netns}")
        driver = drivers.get(net.driver)
        with Kernel(self.api.owner) as kernel:
            problems = driver.survey_network(net, kernel, None)
            problems += driver.survey_endpoint(net, ep, kernel, kernel.inside(netns.path_of(record.sandbox)))
        if problems:
            raise _differs("; ".join(problems))
        previous = req.config.get("prevResult") or {}
        given = {ip.get("address") for ip in previous.get("ips", ()) if isinstance(ip, dict)}
        missing = sorted(set(ep.addresses) - given) if previous else []
        if missing:
            raise _differs(f"prevResult lacks the address(es) {', '.join(missing)} of endpoint"
                           f" {ep.sandbox}/{ep.network}")

    # -- GC, STATUS -------------------------------------------------------------

    def gc(self) -> None:
        """Remove this network configuration's attachments that the runtime
        no longer lists in cni.dev/valid-attachments."""
        valid = self.request.config.get("cni.dev/valid-attachments", [])
        if not isinstance(valid, list) or not all(isinstance(v, dict) for v in valid):
            raise CniError(protocol.INVALID_CONFIG, "cni.dev/valid-attachments must be a list of objects")
        keep = {(v.get("containerID"), v.get("ifname")) for v in valid}
        for record in self.registry.all():
            if record.cni_network == self.request.config["name"] and (record.container_id, record.ifname) not in keep:
                self._remove(record)

    def status(self) -> None:
        """Whether an ADD could be served: the state readable, the firewall's tool there, the network
        there or to be made."""
        try:
            state = self.api.read_state()
        except CnetError as e:
            raise CniError(protocol.NOT_AVAILABLE, f"the cnet state cannot be read: {e}") from None
        tool = {"nftables": "nft", "iptables": "iptables-restore"}.get(self.api.config.firewall)
        import shutil  # only STATUS asks: an ADD or a DEL does without its import

        if tool and shutil.which(tool) is None:
            raise CniError(protocol.NOT_AVAILABLE, f"the {self.api.config.firewall} firewall backend needs {tool},"
                           " which is not installed")
        if self.conf.network not in state.networks and self.conf.create is None:
            raise CniError(protocol.NOT_AVAILABLE, f"network {self.conf.network} not found, and the entry has no"
                           " \"subnet\" to make it")


def _differs(problem: str) -> CniError:
    return CniError(protocol.PLUGIN_ERRORS + 5, problem, "the kernel differs from cnet's state: `cnet check`"
                    " lists what, `cnet restore` mends it")


def _gateway_for(address: str, gateways: dict[str, str]) -> str | None:
    import ipaddress

    interface = ipaddress.ip_interface(address)
    for subnet, gateway in gateways.items():
        if interface.ip in ipaddress.ip_network(subnet):
            return gateway
    return None


def _mac_of(host_ifname: str) -> dict:
    from ..kernel.sysfs import SYS_CLASS_NET

    try:
        with open(f"{SYS_CLASS_NET}/{host_ifname}/address") as f:
            return {"mac": f.read().strip()}
    except OSError:
        return {}
