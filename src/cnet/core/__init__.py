"""The public Python API of cnet: `Cnet` runs each operation as one transaction.

`Cnet` (core/api.py, every operation's module) is imported on first use, so
that importing one module of this package (cnet-cni's CniOps takes the few
operations it runs) does not load them all."""

__all__ = ["Cnet"]


def __getattr__(name: str):
    if name == "Cnet":
        from .api import Cnet

        return Cnet
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
