"""The simulator's cost of one 10 Hz control step and its real-time factor, on one core
(``roach sim-check --bench``, ``roach bench sim``).

Random leg setpoints at the control rate, an episode's length per repeat, each step
followed by the telemetry and pose reads a control tick makes; CPU time of the calling
thread, so other processes on the machine count less than in wall time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from robot_contract.state import ACTION_HIGH_REV_S, ACTION_LOW_REV_S, CONTROL_PERIOD_S

if TYPE_CHECKING:
    from firmware_bridge.sim.robot import SimRobot


@dataclass(frozen=True)
class SimSpeed:
    """CPU time per control step of each repeat."""

    condition: str
    """The robot's condition ('' = nominal carpet)."""
    sim_seconds: float
    """Simulated time per repeat."""
    step_cpu_s: tuple[float, ...]
    """Mean CPU seconds per control step, one per repeat."""

    @property
    def best_s(self) -> float:
        return min(self.step_cpu_s)

    @property
    def median_s(self) -> float:
        return float(np.median(self.step_cpu_s))


def measure_speed(robot: SimRobot, sim_seconds: float = 11.0, repeats: int = 5) -> SimSpeed:
    """``repeats`` episodes of ``sim_seconds`` of random 10 Hz setpoints (robot reset to
    seed 0, 1, ... before each; the setpoints come from a generator seeded 0)."""
    rng = np.random.default_rng(0)
    steps = round(sim_seconds / CONTROL_PERIOD_S)
    costs = []
    for rep in range(repeats):
        robot.reset(seed=rep)
        actions = rng.uniform(ACTION_LOW_REV_S, ACTION_HIGH_REV_S, (steps, 2))
        cpu0 = time.thread_time()
        for left, right in actions:
            robot.set_leg_velocity(left, right)
            robot.step(CONTROL_PERIOD_S)
            robot.telemetry()
            robot.pose()
        costs.append((time.thread_time() - cpu0) / steps)
    return SimSpeed(str(robot.condition), sim_seconds, tuple(costs))


def report_lines(speed: SimSpeed) -> list[str]:
    """The three lines the commands print."""
    best, median = speed.best_s, speed.median_s
    return [
        f"condition: {speed.condition or '(nominal carpet)'}; {len(speed.step_cpu_s)} x "
        f"{speed.sim_seconds:g} s of random 10 Hz leg setpoints, CPU time of this thread",
        f"one 10 Hz control step: best {best * 1e3:.3f} ms, median {median * 1e3:.3f} ms",
        f"real-time factor: best {CONTROL_PERIOD_S / best:.0f}, "
        f"median {CONTROL_PERIOD_S / median:.0f}",
    ]
