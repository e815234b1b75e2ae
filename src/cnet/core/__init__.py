"""The public Python API of cnet: `Cnet` runs each operation as one transaction."""

from .api import Cnet

__all__ = ["Cnet"]
