"""`cnet apply`, `cnet export`, `cnet graph`: topologies against the state
(core/topology.py reads and writes them, core/apply_plan.py plans)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import CnetError, InvalidInput, OperationFailed
from .base import CnetBase

if TYPE_CHECKING:  # loaded by the operations that use them: `cnet ls` needs neither
    from . import apply_plan, topology


class StepFailed(CnetError):
    """A step of an apply failed; carries that step's exit code. The steps before it stay done and recorded."""


class ApplyOps(CnetBase):
    def load_topology(self, text: str, source: str) -> topology.Topology:
        from . import topology

        return topology.load(text, self.config, source)

    def plan_topology(self, text: str, source: str, *, prune: bool = False) -> apply_plan.Plan:
        """What apply would do (reads only; the store too, for an overlay it would replace)."""
        from . import apply_plan

        state = self.read_state()
        plan = apply_plan.plan(state, self.load_topology(text, source), self.config, prune)
        _refuse_shared_replacements(state, plan)  # what apply would refuse, a dry run refuses too
        return plan

    def apply_topology(self, text: str, source: str, *, prune: bool = False,
                       show: Callable[[apply_plan.Plan], None] = lambda plan: None,
                       progress: Callable[[int, int, apply_plan.Step], None] = lambda i, n, step: None
                       ) -> apply_plan.Plan:
        """Make the state and the kernel what the topology says, under one
        lock as one batch (the firewall and the state file written once, at
        the end). The plan is made under the lock, shown (show), and its
        steps run in order (progress before each); the first that fails
        stops the apply, named, with the steps before it done and recorded."""
        from . import apply_plan

        wanted = self.load_topology(text, source)  # a bad file: nothing is locked, nothing done
        with self.batch():
            state = self.read_state()
            plan = apply_plan.plan(state, wanted, self.config, prune)
            show(plan)
            _refuse_shared_replacements(state, plan)
            for number, step in enumerate(plan.steps, start=1):
                progress(number, len(plan.steps), step)
                try:
                    getattr(self, step.method)(*step.args, **step.kwargs)
                except CnetError as e:
                    done = f"the {number - 1} step(s) before it are done" if number > 1 else "nothing was done"
                    failed = StepFailed(f"{step.what}: {e} ({done})")
                    failed.exit_code = e.exit_code
                    raise failed from e
        # As every overlay command does (`create overlay --exist-ok`): this host's entries of the
        # other hosts' endpoints follow the store, also when the plan was empty.
        shared = [n for n, w in wanted.networks.items() if w.driver == "overlay"]
        if shared:
            _, failed = self.sync_overlays(shared)
            self.warnings += [f"overlay {n} not synced with the store: {why}" for n, why in failed.items()]
        return plan

    def export_topology(self) -> str:
        """The state as a topology file."""
        from . import topology

        return topology.dump(topology.export(self.read_state(), self.config))

    def graph(self, text: str | None = None, source: str = "", fmt: str = "dot") -> bytes:
        """A picture of a topology file's text (None: of the state) in Graphviz's
        dot language, or rendered by Graphviz (svg, png)."""
        from . import topology

        if text is None:
            text, source = self.export_topology(), "the state"
        dot = topology.dot(self.load_topology(text, source)).encode()
        if fmt == "dot":
            return dot
        return _render(dot, fmt)


def _render(dot: bytes, fmt: str) -> bytes:
    import shutil
    import subprocess

    if fmt not in ("svg", "png"):
        raise InvalidInput(f"unknown graph format {fmt!r} (dot, svg or png)")
    program = shutil.which("dot")
    if program is None:
        raise OperationFailed(f"--format {fmt} needs Graphviz's dot program, which is not installed"
                              " (Debian package graphviz: apt-get install graphviz); --format dot writes the text")
    done = subprocess.run([program, f"-T{fmt}"], input=dot, capture_output=True, check=False)
    if done.returncode != 0:
        raise OperationFailed(f"dot failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def _refuse_shared_replacements(state, plan: apply_plan.Plan) -> None:
    """A network that other hosts share through a store (overlay) keeps its
    settings while any of them holds it: replacing it here would leave it on
    this host and then be refused by the store. Refused before any step."""
    from .. import drivers
    from ..errors import Conflict

    deleted = {step.args[0] for step in plan.steps if step.method == "delete_network"}
    for step in plan.steps:
        if step.method != "create_network" or step.args[1] not in deleted:
            continue
        net = state.networks[step.args[1]]
        if step.args[0] != net.driver:
            continue  # a network of another driver: the store's record is left to the other hosts
        held_elsewhere = getattr(drivers.get(net.driver), "held_elsewhere", None)  # optional (drivers/base.py)
        others = held_elsewhere(net) if held_elsewhere is not None else []
        if others:
            raise Conflict(f"overlay {net.name} is held by host(s) {', '.join(others)} with its settings now:"
                           " it cannot be replaced on this host alone (delete it on those hosts first);"
                           " nothing was done")
