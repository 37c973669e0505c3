"""The serial link's health, tick by tick: what was damaged, lost, reordered or late.

``LinkHealth`` reads the robot's receive-side counters (firmware_bridge.frame.FrameDecoder,
the port's reconnects, the GET_STATUS round trips of ``SerialRobot.ping_nowait``) once per
control tick and reports:

- ``corrupt``: frames that arrived damaged (bad CRC, not COBS, too short, other version);
- ``dropped``: frames the sequence numbers show never arrived (the gaps, less the corrupt
  frames, which leave a gap too);
- ``out_of_sequence``: sequence numbers that went backwards;
- ``oversize``: byte runs longer than any frame;
- ``reconnects``: times the port was reopened;
- ``rtt_ms``: the last command round trip (a GET_STATUS sent every ``ping_every_ticks``).

``tick()`` returns the counters for the tick's log record and the events of bounds crossed
since the last tick (``LinkHealthConfig``); the counts are printed at the end of
``roach run``. Nothing here stops the robot: stale or missing samples do that
(onboard/safety.py). A robot without counters (a test double) reports nothing.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

LINK_CORRUPT = "link_corrupt"
LINK_DROPPED = "link_dropped"
LINK_OUT_OF_SEQUENCE = "link_out_of_sequence"
LINK_OVERSIZE = "link_oversize"
LINK_RECONNECT = "link_reconnect"
LINK_LATENCY = "link_latency"

COUNTERS = ("corrupt", "dropped", "out_of_sequence", "oversize", "reconnects")


def _rng(lo: float, hi: float, doc: str) -> dict[str, Any]:
    return {"range": (lo, hi), "doc": doc}


@dataclass(frozen=True)
class LinkHealthConfig:
    """When the link's counters become events (the ``[link_health]`` table)."""

    window_ticks: int = field(default=10, metadata=_rng(1, 10_000, "ticks"))
    """Corrupt and dropped frames are counted over this many ticks (1 s at 10 Hz)."""
    max_corrupt: int = field(default=3, metadata=_rng(0, 1_000_000, "frames per window"))
    """More corrupt frames than this within the window -> event ``link_corrupt``."""
    max_dropped: int = field(default=3, metadata=_rng(0, 1_000_000, "frames per window"))
    """More dropped frames than this within the window -> event ``link_dropped``."""
    max_rtt_fraction: float = field(default=0.3, metadata=_rng(0.01, 100.0, "of the period"))
    """A command round trip above this fraction of the control period -> ``link_latency``
    (the planned command then applies late by a large part of its period)."""
    ping_every_ticks: int = field(default=5, metadata=_rng(1, 10_000, "ticks"))
    """A GET_STATUS round trip is measured every this many ticks."""


def link_totals(c: dict[str, int]) -> dict[str, int]:
    """The health counters from a ``SerialRobot.counters()`` dict."""
    corrupt = c["bad_crc"] + c["cobs_errors"] + c["runts"] + c["bad_version"]
    return {
        "corrupt": corrupt,
        "dropped": max(c["frames_missed"] - corrupt, 0),
        "out_of_sequence": c.get("seq_backwards", 0),
        "oversize": c["oversize"],
        "reconnects": c["reconnects"],
    }


class LinkHealth:
    """Samples the link once per tick. ``period_s``: the control period."""

    def __init__(self, robot: Any, cfg: LinkHealthConfig, period_s: float) -> None:
        self.robot, self.cfg, self.period_s = robot, cfg, period_s
        self.enabled = callable(getattr(robot, "counters", None))
        self.totals = dict.fromkeys(COUNTERS, 0)
        self.max_rtt_ms = 0.0
        self._base: dict[str, int] | None = None
        self._recent: deque[tuple[int, int]] = deque(maxlen=cfg.window_ticks)
        self._over = {LINK_CORRUPT: False, LINK_DROPPED: False, LINK_LATENCY: False}
        self._k = 0

    def start(self) -> None:
        """The episode begins: counts from now on (the start sequence is not counted)."""
        if self.enabled:
            self._base = link_totals(self.robot.counters())

    def tick(self, ping: bool = True) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
        """This tick's counters (since the episode began) and the events of bounds crossed;
        every ``ping_every_ticks`` ticks (with ``ping``) a GET_STATUS for the round trip."""
        if not self.enabled:
            return None, []
        if self._base is None:
            self.start()
        assert self._base is not None
        now = link_totals(self.robot.counters())
        new = {k: now[k] - self._base[k] - self.totals[k] for k in COUNTERS}
        for k in COUNTERS:
            self.totals[k] += new[k]
        events: list[tuple[str, str]] = []
        self._recent.append((new["corrupt"], new["dropped"]))
        corrupt = sum(c for c, _ in self._recent)
        dropped = sum(d for _, d in self._recent)
        w = self.cfg.window_ticks
        self._edge(events, LINK_CORRUPT, corrupt > self.cfg.max_corrupt, f"{corrupt} in {w} ticks")
        self._edge(events, LINK_DROPPED, dropped > self.cfg.max_dropped, f"{dropped} in {w} ticks")
        for key, kind in (
            ("out_of_sequence", LINK_OUT_OF_SEQUENCE),
            ("oversize", LINK_OVERSIZE),
            ("reconnects", LINK_RECONNECT),
        ):
            if new[key]:
                events.append((kind, f"{new[key]} (total {self.totals[key]})"))
        rtt = getattr(self.robot, "last_rtt_s", None)
        rtt_ms = None if rtt is None else rtt * 1e3
        if rtt_ms is not None:
            self.max_rtt_ms = max(self.max_rtt_ms, rtt_ms)
            bound = self.cfg.max_rtt_fraction * self.period_s * 1e3
            self._edge(events, LINK_LATENCY, rtt_ms > bound, f"round trip {rtt_ms:.1f} ms")
        ping_nowait = getattr(self.robot, "ping_nowait", None)
        if ping and callable(ping_nowait) and self._k % self.cfg.ping_every_ticks == 0:
            ping_nowait()
        self._k += 1
        return dict(self.totals) | {"rtt_ms": rtt_ms}, events

    def _edge(self, events: list[tuple[str, str]], kind: str, over: bool, detail: str) -> None:
        """An event when a bound is first crossed, not on every tick it stays crossed."""
        if over and not self._over[kind]:
            events.append((kind, detail))
        self._over[kind] = over

    def drain(self) -> None:
        """At the end: one answered request, so every frame the robot sent before its answer
        is accounted for (a lost last frame shows as a gap). Never raises."""
        if not self.enabled or not getattr(self.robot, "connected", False):
            return
        try:
            self.robot.sync()
        except Exception:  # the link may be dead; the counts are then what they are
            return
        self.tick(ping=False)  # a ping now would be answered after the counts are taken

    def summary(self) -> dict[str, Any]:
        """The episode's totals and the largest round trip, for the report and the log."""
        return dict(self.totals) | {"max_rtt_ms": self.max_rtt_ms}


def link_line(summary: dict[str, Any]) -> str:
    """One line for the end of ``roach run`` from ``LinkHealth.summary()``."""
    t = summary
    return (
        f"link: corrupt {t['corrupt']}, dropped {t['dropped']}, out of sequence "
        f"{t['out_of_sequence']}, oversize {t['oversize']}, reconnects {t['reconnects']}, "
        f"round trip max {t['max_rtt_ms']:.1f} ms"
    )
