"""Plausibility and envelope checks: inputs that are finite but cannot be true stop the robot.

The freshness and finiteness rules of onboard/safety.py catch missing and broken data;
this part catches data that parses and is finite but that no robot of this size can
produce, or that shows the robot is no longer where it should be: a pose far from the
tracker's origin or one that jumps faster than the robot can run, a robot tipped over
on roll or pitch, leg rates and battery voltages outside their physical ranges, a
tracking error that says the robot has left its path, board or tracker timestamps that
go backwards or stand still, and samples whose own timestamps show they are old although
they only just arrived (they were queued while this computer stalled).

Every bound is a field of ``PlausibilityConfig`` (the ``[plausibility]`` table of the
controller config) with its default documented; ``Envelope`` applies them each tick and
returns an event kind (a stop, counted by the loop) or None. Pure bookkeeping, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from firmware_bridge.records import Pose, Telemetry
from firmware_bridge.robot import Stamped

# Event kinds (docs/log-format.md, docs/reliability.md).
POSE_OUT_OF_RANGE = "pose_out_of_range"
POSE_JUMP = "pose_jump"
TIPPED_OVER = "tipped_over"
LEG_RATE_RANGE = "leg_rate_out_of_range"
BATTERY_RANGE = "battery_out_of_range"
OFF_PATH = "off_path"
BOARD_TIME_BACKWARDS = "board_time_backwards"
BOARD_TIME_STALLED = "board_time_stalled"
POSE_TIME_BACKWARDS = "pose_time_backwards"
OLD_TELEMETRY = "old_telemetry"
OLD_POSE = "old_pose"
IMPLAUSIBLE_PREDICTION = "implausible_prediction"
"""The adapted model predicted a change the robot cannot make: planned again with the
meta-learned parameters (not a stop)."""
IMPLAUSIBLE_MODEL = "implausible_model"
"""The meta-learned model too predicted an impossible change: stop."""

STOP_EVENTS = (
    POSE_OUT_OF_RANGE,
    POSE_JUMP,
    TIPPED_OVER,
    LEG_RATE_RANGE,
    BATTERY_RANGE,
    OFF_PATH,
    BOARD_TIME_BACKWARDS,
    BOARD_TIME_STALLED,
    POSE_TIME_BACKWARDS,
    OLD_TELEMETRY,
    OLD_POSE,
    IMPLAUSIBLE_MODEL,
)
"""Events of this module after which the tick commands a stop."""

_U32 = 1 << 32
_CLOCK_DRIFT = 1e-3
"""How fast the estimated board-to-host clock offset may grow, s per s (1000 ppm, far
above a crystal's drift), so slow drift never reads as age but a stall always does."""


def _rng(lo: float, hi: float, doc: str) -> dict[str, Any]:
    return {"range": (lo, hi), "doc": doc}


@dataclass(frozen=True)
class PlausibilityConfig:
    """Physical bounds of the robot and its inputs (the ``[plausibility]`` table)."""

    max_position_m: float = field(default=100.0, metadata=_rng(0.1, 1e6, "m"))
    """|x|, |y|, |z| of the tracked pose beyond this from the tracker's origin -> stop."""
    max_speed_m_s: float = field(default=5.0, metadata=_rng(0.1, 1000.0, "m/s"))
    """Pose moved faster than this since the last accepted pose (by the tracker's own
    timestamps) -> stop (a teleport). The robot's top speed is about 2.7 m/s."""
    max_tilt_deg: float = field(default=60.0, metadata=_rng(5.0, 180.0, "deg"))
    """|roll| or |pitch| beyond this -> stop (tipped over; the simulator calls 70 deg
    flipped, the steepest trained slope is 20 deg)."""
    max_leg_rate_rev_s: float = field(default=40.0, metadata=_rng(1.0, 1000.0, "rev/s"))
    """|leg rate| measured from the encoders beyond this -> stop (commands are <= 9 rev/s,
    the top speed about 15 strides/s)."""
    battery_min_v: float = field(default=2.0, metadata=_rng(0.0, 100.0, "V"))
    """Battery below this -> stop (a one-cell LiPo is flat at 3.0 V; 2 V leaves room for
    the sag under load of a weak cell, so below it the reading or the cell is broken)."""
    battery_max_v: float = field(default=5.0, metadata=_rng(0.0, 100.0, "V"))
    """Battery above this -> stop (a full cell is 4.2 V; more is a wrong reading)."""
    max_tracking_error_m: float = field(default=3.0, metadata=_rng(0.01, 1e6, "m"))
    """Distance from the task's path beyond this -> stop: the robot has left the path."""
    board_stall_ticks: int = field(default=3, metadata=_rng(1, 1000, "ticks"))
    """Telemetry whose board timestamp has not advanced for this many ticks in a row
    -> stop (the board streams frames but its clock or sensors are stuck)."""
    max_predicted_speed_m_s: float = field(default=10.0, metadata=_rng(0.1, 1e6, "m/s"))
    """A model prediction of a position change faster than this over one period, or of a
    speed above it, is impossible -> plan with the meta-learned parameters, then stop."""
    max_predicted_leg_rate_rev_s: float = field(default=60.0, metadata=_rng(1.0, 1e6, "rev/s"))
    """A predicted leg rate beyond this is impossible (as above)."""
    max_predicted_battery_step_v: float = field(default=0.5, metadata=_rng(0.001, 100.0, "V"))
    """A predicted battery change over one period beyond this is impossible (as above)."""

    def __post_init__(self) -> None:
        if not self.battery_min_v < self.battery_max_v:
            raise ValueError(
                f"battery_min_v={self.battery_min_v} must be below battery_max_v="
                f"{self.battery_max_v}"
            )


def _unwrap(prev_raw: int | None, prev_unwrapped: int, raw: int) -> int:
    """A u32 microsecond clock made monotonic-comparable across its wrap (71 min)."""
    if prev_raw is None:
        return raw
    d = (raw - prev_raw + (1 << 31)) % _U32 - (1 << 31)
    return prev_unwrapped + d


class _StreamAge:
    """Age of a stream's samples by their own timestamps: the offset between the sender's
    clock and this computer's is the smallest seen (the fastest delivery), allowed to grow
    slowly for drift; a sample's age is now - (its timestamp + offset)."""

    def __init__(self) -> None:
        self.offset_s: float | None = None
        self._at_s = 0.0

    def age_s(self, now_s: float, stamp_s: float, received_s: float) -> float:
        seen = received_s - stamp_s
        if self.offset_s is None or seen < self.offset_s:
            self.offset_s = seen
        else:
            self.offset_s = min(seen, self.offset_s + _CLOCK_DRIFT * max(now_s - self._at_s, 0.0))
        self._at_s = now_s
        return now_s - (stamp_s + self.offset_s)

    def reset(self) -> None:
        self.offset_s = None


class Envelope:
    """The checks of one episode; keeps the last accepted samples between ticks.

    Args:
        cfg: the bounds.
        by_timestamps: judge freshness by the samples' own timestamps too (realtime;
            in lockstep the simulated time stands still between commands).
        telemetry_stale_s, pose_stale_s: the age limits (onboard.config.LoopConfig).
    """

    def __init__(
        self,
        cfg: PlausibilityConfig,
        by_timestamps: bool,
        telemetry_stale_s: float,
        pose_stale_s: float,
    ) -> None:
        self.cfg = cfg
        self.by_timestamps = by_timestamps
        self.tel_stale_s, self.pose_stale_s = telemetry_stale_s, pose_stale_s
        self.detail = ""
        """What the last refusal saw (for the event's detail)."""
        self._tel_age, self._pose_age = _StreamAge(), _StreamAge()
        self._tel_raw: int | None = None
        self._tel_us = 0
        self._stalled = 0
        self._pose_raw: int | None = None
        self._pose_us = 0
        self._accepted: tuple[float, float, float, int] | None = None  # x, y, z, unwrapped us

    def inputs(self, now_s: float, tel: Stamped[Telemetry], pose: Stamped[Pose]) -> str | None:
        """The checks on the raw samples (before the state is built); None if plausible."""
        return self._telemetry(now_s, tel) or self._pose(now_s, pose)

    def state(self, state: np.ndarray, distance_m: float | None = None) -> str | None:
        """The checks on the built state [24] and its distance from the path, m."""
        c = self.cfg
        rates = state[19:21]
        if not bool(np.all(np.abs(rates) <= c.max_leg_rate_rev_s)):
            return self._refuse(LEG_RATE_RANGE, f"leg rates {np.round(rates, 2).tolist()} rev/s")
        if not c.battery_min_v <= state[23] <= c.battery_max_v:
            return self._refuse(BATTERY_RANGE, f"battery {state[23]:.3f} V")
        if distance_m is not None and not distance_m <= c.max_tracking_error_m:
            return self._refuse(OFF_PATH, f"{distance_m:.2f} m from the path")
        return None

    def prediction_fault(self, state: np.ndarray, delta: np.ndarray, period_s: float) -> str:
        """Why the predicted change ``delta`` [24] from ``state`` [24] is impossible, or ""."""
        c = self.cfg
        step_m = math.sqrt(float(delta[0]) ** 2 + float(delta[1]) ** 2 + float(delta[2]) ** 2)
        nxt = state + delta
        speed = math.sqrt(float(nxt[3]) ** 2 + float(nxt[4]) ** 2 + float(nxt[5]) ** 2)
        if not step_m <= c.max_predicted_speed_m_s * period_s:
            return f"predicted move {step_m:.3g} m in {period_s:g} s"
        if not speed <= c.max_predicted_speed_m_s:
            return f"predicted speed {speed:.3g} m/s"
        if not bool(np.all(np.abs(nxt[19:21]) <= c.max_predicted_leg_rate_rev_s)):
            return f"predicted leg rates {np.round(nxt[19:21], 3).tolist()} rev/s"
        if not abs(float(delta[23])) <= c.max_predicted_battery_step_v:
            return f"predicted battery change {float(delta[23]):.3g} V"
        return ""

    def reset(self) -> None:
        """After a link loss: the clock offsets are measured again."""
        self._tel_age.reset()
        self._pose_age.reset()

    # -- the checks ------------------------------------------------------------------------

    def _refuse(self, kind: str, detail: str) -> str:
        self.detail = detail
        return kind

    def _telemetry(self, now_s: float, tel: Stamped[Telemetry]) -> str | None:
        raw = tel.value.timestamp_us
        us = _unwrap(self._tel_raw, self._tel_us, raw)
        if self._tel_raw is not None:
            if us < self._tel_us:
                return self._refuse(
                    BOARD_TIME_BACKWARDS, f"board time {raw} us after {self._tel_raw} us"
                )
            self._stalled = self._stalled + 1 if us == self._tel_us else 0
            if self._stalled >= self.cfg.board_stall_ticks:
                return self._refuse(
                    BOARD_TIME_STALLED, f"board time {raw} us for {self._stalled + 1} ticks"
                )
        self._tel_raw, self._tel_us = raw, us
        if self.by_timestamps:
            age = self._tel_age.age_s(now_s, us * 1e-6, tel.received_monotonic_s)
            if age > self.tel_stale_s:
                return self._refuse(OLD_TELEMETRY, f"telemetry {age * 1e3:.0f} ms old by its stamp")
        return None

    def _pose(self, now_s: float, pose: Stamped[Pose]) -> str | None:
        c, p = self.cfg, pose.value
        if not max(abs(p.x), abs(p.y), abs(p.z)) <= c.max_position_m:
            return self._refuse(POSE_OUT_OF_RANGE, f"pose ({p.x:.4g}, {p.y:.4g}, {p.z:.4g}) m")
        tilt = math.degrees(max(abs(_wrap_pi(p.roll)), abs(_wrap_pi(p.pitch))))
        if tilt > c.max_tilt_deg:
            return self._refuse(
                TIPPED_OVER,
                f"roll {math.degrees(p.roll):.0f} deg, pitch {math.degrees(p.pitch):.0f} deg",
            )
        raw = p.timestamp_us
        us = _unwrap(self._pose_raw, self._pose_us, raw)
        if self._pose_raw is not None and us < self._pose_us:
            return self._refuse(POSE_TIME_BACKWARDS, f"pose time {raw} us after {self._pose_raw}")
        self._pose_raw, self._pose_us = raw, us
        if self.by_timestamps:
            age = self._pose_age.age_s(now_s, us * 1e-6, pose.received_monotonic_s)
            if age > self.pose_stale_s:
                return self._refuse(OLD_POSE, f"pose {age * 1e3:.0f} ms old by its stamp")
        if self._accepted is not None:
            x0, y0, z0, us0 = self._accepted
            dt = max((us - us0) * 1e-6, 1e-3)
            moved = math.sqrt((p.x - x0) ** 2 + (p.y - y0) ** 2 + (p.z - z0) ** 2)
            if moved > c.max_speed_m_s * dt:
                return self._refuse(POSE_JUMP, f"pose moved {moved:.3g} m in {dt:.3g} s")
        self._accepted = (p.x, p.y, p.z, us)
        return None


def _wrap_pi(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi
