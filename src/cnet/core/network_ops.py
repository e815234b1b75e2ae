"""Operations on networks: create, inspect, delete. The kind of network is its
driver's business (drivers/): nothing here knows what a bridge is."""

from __future__ import annotations


from .. import drivers
from ..errors import Conflict, NotFound
from ..model import Network, State, replace
from . import networks
from .base import CnetBase


class NetworkOps(CnetBase):
    def create_network(self, driver: str, name: str, *, subnets=(), gateways=(), ip_range=None, mtu=None,
                       internal=False, masquerade=True, options=None, exist_ok=False,
                       force_subnet=False) -> Network:
        """A network of that driver; options: the driver's own (see its validate()).
        force_subnet: a subnet may overlap a network the host is on."""
        request = dict(driver=driver, subnets=subnets, gateways=gateways, ip_range=ip_range, mtu=mtu,
                       internal=internal, masquerade=masquerade, options=options)
        module = drivers.get(driver)
        shared = getattr(module, "join", None)  # optional: a network that hosts share through a store
        with self._change() as c:
            existing = c.state.networks.get(name)
            if shared is not None and (existing is None or exist_ok):
                request = shared(name, request, self.config, c.kernel)
            if existing is not None and exist_ok:
                others = State(networks={k: v for k, v in c.state.networks.items() if k != name})
                wanted = networks.plan_network(others, self.config, name, **request, host_routes=list)
                if not subnets:
                    wanted = replace(wanted, subnets=existing.subnets)
                if not existing.same_definition(wanted):
                    raise Conflict(f"network {name} exists with other settings")
                c.nothing_to_do()
                driver = drivers.get(existing.driver)
                if driver.survey_network(existing, c.kernel, None):  # recorded, but not whole in the kernel
                    driver.repair_network(existing, c.kernel, c.undo)
                    self.warnings.append(f"network {name} was not whole in the kernel and is made again;"
                                         " `cnet check` tells whether anything else is missing")
                elif shared is not None:
                    driver.sync(existing, c.kernel)  # the other hosts' endpoints, as the store has them now
                return existing
            net = networks.plan_network(c.state, self.config, name, **request,
                                        host_routes=lambda: c.kernel.netlink.route_networks(),
                                        host_networks=lambda: _host_networks(c.kernel), force_subnet=force_subnet)
            if shared is not None:
                module.define(net, c.undo)
            before = self._firewall_before(c)
            module.create(net, c.kernel, c.undo)
            c.state.networks[name] = net
            self._sync_firewall(c, before)
            return net

    def network(self, name: str) -> tuple[Network, State]:
        state = self.read_state()
        if name not in state.networks:
            raise NotFound(f"network {name} not found")
        return state.networks[name], state

    def inspect_network(self, name: str) -> dict:
        """The network as recorded, its endpoints, and what the kernel shows of it."""
        from ..kernel.handles import Kernel

        net, state = self.network(name)
        with Kernel(self.owner) as kernel:
            seen = drivers.get(net.driver).inspect(net, kernel)
        return {"network": net, "endpoints": state.endpoints_of_network(name), "kernel": seen}

    def delete_network(self, name: str, *, if_exists=False, force=False) -> bool:
        """Delete a network; False if it did not exist and if_exists was given."""
        with self._change() as c:
            net = c.state.networks.get(name)
            if net is None:
                if if_exists:
                    c.nothing_to_do()
                    return False
                raise NotFound(f"network {name} not found")
            attached = c.state.endpoints_of_network(name)
            if attached and not force:
                users = ", ".join(sorted({e.sandbox for e in attached}))
                raise Conflict(f"network {name} is in use by sandbox(es) {users} (use --force to detach them)")
            # The store first (a shared network: this host leaves it), the
            # state, then the firewall (which can still be rolled back), then
            # the endpoints and last the network's own objects (which cannot).
            leave = getattr(drivers.get(net.driver), "leave", None)
            if leave is not None:
                leave(net, c.undo)
            before = self._firewall_before(c)
            removals = [self._drop_endpoint(c, ep) for ep in attached]
            del c.state.networks[name]
            self._sync_firewall(c, before)
            # Each step is tried whatever the one before did (Change.best_effort).
            detached = all([remove() for remove in removals])
            deleted = c.best_effort(f"deleting the kernel objects of network {name}", drivers.get(net.driver).delete,
                                    net, c.kernel)
            if not (detached and deleted):
                c.state.networks[name] = net  # something of it is still there: so is its record
            owners = [e.sandbox for e in attached]
            c.refresh_hosts([name], owners)
            return True


def _host_networks(kernel) -> tuple[list, list]:
    """The host's own addresses and its directly connected networks, for plan_network."""
    import ipaddress

    nl = kernel.netlink
    return [ipaddress.ip_address(a) for a in nl.local_addresses()], nl.connected_networks()
