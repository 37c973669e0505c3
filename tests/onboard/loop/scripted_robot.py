"""A scripted ``Robot`` for in-process tests of the control tick's decisions.

It behaves like a lockstep board: each SET_LEG_VELOCITY advances its clock by one control
period and answers with one telemetry + pose pair; in ``realtime`` mode every read of
the latest samples returns a fresh pair stamped now instead. The robot drives straight
along +x at a speed set by the mean leg command. What goes wrong is scripted per sample
index (the k-th answer, 0-based) with ``Fault`` entries: no answer, a repeated
timestamp, a non-finite or absurd pose, status flags, an old arrival time, or a send
that raises. Every call the controller makes is recorded in ``calls``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

from firmware_bridge.messages import FLAG_ESTOPPED, FLAG_MOTORS_ON, FLAG_TELEMETRY_ON
from firmware_bridge.records import ENCODER_COUNTS_PER_REV, Pose, Telemetry
from firmware_bridge.robot import Robot, Stamped
from robot_contract.errors import LinkError, ProtocolError

PERIOD_US = 100_000


@dataclass
class Fault:
    """What sample ``k`` (or the send that asks for it) does instead of the normal."""

    silent: bool = False
    """No answer: the sample is never produced (a dropped frame, a dead link)."""
    repeat: bool = False
    """The answer repeats the previous sample's timestamps (a board that stalled)."""
    pose: dict[str, Any] = field(default_factory=dict)
    """Pose fields to override, e.g. ``{"x": float("nan")}``."""
    flags_clear: int = 0
    """Status flag bits to clear (e.g. FLAG_MOTORS_ON: the watchdog stopped the motors)."""
    flags_set: int = 0
    """Status flag bits to set (e.g. FLAG_ESTOPPED, which also latches the e-stop)."""
    age_s: float = 0.0
    """The sample arrived this long ago (by this computer's clock)."""
    send_raises: bool = False
    """The SET_LEG_VELOCITY that would produce this sample raises LinkError."""


class ScriptedRobot(Robot):
    """A robot whose samples follow ``script`` ({sample index: Fault}).

    Args:
        script: faults by sample index; absent indices are normal samples.
        realtime: produce a fresh sample on every read (for the realtime clock) instead
            of one per SET_LEG_VELOCITY (lockstep).
    """

    def __init__(self, script: dict[int, Fault] | None = None, realtime: bool = False) -> None:
        self.script = script or {}
        self.realtime = realtime
        self.calls: list[tuple[str, tuple[float, ...]]] = []
        self.motors_on = False
        self.estop_latched = False
        self.telemetry_on = False
        self.index = 0  # samples produced so far (the next sample's index)
        self.x_m = 0.0
        self.speed = 0.0
        self.leg_counts = 0
        self._tel: Stamped[Telemetry] | None = None
        self._pose: Stamped[Pose] | None = None

    # -- what the controller calls -----------------------------------------------------------

    def hello(self, timeout_s: float = 1.0) -> dict[str, object]:
        self.calls.append(("hello", ()))
        return {"name": "scripted", "protocol_version": 1}

    def set_command_timeout(self, timeout_ms: int) -> None:
        self.calls.append(("set_command_timeout", (float(timeout_ms),)))

    def start_telemetry(self, rate_hz: float) -> None:
        self.calls.append(("start_telemetry", (rate_hz,)))
        self.telemetry_on = True

    def stop_telemetry(self) -> None:
        self.calls.append(("stop_telemetry", ()))
        self.telemetry_on = False

    def start_motors(self) -> None:
        self.calls.append(("start_motors", ()))
        if self.estop_latched:
            raise ProtocolError("scripted: START_MOTORS refused, emergency stop latched")
        self.motors_on = True

    def start_motors_nowait(self) -> None:
        self.calls.append(("start_motors_nowait", ()))
        self.motors_on = not self.estop_latched

    def set_leg_velocity(self, left_rev_s: float, right_rev_s: float) -> None:
        self.calls.append(("set_leg_velocity", (left_rev_s, right_rev_s)))
        fault = self.script.get(self.index, Fault())
        if fault.send_raises:
            raise LinkError("scripted: the link is gone")
        self.speed = 0.05 * (left_rev_s + right_rev_s) / 2 if self.motors_on else 0.0
        if not self.realtime:
            self._produce()

    def stop(self) -> None:
        self.calls.append(("stop", ()))
        self.motors_on = False

    def emergency_stop(self) -> None:
        self.calls.append(("emergency_stop", ()))
        self.estop_latched, self.motors_on = True, False

    def latest_telemetry(self) -> Stamped[Telemetry] | None:
        if self.realtime and self.telemetry_on:
            self._produce()
        return self._tel

    def latest_pose(self) -> Stamped[Pose] | None:
        return self._pose

    def close(self) -> None:
        self.calls.append(("close", ()))

    def stop_telemetry_nowait(self) -> None:
        self.calls.append(("stop_telemetry_nowait", ()))
        self.telemetry_on = False

    # -- for the tests -----------------------------------------------------------------------

    def names(self) -> list[str]:
        """The names of the calls so far, in order."""
        return [name for name, _ in self.calls]

    def commands(self) -> list[tuple[float, ...]]:
        """Every SET_LEG_VELOCITY's (left, right), in order."""
        return [args for name, args in self.calls if name == "set_leg_velocity"]

    def _produce(self) -> None:
        k = self.index
        self.index += 1
        fault = self.script.get(k, Fault())
        if fault.silent:
            return
        self.x_m += self.speed * PERIOD_US * 1e-6
        self.leg_counts += round(self.speed * 20 * ENCODER_COUNTS_PER_REV * PERIOD_US * 1e-6)
        if fault.flags_set & FLAG_ESTOPPED:
            self.estop_latched, self.motors_on = True, False
        if fault.flags_clear & FLAG_MOTORS_ON:
            self.motors_on = False  # the board stopped them (watchdog)
        flags = FLAG_TELEMETRY_ON | (FLAG_MOTORS_ON if self.motors_on else 0)
        flags |= FLAG_ESTOPPED if self.estop_latched else 0
        flags = (flags | fault.flags_set) & ~fault.flags_clear
        stamp_k = k - 1 if fault.repeat and k > 0 else k
        t_us = (stamp_k * PERIOD_US) & 0xFFFFFFFF
        tel = Telemetry(
            k, t_us, self.leg_counts, self.leg_counts, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 4096, 1000, 1000, 3900,
        )  # fmt: skip
        pose = dataclasses.replace(Pose(self.x_m, 0.0, 0.03, 0.0, 0.0, 0.0, t_us), **fault.pose)
        arrived = time.monotonic() - fault.age_s
        self._tel = Stamped(tel, arrived, flags)
        self._pose = Stamped(pose, arrived, flags)
