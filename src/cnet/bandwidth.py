"""Bandwidth limits of an endpoint: the options parsed and planned. Pure.

RATE takes tc's units: `bit`, `kbit`, `mbit`, `gbit`, `tbit` (powers of
1000), `kibit` ... `tibit` (powers of 1024) and `bps`, `kbps`, `mbps`,
`gbps`, `tbps` (bytes per second, as tc means them); a bare number is bit/s.
SIZE is bytes, in tc's units too: `b`, `k`/`kb`, `m`/`mb`, `g`/`gb` (powers
of 1024); a bare number is bytes. Units are case-insensitive, and a number
may have a fraction (`1.5mbit`).

Directions are as the sandbox sees them (model.Limits): ingress into it,
egress out of it.
"""

from __future__ import annotations

import re

from .errors import InvalidInput
from .model import Limits, replace

RATE_UNITS = {
    "bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9, "tbit": 10**12,
    "kibit": 2**10, "mibit": 2**20, "gibit": 2**30, "tibit": 2**40,
    "bps": 8, "kbps": 8 * 10**3, "mbps": 8 * 10**6, "gbps": 8 * 10**9, "tbps": 8 * 10**12,
}
SIZE_UNITS = {"b": 1, "k": 2**10, "kb": 2**10, "m": 2**20, "mb": 2**20, "g": 2**30, "gb": 2**30}

# tbf takes its rate as 32 bits of bytes per second (pyroute2 0.9.7 sends no
# 64-bit rate), so ~34 gbit is the most it can shape to.
MAX_RATE = (2**32 - 1) * 8
MIN_RATE = 8  # one byte a second
# tbf counts the time a full bucket lasts at the rate in 32 bits of 64 ns
# ticks (psched), ~274 s: a bigger bucket for the rate does not fit.
MAX_BUCKET_SECONDS = (2**32 - 1) * 64e-9
BURST_SECONDS = 0.01  # the default burst is 10 ms of traffic at the rate ...
BURST_PACKETS = 4  # ... and at least this many packets of the network's MTU
DIRECTIONS = ("ingress", "egress")

_NUMBER = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([a-z]*)")


def _parse(text: str, units: dict, what: str, example: str) -> int:
    match = _NUMBER.fullmatch(text.strip().lower())
    unit = match and (units.get(match.group(2)) if match.group(2) else 1)
    if not unit:
        raise InvalidInput(f"{what} {text!r} is not a number with a unit like {example}")
    return round(float(match.group(1)) * unit)


def parse_rate(text: str) -> int:
    """A RATE in bit/s (`10mbit` -> 10000000, a bare `500000` -> 500000)."""
    rate = _parse(text, RATE_UNITS, "rate", "500kbit, 10mbit or 1gbit")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise InvalidInput(f"rate {text!r} is out of range: tbf shapes from {format_rate(MIN_RATE)} "
                           f"to {MAX_RATE / 1e9:.1f}gbit (2^32 - 1 bytes a second)")
    return rate


def parse_size(text: str) -> int:
    """A SIZE in bytes (`32kb` -> 32768)."""
    size = _parse(text, SIZE_UNITS, "burst", "32kb or 1mb")
    if size < 1:
        raise InvalidInput(f"burst {text!r} is not a positive size")
    return size


def default_burst(rate: int, mtu: int) -> int:
    """A bucket big enough for the rate to be reached: 10 ms of traffic at
    the rate, the rate/HZ that tc-tbf(8) asks for on a 100 Hz kernel (the
    slowest timer in use; whatever wakes tbf up later than that finds a
    full bucket and sends it at once, so the average still meets the
    rate), and at least a few packets of the MTU, so that a slow rate
    never holds back a packet of full size (measured here: TCP gets ~96 %
    of the set rate, its headers the rest, from 10 mbit to 1 gbit). A rate
    so slow (below ~200 bit/s) that those packets would last longer than
    tbf can count gets the biggest bucket it can."""
    return min(max(int(rate / 8 * BURST_SECONDS), BURST_PACKETS * mtu), int(rate / 8 * MAX_BUCKET_SECONDS))


