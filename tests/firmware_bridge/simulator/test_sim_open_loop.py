"""Open-loop commands on the simulated robot and the simulator's speed measurement."""

from __future__ import annotations

import math

import numpy as np
import pytest

from firmware_bridge.sim.bench import measure_speed, report_lines
from firmware_bridge.sim.open_loop import duty_trajectory, run_open_loop
from firmware_bridge.sim.robot import SimRobot


def test_equal_setpoints_walk_forward_and_the_legs_follow() -> None:
    """Equal leg setpoints move the robot mostly along its start heading at about the
    commanded leg rate."""
    res = run_open_loop(SimRobot(seed=0), 1.0, setpoints_rev_s=(6.0, 6.0))
    assert res.elapsed_s == pytest.approx(1.0)
    assert res.forward_m > 0.1 and abs(res.left_m) < res.forward_m
    assert res.mean_speed_m_s == pytest.approx(res.distance_m / res.elapsed_s)
    assert all(4.0 < r < 7.0 for r in res.leg_rev_s) and res.cpu_s > 0


def test_yaw_change_is_unwrapped_past_half_a_turn() -> None:
    """A long turn reports its full heading change, not one wrapped to +-180 deg."""
    res = run_open_loop(SimRobot(seed=0), 2.0, setpoints_rev_s=(3.0, 8.0))
    assert math.degrees(res.yaw_change_rad) > 180.0


def test_open_loop_takes_exactly_one_command() -> None:
    """Neither or both of setpoints and duty is a ValueError."""
    robot = SimRobot(seed=0)
    with pytest.raises(ValueError):
        run_open_loop(robot, 0.1)
    with pytest.raises(ValueError):
        run_open_loop(robot, 0.1, setpoints_rev_s=(5.0, 5.0), duty=(1000, 1000))


def test_duty_trajectory_samples_every_period_and_repeats() -> None:
    """(seconds / every_s + 1, 3) rows from the origin; the same seed gives the same path."""
    robot = SimRobot()
    a = duty_trajectory(robot, (2400, 2400), 0.5, condition="terrain=turf", seed=1)
    b = duty_trajectory(robot, (2400, 2400), 0.5, condition="terrain=turf", seed=1)
    assert a.shape == (11, 3) and np.array_equal(a, b)
    assert a[-1, 0] > a[0, 0]


def test_measure_speed_reports_one_cost_per_repeat() -> None:
    """One positive CPU cost per repeat; three report lines naming the condition."""
    speed = measure_speed(SimRobot("terrain=ice", seed=0), sim_seconds=0.5, repeats=2)
    assert len(speed.step_cpu_s) == 2 and speed.best_s > 0
    assert speed.best_s <= speed.median_s
    lines = report_lines(speed)
    assert len(lines) == 3 and lines[0].startswith("condition: terrain=ice; 2 x 0.5 s")
