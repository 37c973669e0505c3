"""Open-loop commands on the simulated robot and what they did.

``run_open_loop`` holds one command (leg-velocity setpoints through the board's PID, or a
raw PWM duty) and measures the motion in the frame of the start pose (``roach
sim-check``); ``duty_trajectory`` samples the body's path under a duty (``roach
sim-plot``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from firmware_bridge.records import ENCODER_COUNTS_PER_REV, Pose, Telemetry
from firmware_bridge.sim.conditions import Condition
from firmware_bridge.sim.sensors import wrap_pi
from robot_contract.state import CONTROL_PERIOD_S

if TYPE_CHECKING:
    from firmware_bridge.sim.robot import SimRobot


@dataclass(frozen=True)
class OpenLoopResult:
    """What one held command did."""

    elapsed_s: float
    """Simulated time the command was held."""
    forward_m: float
    """Displacement along the start heading."""
    left_m: float
    """Displacement to the left of the start heading."""
    distance_m: float
    """Straight-line distance from the start."""
    yaw_change_rad: float
    """Heading change, unwrapped past half a turn; positive = turned left."""
    end_pose: Pose
    """The true pose at the end."""
    start_telemetry: Telemetry
    end_telemetry: Telemetry
    cpu_s: float
    """CPU time of this thread spent stepping the simulation."""

    @property
    def mean_speed_m_s(self) -> float:
        """Distance over the elapsed time."""
        return self.distance_m / self.elapsed_s

    @property
    def leg_rev_s(self) -> tuple[float, float]:
        """Mean leg rates (left, right) in rev/s, from the encoder counts."""
        t0, t1, rev = self.start_telemetry, self.end_telemetry, ENCODER_COUNTS_PER_REV
        return (
            (t1.left_pos - t0.left_pos) / rev / self.elapsed_s,
            (t1.right_pos - t0.right_pos) / rev / self.elapsed_s,
        )


def run_open_loop(
    robot: SimRobot,
    seconds: float,
    *,
    setpoints_rev_s: tuple[float, float] | None = None,
    duty: tuple[int, int] | None = None,
) -> OpenLoopResult:
    """Holds leg-velocity ``setpoints_rev_s`` or a PWM ``duty`` (exactly one) for
    ``seconds`` of simulated time from the robot's current state."""
    if (setpoints_rev_s is None) == (duty is None):
        raise ValueError("give exactly one of setpoints_rev_s and duty")
    start = robot.true_pose()
    tel0 = robot.telemetry()
    t0 = robot.time_s
    if duty is not None:
        robot.set_duty(*duty)
    elif setpoints_rev_s is not None:
        robot.set_leg_velocity(*setpoints_rev_s)
    # Step at the control period so the yaw change can be unwrapped past half a turn.
    turned, last_yaw, cpu = 0.0, start.yaw, 0.0
    remaining = seconds
    while remaining > 1e-9:
        dt = min(CONTROL_PERIOD_S, remaining)
        cpu0 = time.thread_time()
        robot.step(dt)
        cpu += time.thread_time() - cpu0
        remaining -= dt
        yaw = robot.true_pose().yaw
        turned += wrap_pi(yaw - last_yaw)
        last_yaw = yaw
    end = robot.true_pose()
    heading = np.array([math.cos(start.yaw), math.sin(start.yaw)])
    delta = np.array([end.x - start.x, end.y - start.y])
    return OpenLoopResult(
        elapsed_s=robot.time_s - t0,
        forward_m=float(delta @ heading),
        left_m=float(heading[0] * delta[1] - heading[1] * delta[0]),
        distance_m=math.hypot(*delta),
        yaw_change_rad=turned,
        end_pose=end,
        start_telemetry=tel0,
        end_telemetry=robot.telemetry(),
        cpu_s=cpu,
    )


def duty_trajectory(
    robot: SimRobot,
    duty: tuple[int, int],
    seconds: float,
    *,
    condition: Condition | str = "",
    seed: int = 0,
    reported: bool = False,
    every_s: float = 0.05,
) -> np.ndarray:
    """Body x, y (m) and yaw (rad) every ``every_s`` from a reset under ``condition``,
    shape (round(seconds / every_s) + 1, 3); the motion capture's pose when
    ``reported``, else the truth."""
    robot.reset(seed=seed, condition=condition)
    robot.set_duty(*duty)
    pose = robot.pose if reported else robot.true_pose
    points = []
    for k in range(round(seconds / every_s) + 1):
        if k:
            robot.step(every_s)
        p = pose()
        points.append((p.x, p.y, p.yaw))
    return np.array(points)
