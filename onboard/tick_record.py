"""What the control loop reports: the episode's result and each tick's log record.

``LoopResult`` is what ``roach run`` prints and writes as the log's summary;
``TickRecord`` is one tick, written once as a ``/roach/tick`` message (docs/log-format.md).
"""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from firmware_bridge.records import Pose, Telemetry
from firmware_bridge.robot import Stamped
from onboard.adaptation import AdaptResult
from onboard.planner import PlanResult
from onboard.tasks import TrackPoint


@dataclass
class LoopResult:
    """What an episode did (printed by ``roach run``, written as the log's summary)."""

    ticks: int = 0
    step_times_s: array[float] = field(default_factory=lambda: array("d"))
    """Adapt + plan time of each tick that planned, seconds."""
    tick_times_s: array[float] = field(default_factory=lambda: array("d"))
    """Whole tick (read .. log written) of every tick, seconds."""
    overruns: int = 0
    events: Counter[str] = field(default_factory=Counter)
    stopped_by: str | None = None
    """None if the episode ran all its steps, else why it ended early ('SIGINT',
    'SIGTERM', or 'robot_estopped' when the board's emergency stop was latched)."""
    tracking: dict[str, Any] = field(default_factory=dict)
    """Task tracking metrics of the episode (onboard.tasks.TrackingMetrics)."""
    link: dict[str, Any] = field(default_factory=dict)
    """The link's health counters over the episode (firmware_bridge.link_health)."""

    def timing_summary(self) -> dict[str, float]:
        """p50/p99/max of the step time (adapt + plan) and of the whole tick, ms."""
        out: dict[str, float] = {}
        for name, xs in (("step", self.step_times_s), ("tick", self.tick_times_s)):
            a = np.asarray(xs, dtype=np.float64) * 1e3
            if a.size:
                out[f"{name}_p50_ms"] = float(np.percentile(a, 50))
                out[f"{name}_p99_ms"] = float(np.percentile(a, 99))
                out[f"{name}_max_ms"] = float(a.max())
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "ticks": self.ticks,
            "overruns": self.overruns,
            "events": dict(self.events),
            "stopped_by": self.stopped_by,
            "timing": self.timing_summary(),
            "tracking": self.tracking,
            "link": self.link,
        }


@dataclass
class TickRecord:
    """One tick as it ran, filled in step by step and written once (``/roach/tick``).

    The loop sets each field as the tick goes; ``message()`` is the log record
    (docs/log-format.md).
    """

    tick: int
    t_start_s: float
    """``time.monotonic()`` at the tick's start."""
    telemetry: Stamped[Telemetry] | None = None
    pose: Stamped[Pose] | None = None
    state: np.ndarray | None = None
    """[24] the state built this tick (None: the inputs were unusable)."""
    sent: np.ndarray | None = None
    """[2] rev/s, the command sent this tick; None: the tick commanded a stop."""
    planned: np.ndarray | None = None
    """[2] rev/s, the plan's command (clipped to the bounds)."""
    adapt: AdaptResult | None = None
    plan: PlanResult | None = None
    track: TrackPoint | None = None
    adapt_s: float = 0.0
    plan_s: float = 0.0
    fault: str | None = None
    """Why the tick commanded a stop (an onboard.safety kind), or None."""
    detail: str = ""
    """What the fault saw (flags, the planned command, the exception)."""
    pipelined: bool = True
    events: list[str] = field(default_factory=list)
    late_s: float = 0.0
    tick_s: float = 0.0
    link: dict[str, Any] | None = None
    """The link's counters since the episode began (firmware_bridge.link_health)."""

    def message(self) -> dict[str, Any]:
        """The ``/roach/tick`` message."""
        sent, plan = self.sent, self.plan
        planned = self.planned
        return {
            "tick": self.tick,
            "t_monotonic_s": self.t_start_s,
            "telemetry": _stamped(self.telemetry),
            "pose": _stamped(self.pose),
            "state": self.state,
            "command": {
                "kind": "plan" if sent is not None else "stop",
                "left_rev_s": float(sent[0]) if sent is not None else None,
                "right_rev_s": float(sent[1]) if sent is not None else None,
            },
            "adaptation": None if self.adapt is None else asdict(self.adapt),
            "planner": None
            if plan is None or planned is None
            else {
                "best_cost": float(plan.best_cost),
                "planned_left_rev_s": float(planned[0]),
                "planned_right_rev_s": float(planned[1]),
                "pipelined": self.pipelined,
            },
            "tracking": None if self.track is None else asdict(self.track),
            "timing": {
                "adapt_ms": self.adapt_s * 1e3,
                "plan_ms": self.plan_s * 1e3,
                "tick_ms": self.tick_s * 1e3,
                "late_ms": self.late_s * 1e3,
                "pose_age_ms": None
                if self.pose is None
                else (self.t_start_s - self.pose.received_monotonic_s) * 1e3,
                "pose_latency_ms": None
                if self.pose is None or self.pose.latency_s is None
                else self.pose.latency_s * 1e3,
            },
            "events": self.events,
            "link": self.link,
        }


def _stamped(s: Stamped[Any] | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return asdict(s.value) | {
        "received_monotonic_s": s.received_monotonic_s,
        "status_flags": s.status_flags,
    }
