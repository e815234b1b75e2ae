"""`Cnet`: the public Python API of cnet, one transaction per operation (see base.py)."""

from .explain import ExplainOps
from .lifecycle import LifecycleOps
from .network_ops import NetworkOps
from .port_ops import PortOps
from .read_ops import ReadOps
from .sandbox_ops import SandboxOps


class Cnet(NetworkOps, SandboxOps, PortOps, ReadOps, LifecycleOps, ExplainOps):
    """cnet's operations. Each method is one transaction: all of it happens, or none."""
