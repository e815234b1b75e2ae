"""`Cnet`: the public Python API of cnet, one transaction per operation (see base.py)."""

from .apply_ops import ApplyOps
from .lifecycle import LifecycleOps
from .limit_ops import LimitOps
from .network_ops import NetworkOps
from .overlay_ops import OverlayOps
from .port_ops import PortOps
from .read_ops import ReadOps
from .router_ops import RouterOps
from .sandbox_ops import SandboxOps


class Cnet(NetworkOps, SandboxOps, LimitOps, RouterOps, PortOps, ReadOps, LifecycleOps, ApplyOps, OverlayOps):
    """cnet's operations. Each method is one transaction: all of it happens, or none."""

    def explain(self, ns: str | None, port: str) -> list:
        """The path of each published port that NS's PORT[/PROTO] names (without
        NS: the host port PORT), every rule that decides it, and a verdict
        (core/explain.py: a list of Explanation). Reads only."""
        from .explain import explain

        return explain(self, ns, port)
