"""Every contender of bench/peers.py, in table order."""

from __future__ import annotations

from .cnet_cni import CnetCni
from .cni import Cni
from .cnet_ways import CnetApi, CnetBatch, CnetOneProcess, CnetSeparate
from .netavark import Netavark
from .scripts import Floor, Pipework

CONTENDERS = [CnetSeparate, CnetOneProcess, CnetBatch, CnetApi, CnetCni, Cni, Netavark, Pipework, Floor]


def by_name(name: str):
    for c in CONTENDERS:
        if c.name == name:
            return c
    raise KeyError(name)
