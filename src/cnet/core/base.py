"""What every cnet operation stands on: the state store, the configuration,
the kernel handles, and the transaction that ties them together.

A changing operation takes the state lock, loads the state, validates and
plans in full, then applies kernel changes, registering an undo for each as
soon as it is done. If a later step or the state write fails, the undos run
in reverse and the state file is left as it was. Work that only follows from
the saved state (the sandboxes' hosts files) runs after the save. Reading
operations take no lock (the state file is replaced atomically) and open
netlink only when they show what the kernel has.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

from ..config import Config, config_path, load_config, with_overrides
from ..errors import CnetError, Incomplete
from ..model import State
from ..kernel.handles import Kernel
from ..owner import Owner
from ..resolver import Resolver
from ..state import StateStore, state_path


class HeldSignals:
    """SIGINT and SIGTERM, held while a transaction changes the kernel.

    Python runs a signal handler between any two bytecodes, so a
    KeyboardInterrupt raised at once could land between a kernel change and
    the registration of its undo, and leave an object nobody records. Held,
    the signal is only noted; the transaction stops at its next safe point
    (check(): each time an undo step has been registered, and before the state
    is written) and rolls back. One that comes once a teardown has begun
    (nothing can be put back) or after the state is written lets the
    transaction finish: it is done by then."""

    _pending: list[int] = []

    @classmethod
    def check(cls) -> None:
        if cls._pending:
            raise KeyboardInterrupt

    @classmethod
    @contextlib.contextmanager
    def held(cls) -> Iterator[None]:
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            yield  # signals reach the main thread only: nothing to hold
            return
        saved = {sig: signal.signal(sig, lambda signum, frame: cls._pending.append(signum))
                 for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in saved.items():
                signal.signal(sig, handler)
            cls._pending.clear()


class Undo:
    """The undo steps of one transaction, run in reverse when it leaves with an
    exception (pop_all() first when it succeeded). A step that fails does not
    hide the error that made the transaction fail: it is logged (shown with
    --debug) and the steps after it still run."""

    def __init__(self, safe_points: bool = True) -> None:
        self._steps: list = []
        self._safe_points = safe_points  # False: a held signal must not stop what registers here

    def callback(self, step: Callable, *args, **kwargs) -> None:
        self._steps.append((step, args, kwargs))
        if self._safe_points:
            HeldSignals.check()  # the change just made is registered: a transaction may stop here

    def pop_all(self) -> None:
        self._steps = []

    def __enter__(self) -> Undo:
        return self

    def __exit__(self, *exc) -> bool:
        steps, self._steps = self._steps, []
        for step, args, kwargs in reversed(steps):
            try:
                step(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - the transaction's own error is the one to report
                import logging

                logging.getLogger("cnet").debug("undo step %s%r failed: %s: %s", getattr(step, "__qualname__", step),
                                                args, type(e).__name__, e, exc_info=True)
        return False


class Change:
    """One transaction in progress. (Plain classes here and in Batch, not
    dataclasses: model.py says why.)"""

    def __init__(self, state: State, undo: Undo, kernel: Kernel, *, changed: bool = True,
                 in_batch: bool = False):
        self.state, self.undo, self.kernel = state, undo, kernel
        self.after: list[Callable[[], None]] = []  # run once the state is saved
        self.changed = changed  # False: the operation found nothing to do; the state file is not rewritten
        self.in_batch = in_batch  # part of `cnet batch`: the firewall and the state are written at its end
        self.hosts_networks: set[str] = set()  # hosts files to rewrite once saved
        self.hosts_sandboxes: set[str] = set()
        self.leftovers: list[str] = []  # what a teardown could not remove
        self.irreversible = False  # a teardown has begun: a held signal no longer rolls the operation back

    def nothing_to_do(self) -> None:
        self.changed = False

    def best_effort(self, doing: str, step: Callable, *args) -> bool:
        """One step of a teardown, past the point where it could be rolled back:
        a failure is recorded (reported once the state is saved) and the
        teardown goes on. False if the step failed: the caller keeps the
        record of what it was removing. doing: "removing endpoint a/br0"."""
        self.irreversible = True
        try:
            step(*args)
            return True
        except (CnetError, OSError) as e:
            self.leftovers.append(f"{doing} failed: {e}")
            return False

    def incomplete(self) -> Incomplete:
        return Incomplete("; ".join(self.leftovers) + "; the rest is done, and the state keeps the records of"
                          " what is still there: the same command again finishes the job")

    def refresh_hosts(self, networks, sandboxes) -> None:
        """The hosts files of these networks and sandboxes follow the saved state."""
        self.hosts_networks.update(networks)
        self.hosts_sandboxes.update(sandboxes)


class Batch:
    """`cnet batch`: many operations under one lock on one state in memory.
    Each line is still a transaction of its own in the kernel; the firewall,
    the state file and the hosts files are written once, at the end, for the
    lines that succeeded."""

    def __init__(self, state: State, kernel: Kernel, firewall_before: object):
        self.state, self.kernel, self.firewall_before = state, kernel, firewall_before
        self.total: Change | None = None  # what the lines that succeeded did, written at the end


class CnetBase:
    def __init__(self, state: str | None = None, config: str | None = None,
                 firewall: str | None = None):
        self.warnings: list[str] = []  # for the user: things cnet cannot fix but that will bite
        self.store = StateStore(state_path(state))
        self.owner = Owner(self.store.path)  # the tags of what this state file's operations make
        self.resolver = Resolver(self.store.path)
        self._config_arg = config
        self._firewall = firewall
        self._config: Config | None = None
        self._batch: Batch | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            named = self._config_arg or os.environ.get("CNET_CONFIG")
            loaded = load_config(config_path(self._config_arg), must_exist=bool(named))
            self._config = with_overrides(loaded, firewall=self._firewall)
        return self._config

    def read_state(self) -> State:
        """The state as it stands: the batch's, inside one; else the file's (no lock needed)."""
        return self._batch.state if self._batch is not None else self.store.load()

    @contextlib.contextmanager
    def _change(self) -> Iterator[Change]:
        if self._batch is not None:
            with self._batch_line() as change:
                yield change
            return
        with self.store.locked(), Kernel(self.owner) as kernel, HeldSignals.held():
            with Undo() as undo:
                change = Change(self.store.load(), undo, kernel)
                yield change
                if not change.irreversible:
                    HeldSignals.check()
                if change.changed:
                    self.store.save(change.state)
                undo.pop_all()  # everything held: nothing to roll back
            self._after_save(change)  # still holding signals: the operation is done, it is finished
        if change.leftovers:
            raise change.incomplete()

    def _after_save(self, change: Change) -> None:
        """What follows from the saved state. The operation is done by now: a
        failure here is a warning, not an error that would make a script retry."""
        steps = list(change.after)
        if change.hosts_networks or change.hosts_sandboxes:
            steps.insert(0, lambda: self.resolver.networks_changed(
                change.state, change.hosts_networks, change.hosts_sandboxes))
        for step in steps:
            try:
                step()
            except Exception as e:  # noqa: BLE001 - reported, and the command still succeeds
                self.warnings.append(f"done, but a follow-up step failed: {type(e).__name__}: {e}")

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Run the operations called inside as one batch (see Batch)."""
        with self.store.locked(), Kernel(self.owner) as kernel, HeldSignals.held():
            state = self.store.load()
            b = self._batch = Batch(state, kernel, self._firewall_inputs(state))
            # The batch's own writes at its end run even after a signal stopped a line.
            b.total = Change(state, Undo(safe_points=False), kernel, changed=False)
            try:
                yield
            finally:
                self._batch = None
                self._end_batch(b)

    def _end_batch(self, b: Batch) -> None:
        total = b.total
        try:
            if total.changed:
                self._sync_firewall(total, b.firewall_before)
        finally:
            if total.changed:
                self.store.save(b.state)  # whatever the firewall did: the kernel holds these objects
            total.undo.pop_all()
        self._after_save(total)

    @contextlib.contextmanager
    def _batch_line(self) -> Iterator[Change]:
        b = self._batch
        saved = b.state.copy()
        try:
            with Undo() as undo:
                change = Change(b.state, undo, b.kernel, in_batch=True)
                yield change
                if not change.irreversible:
                    HeldSignals.check()
                undo.pop_all()
        except BaseException:
            b.state.restore(saved)
            raise
        finally:
            b.kernel.close_inside()  # a batch of 500 sandboxes would run out of descriptors
        b.total.changed |= change.changed
        b.total.refresh_hosts(change.hosts_networks, change.hosts_sandboxes)
        b.total.after += change.after
        if change.leftovers:  # what the line did stays recorded; the batch stops here
            raise change.incomplete()

    # -- the firewall and the sysctls that go with it ----------------------

    @staticmethod
    def _firewall_inputs(state: State):
        from ..firewall.plan import inputs

        return inputs(state, firewall_needs)

    def _firewall_before(self, c: Change, needed: bool = True):
        """What the firewall follows before an operation changes the state, for
        _sync_firewall; None when there is nothing to sync: the operation
        touches no network or port, or it is a line of a batch (which syncs
        once, at its end)."""
        if c.in_batch or not needed:
            return None
        return self._firewall_inputs(c.state)

    def _sync_firewall(self, c: Change, before) -> None:
        """Make the firewall and forwarding match the changed state; undo on
        rollback. `before` comes from _firewall_before (None: nothing to do)."""
        from .. import firewall
        from ..firewall.plan import dnat_changes

        if before is None:
            return

        after = self._firewall_inputs(c.state)
        host = c.state.host
        name, previous = self.config.firewall, host.get("firewall")
        current = host.get("firewall_rules") == firewall.RULES_VERSION  # else an older cnet's rules
        if after.empty:
            host.pop("firewall", None)
            host.pop("firewall_rules", None)
        else:
            host["firewall"], host["firewall_rules"] = name, firewall.RULES_VERSION
        if previous == name and current and after.structure == before.structure and not after.empty:
            # Only published ports can differ: the common case, in time proportional to the change.
            gone, added = dnat_changes(before, after)
            if gone or added:
                firewall.update(name, gone, added, after.plan, self.owner)
                c.undo.callback(firewall.update, name, added, gone, before.plan, self.owner)
                self._forget_later(c, gone | added)
        else:
            old, new = before.plan(), after.plan()
            if not (new == old and old.empty):
                known = old if previous and current else None  # an older cnet's rules: made anew, whole
                self.warnings += firewall.sync(name, previous, known, new, self.owner)
                # undo: back to `old`, made by the backend that made it
                undo_backend = previous or name
                c.undo.callback(firewall.sync, undo_backend, name if undo_backend != name else None, new, old,
                                self.owner)
                self._forget_later(c, old.dnat ^ new.dnat)
        self._sync_forwarding(c)

    def _warn_of_foreign_drops(self, c: Change) -> None:
        """For an operation whose traffic crosses the host's forward path
        (create ns --network, attach, publish): the forward chains of other
        firewalls that would drop it and hold no accepts of cnet's
        (firewall/hostpolicy.py; nft through libnftables only, ~2-3 ms). Not in a
        batch, which may make hundreds of sandboxes."""
        from .. import firewall
        from ..firewall.plan import structure_of

        if c.in_batch:
            return
        for line in firewall.host_warnings(structure_of(c.state, firewall_needs), self.owner):
            if line not in self.warnings:
                self.warnings.append(line)

    @staticmethod
    def _forget_later(c: Change, entries) -> None:
        """Once saved, forget the connections tracked for these host ports:
        UDP only, as Docker does. A UDP flow tracked before the change would
        keep its old translation for as long as packets come, while TCP and
        SCTP connections end and new ones are translated anew."""
        changed = {(d.protocol, d.host_port) for d in entries if d.protocol == "udp"}
        if changed:
            c.after.append(lambda: _forget_connections(changed))

    @staticmethod
    def _sync_forwarding(c: Change) -> None:
        """Host sysctls on while a network needs them (its driver says which:
        forwarding for routed networks, br_netfilter's hooks for --no-icc
        bridges), the values found before restored when none does."""
        from ..errors import OperationFailed
        from ..kernel import sysctl

        needed = set()
        for net in c.state.networks.values():
            needed |= firewall_needs(net).sysctls
        saved = c.state.host.setdefault("sysctls", {})
        for key in sorted(needed - saved.keys()):
            try:
                saved[key] = sysctl.read(key)
            except OperationFailed:  # sysctl.read's own error for a file that is not there
                raise OperationFailed(f"sysctl {key} is missing: a kernel module is not loaded"
                                      " (net.bridge.* come with br_netfilter: modprobe br_netfilter)") from None
            if saved[key] != "1":
                sysctl.write(key, "1")
                c.undo.callback(sysctl.write, key, saved[key])
        for key in sorted(saved.keys() - needed):
            old = saved.pop(key)
            if sysctl.read(key) != old and not _other_state_files_have_links(c.kernel.owner):
                sysctl.write(key, old)
                c.undo.callback(sysctl.write, key, "1")
        if not saved:
            c.state.host.pop("sysctls")


def _other_state_files_have_links(owner) -> bool:
    """A link in another state file's group is on the host: its networks may
    need the sysctls this one no longer does, so their old values wait."""
    from ..kernel import sysfs
    from ..owner import GROUP_BASE

    for name in sysfs.link_names():
        link = sysfs.link(name)
        if link and link.group & 0xFFFF0000 == GROUP_BASE and link.group != owner.group:
            return True
    return False


def firewall_needs(net):
    """What a network asks of the host's firewall and sysctls, from its driver."""
    from .. import drivers

    return drivers.get(net.driver).firewall(net)


def _forget_connections(ports) -> None:
    from ..kernel import conntrack

    conntrack.forget_ports(sorted(ports))
