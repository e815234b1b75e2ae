"""A stand-in for the Cnet operations that `cnet apply` calls, on a State in
memory and through the same pure planners, so that a plan can be carried
out and planned again without a kernel."""

from __future__ import annotations

from cnet import bandwidth, portspec
from cnet.config import Config
from cnet.core import networks, ports, routers, sandboxes
from cnet.core.limit_ops import parse_limits, plan_limits
from cnet.core.router_ops import parse_network_arg
from cnet.model import State, replace


class FakeCnet:
    def __init__(self, state: State | None = None):
        self.state = state or State()
        self.config = Config()
        self.next_port = 32768
        self.calls: list[str] = []

    def run(self, plan) -> State:
        for step in plan.steps:
            self.calls.append(f"{step.method} {step.what}")
            getattr(self, step.method)(*step.args, **step.kwargs)
        return self.state

    def create_network(self, driver, name, **request):
        if driver == "overlay":  # what drivers/overlay.py join() fills in from the config and a new store
            options = {"vni": 4096, **request.get("options", {}), "store": "etcd://10.0.0.1:2379", "host": "h1",
                       "vtep": "10.0.0.11"}
            request = {**request, "mtu": request.get("mtu") or 1450, "options": options}
        self.state.networks[name] = networks.plan_network(self.state, self.config, name, driver=driver, **request)

    def delete_network(self, name):
        assert not self.state.endpoints_of_network(name), f"network {name} still has endpoints"
        del self.state.networks[name]

    def create_ns(self, name, *, join=None, pid=None, netns_path=None, host=False, dns=(), add_hosts=(),
                  hostname=None, mode=None, network=None, ips=(), mac=None, ifname=None, limits=None, publish=()):
        mode = mode or ("joined" if join else "adopted" if pid or netns_path else "host" if host else "none")
        target = join or (f"/proc/{pid}/ns/net" if pid else netns_path)
        self.state.sandboxes[name] = sandboxes.plan_sandbox(self.state, name, mode=mode, target=target, dns=dns,
                                                            add_hosts=add_hosts, hostname=hostname)
        if network is not None:  # as Cnet.create_ns: the first endpoint and its ports in the same step
            self.attach(name, network, ips=ips, mac=mac, ifname=ifname, limits=limits)
            for spec in publish:
                self.publish(name, spec, network=network)

    def attach(self, ns, network, *, ips=(), mac=None, ifname=None, limits=None):
        owner = self.state.owner(ns)
        ep, net = sandboxes.plan_endpoint(self.state, self.state.networks[network], owner, ips=ips, mac=mac,
                                          ifname=ifname, present={"lo"})
        self.state.networks[network] = net
        self.state.endpoints.append(replace(ep, limits=plan_limits(net, parse_limits(limits, new_endpoint=True))))

    def limit(self, ns, network, *, clear=False, **values):
        ep = next(e for e in self.state.endpoints if e.sandbox == self.state.owner(ns) and e.network == network)
        limits = bandwidth.change(ep.limits, parse_limits(values), self.state.networks[network].mtu, clear=clear)
        self.state.endpoints[self.state.endpoints.index(ep)] = replace(ep, limits=limits)

    def detach(self, ns, network):
        owner = self.state.owner(ns)
        self.state.endpoints = [e for e in self.state.endpoints if not (e.sandbox == owner and e.network == network)]
        self.state.ports = [p for p in self.state.ports if not (p.sandbox == owner and p.network == network)]

    def delete_ns(self, name):
        assert not self.state.joiners(name), f"sandbox {name} still has joiners"
        self.state.endpoints = [e for e in self.state.endpoints if e.sandbox != name]
        self.state.ports = [p for p in self.state.ports if p.sandbox != name]
        del self.state.sandboxes[name]

    def create_router(self, name, nets):
        wanted = [parse_network_arg(n) for n in nets]
        routers.check_new_router(self.state, name, [n for n, _ in wanted])
        self.create_ns(name, mode=routers.MODE)
        for network, ip in wanted:
            self.attach(name, network, ips=(ip,) if ip else ())

    def delete_router(self, name):
        assert routers.is_router(self.state, name)
        self.delete_ns(name)

    def publish(self, ns, text, *, network=None):
        spec = portspec.parse(text)
        owner = self.state.owner(ns)
        ep = ports.choose_endpoint(self.state, owner, ns, network)
        host_port = spec.host_port or self.next_port
        self.next_port += 1
        made = ports.mappings_for(owner, ep, spec, ports.families_of(ep, spec, ns), host_port)
        ports.check_conflicts(self.state, made)
        self.state.ports.extend(made)

    def unpublish(self, ns, text):
        gone = ports.matching(self.state, self.state.owner(ns), portspec.parse(text))
        assert gone, f"nothing to unpublish for {text}"
        self.state.ports = [p for p in self.state.ports if p not in gone]
