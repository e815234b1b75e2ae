"""Network drivers: one module per kind of network, each behind the interface
that base.py describes. core picks a network's driver by its `driver` field
(`get`) and never assumes which one it is, so a new driver is a new module
here and its own `cnet create` subcommand, nothing more."""

from __future__ import annotations

import importlib
import re

from ..errors import InvalidInput

_NOT_DRIVERS = {"base", "sublink", "overlay_store"}  # modules here that are no driver (statecheck.py knows them too)


def get(name: str):
    """The driver of that name: the module drivers/NAME.py."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name or "") or name in _NOT_DRIVERS:
        raise InvalidInput(f"{name!r} is not a network driver")
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}":
            raise  # the driver is there, but something it imports is not
        raise InvalidInput(f"unknown network driver {name!r}") from None
