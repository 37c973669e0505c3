"""What the control loop reports: the episode's result and each tick's log record.

``LoopResult`` is what ``roach run`` prints and writes as the log's summary;
``tick_record`` builds one ``/roach/tick`` message (docs/log-format.md).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from firmware_bridge.robot import Stamped
from onboard.adaptation import AdaptResult
from onboard.tasks import TrackPoint


@dataclass
class LoopResult:
    """What an episode did (printed by ``roach run``, written as the log's summary)."""

    ticks: int = 0
    step_times_s: list[float] = field(default_factory=list)
    """Adapt + plan time of each tick that planned, seconds."""
    tick_times_s: list[float] = field(default_factory=list)
    """Whole tick (read .. log written) of every tick, seconds."""
    overruns: int = 0
    events: Counter[str] = field(default_factory=Counter)
    stopped_by: str | None = None
    """None if the episode ran all its steps, else why it ended early ('SIGINT',
    'SIGTERM', or 'robot_estopped' when the board's emergency stop was latched)."""
    tracking: dict[str, Any] = field(default_factory=dict)
    """Task tracking metrics of the episode (onboard.tasks.TrackingMetrics)."""

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
        }


def tick_record(
    k: int,
    t_start: float,
    tel: Stamped[Any] | None,
    pose: Stamped[Any] | None,
    state: np.ndarray | None,
    sent: np.ndarray | None,
    planned: np.ndarray,
    adapt: AdaptResult | None,
    plan: Any,
    track: TrackPoint | None,
    times: tuple[float, float],
    tick_s: float,
    late_s: float,
    pipelined: bool,
    events: list[str],
) -> dict[str, Any]:
    """One ``/roach/tick`` message. ``sent`` [2] is the command sent this tick (None: a
    stop), ``planned`` [2] the plan's command; ``times`` (adapt, plan) s; ``tick_s`` the
    tick so far and ``late_s`` its lateness, s."""
    return {
        "tick": k,
        "t_monotonic_s": t_start,
        "telemetry": _stamped(tel),
        "pose": _stamped(pose),
        "state": state,
        "command": {
            "kind": "plan" if sent is not None else "stop",
            "left_rev_s": float(sent[0]) if sent is not None else None,
            "right_rev_s": float(sent[1]) if sent is not None else None,
        },
        "adaptation": None if adapt is None else asdict(adapt),
        "planner": None
        if plan is None
        else {
            "best_cost": float(plan.best_cost),
            "planned_left_rev_s": float(planned[0]),
            "planned_right_rev_s": float(planned[1]),
            "pipelined": pipelined,
        },
        "tracking": None if track is None else asdict(track),
        "timing": {
            "adapt_ms": times[0] * 1e3,
            "plan_ms": times[1] * 1e3,
            "tick_ms": tick_s * 1e3,
            "late_ms": late_s * 1e3,
        },
        "events": events,
    }


def _stamped(s: Stamped[Any] | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return asdict(s.value) | {
        "received_monotonic_s": s.received_monotonic_s,
        "status_flags": s.status_flags,
    }
