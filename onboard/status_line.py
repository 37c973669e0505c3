"""The one-line terminal status of a running ``roach run`` (off with ``--quiet``).

Redrawn in place (carriage return) at most ``every_s``: the tick, the distance from the
path, the step time (adapt + plan) and the events so far. Only on a terminal: a log
file or a pipe gets nothing. Writing a short line is cheap, but it happens at most a
few times a second, never on every tick.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import TextIO

from onboard.tick_record import TickRecord


class StatusLine:
    """A tick observer (``Controller.observers``) that redraws one status line."""

    def __init__(self, out: TextIO | None = None, every_s: float = 0.25) -> None:
        self.out = sys.stderr if out is None else out
        self.every_s = every_s
        self.events: Counter[str] = Counter()
        self._last = -float("inf")
        self._width = 0

    def __call__(self, rec: TickRecord) -> None:
        self.events.update(rec.events)
        now = time.monotonic()
        if now - self._last < self.every_s:
            return
        self._last = now
        self.draw(self.text(rec))

    def text(self, rec: TickRecord) -> str:
        dist = f"{rec.track.distance_m:.3f} m" if rec.track is not None else "-"
        step = (rec.adapt_s + rec.plan_s) * 1e3
        events = ", ".join(f"{k} {v}" for k, v in sorted(self.events.items())) or "none"
        return f"tick {rec.tick:5d}  from path {dist}  step {step:6.2f} ms  events: {events}"

    def draw(self, text: str) -> None:
        pad = max(0, self._width - len(text))
        self._width = len(text)
        self.out.write("\r" + text + " " * pad)
        self.out.flush()

    def close(self) -> None:
        """Ends the line so what is printed next starts on its own."""
        if self._width:
            self.out.write("\n")
            self.out.flush()
            self._width = 0
