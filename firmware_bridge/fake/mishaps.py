"""Things that happen to a robot on the floor, for the fake: ``roach sim --tip-at S``
rolls the body onto its back at simulated second S, as a robot that ran into an
obstacle and flipped would be (the tip-over trip of ``roach collect --port`` and the
loop's plausibility rules are tested against it)."""

from __future__ import annotations

from collections.abc import Sequence

import mujoco

from firmware_bridge.records import Pose, Telemetry
from firmware_bridge.sim.robot import SimRobot


class TippingSimulation:
    """The simulated robot, rolled half a turn about its heading at ``tip_at_s``."""

    def __init__(self, sim: SimRobot, tip_at_s: float) -> None:
        self.sim, self.tip_at_s = sim, tip_at_s
        self.tipped_at_s: float | None = None

    def step(self, duration_s: float) -> None:
        self.sim.step(duration_s)
        if self.tipped_at_s is None and self.sim.time_s >= self.tip_at_s - 1e-9:
            self.tipped_at_s = self.sim.time_s
            d = self.sim.data
            w, _x, _y, z = d.qpos[3:7]
            # (w, 0, 0, z) * (0, 1, 0, 0): the same heading, rolled half a turn.
            d.qpos[3:7] = (0.0, w, z, 0.0)
            d.qpos[2] += 0.02
            mujoco.mj_forward(self.sim.model, d)

    def set_leg_velocity(self, left_rev_s: float, right_rev_s: float) -> None:
        self.sim.set_leg_velocity(left_rev_s, right_rev_s)

    def set_duty(self, left: int, right: int) -> None:
        self.sim.set_duty(left, right)

    def set_motors_enabled(self, on: bool) -> None:
        self.sim.set_motors_enabled(on)

    def set_pid_gains(
        self, kp: float, ki: float, kd: float, *more: float, right: Sequence[float] | None = None
    ) -> None:
        self.sim.set_pid_gains(kp, ki, kd, *more, right=right)

    def zero_encoders(self) -> None:
        self.sim.zero_encoders()

    def telemetry(self) -> Telemetry:
        return self.sim.telemetry()

    def pose(self) -> Pose:
        return self.sim.pose()
