"""`Cnet`: the public Python API of cnet, one transaction per operation (see base.py)."""

from .lifecycle import LifecycleOps
from .limit_ops import LimitOps
from .network_ops import NetworkOps
from .port_ops import PortOps
from .read_ops import ReadOps
from .sandbox_ops import SandboxOps


class Cnet(NetworkOps, SandboxOps, LimitOps, PortOps, ReadOps, LifecycleOps):
    """cnet's operations. Each method is one transaction: all of it happens, or none."""