def _direction(name: str, rate: int | None, burst: int | None, mtu: int) -> tuple[int | None, int | None]:
    if rate is None:
        return None, None
    burst = default_burst(rate, mtu) if burst is None else burst
    if burst / (rate / 8) > MAX_BUCKET_SECONDS:
        raise InvalidInput(f"--{name}-burst {format_size(burst)} lasts more than {MAX_BUCKET_SECONDS:.0f} s at "
                           f"{format_rate(rate)}, more than tbf can count: give a smaller burst or a higher rate")
    return rate, burst


def options(values: dict) -> dict:
    """The rates (bit/s) and bursts (bytes) parsed from the command line's
    texts: {"ingress_rate": "10mbit", "egress_burst": None, ...} -> the same
    keys with numbers (or None)."""
    parsed = {}
    for direction in DIRECTIONS:
        rate, burst = values.get(f"{direction}_rate"), values.get(f"{direction}_burst")
        parsed[f"{direction}_rate"] = None if rate is None else parse_rate(rate)
        parsed[f"{direction}_burst"] = None if burst is None else parse_size(burst)
    return parsed


def check_new(values: dict) -> None:
    """What a new endpoint's limits (`attach --ingress-rate ...`) cannot be:
    a burst without its rate."""
    for direction in DIRECTIONS:
        if values.get(f"{direction}_burst") is not None and values.get(f"{direction}_rate") is None:
            raise InvalidInput(f"--{direction}-burst needs --{direction}-rate")


def plan(values: dict, mtu: int) -> Limits | None:
    """The limits of a new endpoint: values as options() gives them; None
    when no rate is given."""
    check_new(values)
    return change(None, values, mtu)


def change(current: Limits | None, values: dict, mtu: int, *, clear: bool = False) -> Limits | None:
    """The limits after `cnet limit`: each direction given (a rate, or a
    burst for a direction that has a rate) replaces that direction, the
    others are kept; clear: none at all. None when nothing is limited."""
    given = [k for k, v in values.items() if v is not None]
    if clear:
        if given:
            raise InvalidInput("--clear removes every limit: give it alone")
        return None
    limits = current or Limits()
    for direction in DIRECTIONS:
        rate, burst = values.get(f"{direction}_rate"), values.get(f"{direction}_burst")
        if rate is None and burst is None:
            continue
        if rate is None:
            rate = getattr(limits, f"{direction}_rate")
            if rate is None:
                raise InvalidInput(f"--{direction}-burst needs --{direction}-rate (the endpoint has no "
                                   f"{direction} limit)")
        rate, burst = _direction(direction, rate, burst, mtu)
        limits = replace(limits, **{f"{direction}_rate": rate, f"{direction}_burst": burst})
    return None if limits == Limits() else limits


# -- as people read them -------------------------------------------------------

def format_rate(rate: int) -> str:
    """tc's way: the biggest decimal unit that gives a whole number (20mbit, 1500kbit, 123bit)."""
    for unit in ("tbit", "gbit", "mbit", "kbit"):
        if rate % RATE_UNITS[unit] == 0:
            return f"{rate // RATE_UNITS[unit]}{unit}"
    return f"{rate}bit"


def format_size(size: int) -> str:
    for unit in ("gb", "mb", "kb"):
        if size % SIZE_UNITS[unit] == 0:
            return f"{size // SIZE_UNITS[unit]}{unit}"
    return f"{size}b"


def rates(limits: Limits | None) -> str:
    """The rates alone, for a table: "in 20mbit out 10mbit", "out 5mbit", or "-"."""
    if limits is None:
        return "-"
    return " ".join(f"{word} {format_rate(rate)}" for word, rate in (("in", limits.ingress_rate),
                                                                    ("out", limits.egress_rate)) if rate)


def describe(limits: Limits | None) -> str:
    """One phrase: "ingress 20mbit (burst 25000b), egress 10mbit (burst 12500b)", or "-"."""
    if limits is None:
        return "-"
    parts = []
    for direction in DIRECTIONS:
        rate = getattr(limits, f"{direction}_rate")
        if rate is not None:
            parts.append(f"{direction} {format_rate(rate)} (burst {format_size(getattr(limits, f'{direction}_burst'))})")
    return ", ".join(parts)
