"""When a tick runs and which samples it may use: the realtime and the lockstep clock.

Realtime (a robot, or ``roach sim --clock realtime``): tick k runs at ``t0 + k / rate_hz``
on the monotonic clock; a sample is fresh when it arrived less than
``telemetry_stale_s`` / ``pose_stale_s`` ago; a tick that ends after the next deadline
is late, and whole missed periods are skipped, not caught up.

Lockstep (``roach sim --clock lockstep``): the fake's clock advances only on
SET_LEG_VELOCITY and answers each with one telemetry + pose. A tick runs as soon as a
sample newer than the previous tick's has arrived, and that sample must have arrived
after the last command was sent, so one that comes later than ``lockstep_timeout_s``
is skipped instead of putting the loop one sample behind. Simulated time stands still
between commands, so age by this computer's clock means nothing; lateness is the
tick's own duration. A stop tick sends the nominal setpoint with the motors off
(stored, not driven: docs/protocol.md) to let simulated time go on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from firmware_bridge.records import Pose, Telemetry
from firmware_bridge.robot import Robot, Stamped
from onboard import safety
from onboard.config import LoopConfig
from robot_contract.errors import LinkError

POLL_S = 0.0005
"""Polling interval while waiting for a sample, small against the control period."""
FIRST_SAMPLE_TIMEOUT_S = 1.0
"""Realtime start: how long to wait for the first telemetry and pose before the motors."""


class Clock:
    """The freshness rule and the samples used so far; subclasses add the timing."""

    confirm_s = 0.0
    """How long after START_MOTORS a sample showing the motors off is still in flight
    (onboard.motors)."""

    def __init__(self, cfg: LoopConfig) -> None:
        self.cfg = cfg
        self.period_s = 1.0 / cfg.rate_hz
        self._prev_tel_us: int | None = None
        self._prev_pose_us: int | None = None
        self._sent_at_s = -math.inf  # when the last SET_LEG_VELOCITY was sent (monotonic)

    def begin(self) -> None:
        """The episode's first tick is about to be waited for."""

    def wait_first_samples(self, robot: Robot, stopping: Callable[[], bool]) -> None:
        """Before the motors start: LinkError unless the robot streams telemetry and pose.
        (Lockstep: nothing; the simulation answers only the first command, which tick 0
        then waits for.)"""

    def wait_tick(self, robot: Robot, stopping: Callable[[], bool]) -> bool:
        """Waits for this tick's moment; False if a stop was requested meanwhile."""
        raise NotImplementedError

    def end_tick(self) -> None:
        """The tick is done (realtime: move the deadline on)."""

    def input_fault(
        self, now_s: float, tel: Stamped[Telemetry] | None, pose: Stamped[Pose] | None
    ) -> str | None:
        """Why this tick cannot use ``tel`` and ``pose`` (onboard.safety kinds), or None;
        a usable pair becomes the previous tick's samples."""
        fault = self._fault(now_s, tel, pose)
        if fault is None and tel is not None and pose is not None:
            self._prev_tel_us, self._prev_pose_us = tel.value.timestamp_us, pose.value.timestamp_us
        return fault

    def _fault(
        self, now_s: float, tel: Stamped[Telemetry] | None, pose: Stamped[Pose] | None
    ) -> str | None:
        raise NotImplementedError

    def sending(self) -> None:
        """A SET_LEG_VELOCITY goes out now (noted before sending: no answer precedes it)."""
        self._sent_at_s = time.monotonic()

    def late_s(self, tick_start_s: float) -> float:
        """How late the tick is now, s (an overrun when above one period)."""
        raise NotImplementedError

    def keep_time(self, robot: Robot, nominal: np.ndarray) -> None:
        """After a stop command: what keeps the robot's time going (lockstep only)."""

    def wait_samples(self, robot: Robot, until_s: float, stopping: Callable[[], bool]) -> None:
        """Polls until telemetry and pose newer than the last tick's, and received after
        the last command was sent, are there; or until ``until_s`` or a stop request."""
        while time.monotonic() < until_s and not stopping():
            tel, pose = robot.latest_telemetry(), robot.latest_pose()
            if (
                tel is not None
                and pose is not None
                and tel.value.timestamp_us != self._prev_tel_us
                and pose.value.timestamp_us != self._prev_pose_us
                and min(tel.received_monotonic_s, pose.received_monotonic_s) >= self._sent_at_s
            ):
                return
            time.sleep(POLL_S)


class RealtimeClock(Clock):
    """Ticks on a fixed monotonic-clock grid; samples are fresh by their arrival age."""

    def __init__(self, cfg: LoopConfig) -> None:
        super().__init__(cfg)
        self.confirm_s = cfg.command_timeout_ms / 1000.0
        self._deadline = 0.0

    def wait_first_samples(self, robot: Robot, stopping: Callable[[], bool]) -> None:
        # Never start the motors blind.
        self.wait_samples(robot, time.monotonic() + FIRST_SAMPLE_TIMEOUT_S, stopping)
        tel, pose = robot.latest_telemetry(), robot.latest_pose()
        if not stopping() and (tel is None or pose is None):
            missing = "telemetry" if tel is None else "pose"
            status = robot.pose_status() if tel is not None else ""
            raise LinkError(
                f"no {missing} within {FIRST_SAMPLE_TIMEOUT_S:g} s of starting the telemetry stream"
                + (f" ({status})" if status else "")
            )

    def begin(self) -> None:
        self._deadline = time.monotonic() + self.period_s

    def wait_tick(self, robot: Robot, stopping: Callable[[], bool]) -> bool:
        # Sleep in slices so a stop request ends the episode within one period.
        while (left := self._deadline - time.monotonic()) > 0:
            if stopping():
                return False
            time.sleep(min(left, self.period_s / 4))
        return not stopping()

    def end_tick(self) -> None:
        self._deadline, _ = safety.next_deadline(self._deadline, self.period_s, time.monotonic())

    def _fault(
        self, now_s: float, tel: Stamped[Telemetry] | None, pose: Stamped[Pose] | None
    ) -> str | None:
        return safety.input_fault(
            now_s, tel, pose, self.cfg.telemetry_stale_s, self.cfg.pose_stale_s
        )

    def late_s(self, tick_start_s: float) -> float:
        return time.monotonic() - self._deadline


class LockstepClock(Clock):
    """Ticks on each new simulated sample; samples are fresh by their timestamps."""

    def wait_tick(self, robot: Robot, stopping: Callable[[], bool]) -> bool:
        self.wait_samples(robot, time.monotonic() + self.cfg.lockstep_timeout_s, stopping)
        return not stopping()

    def _fault(
        self, now_s: float, tel: Stamped[Telemetry] | None, pose: Stamped[Pose] | None
    ) -> str | None:
        return safety.input_fault(
            now_s, tel, pose, math.inf, math.inf,
            self._prev_tel_us, self._prev_pose_us, self._sent_at_s,
        )  # fmt: skip

    def late_s(self, tick_start_s: float) -> float:
        return time.monotonic() - tick_start_s

    def keep_time(self, robot: Robot, nominal: np.ndarray) -> None:
        # Advances the simulated clock; the drive stays off until START_MOTORS.
        self.sending()
        robot.set_leg_velocity(float(nominal[0]), float(nominal[1]))


def make_clock(cfg: LoopConfig, lockstep: bool) -> Clock:
    """The lockstep clock for ``roach sim --clock lockstep``, else the realtime one."""
    return LockstepClock(cfg) if lockstep else RealtimeClock(cfg)
