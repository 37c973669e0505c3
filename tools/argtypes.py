"""Argument types for the ``roach`` subcommands: numbers refused at parse time, one line.

``argparse`` calls these on the option's text; a ``ValueError``/``ArgumentTypeError`` becomes
``roach <command>: error: argument --seed: ...`` and exit code 2 (tools/cli.py).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def int_in(lo: int, hi: int) -> Callable[[str], int]:
    """An integer in [lo, hi]."""

    def parse(text: str) -> int:
        value = _int(text)
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} out of range; valid {lo} to {hi}")
        return value

    parse.__name__ = "integer"
    return parse


def float_in(lo: float, hi: float, *, open_low: bool = False) -> Callable[[str], float]:
    """A finite number in [lo, hi] (or (lo, hi] with ``open_low``)."""

    def parse(text: str) -> float:
        value = _float(text)
        if not ((lo < value) if open_low else (lo <= value)) or not value <= hi:
            bracket = "(" if open_low else "["
            raise argparse.ArgumentTypeError(
                f"{value:g} out of range; valid {bracket}{lo:g}, {hi:g}]"
            )
        return value

    parse.__name__ = "number"
    return parse


SEED = int_in(0, 2**63 - 1)
"""A random seed: numpy's generators take non-negative integers only."""
COUNT = int_in(1, 10_000_000)
"""A count of ticks, steps, episodes: at least 1."""
JOBS = int_in(1, 256)
"""Parallel worker processes."""
