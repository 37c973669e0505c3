"""Each condition family changes what a fixed open-loop command does, beyond seed noise.

The fixed command is open-loop PWM duty 2400/2400 for one second (no PID, so motor gain
and battery changes are not hidden by the feedback). In the forward or the sideways
component of the 1-second displacement, the condition's mean over seeds must differ from
the nominal mean by more than three times the sum of the two seed-to-seed standard
deviations, plus 1 cm.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from firmware_bridge.sim.robot import SimRobot

SEEDS = range(5)
DUTY = 2400


def _displacements(robot: SimRobot, condition: str, reported: bool = False) -> np.ndarray:
    """1-second displacement per seed, shape (len(SEEDS), 2), m (true pose unless reported)."""
    out = []
    for seed in SEEDS:
        robot.reset(seed=seed, condition=condition)
        pose = robot.pose if reported else robot.true_pose
        p0 = pose()
        robot.set_duty(DUTY, DUTY)
        robot.step(1.0)
        p1 = pose()
        out.append((p1.x - p0.x, p1.y - p0.y))
    return np.array(out)


def _separation(cond: np.ndarray, nominal: np.ndarray) -> np.ndarray:
    """Per component (forward, sideways): |mean shift| - (3 x (std + std) + 1 cm), m."""
    shift = np.abs(cond.mean(axis=0) - nominal.mean(axis=0))
    return shift - (3.0 * (cond.std(axis=0) + nominal.std(axis=0)) + 0.01)


@pytest.fixture(scope="module")
def robot() -> SimRobot:
    return SimRobot()


@pytest.fixture(scope="module")
def nominal(robot: SimRobot) -> np.ndarray:
    return _displacements(robot, "")


@pytest.mark.parametrize(
    "condition",
    [
        "terrain=ice",  # terrain
        "slope_deg=15",  # slope, uphill
        "slope_deg=-15",  # slope, downhill
        "payload_g=30,payload_x_mm=-30",  # payload
        "tow_g=20",  # tow
        "missing_leg=RF+RM",  # missing legs (one leg alone: see test_sim_robot.py's veer test)
        "gain_left=0.6",  # motor gain
        "battery_v=3.2",  # battery
    ],
)
def test_condition_family_changes_displacement(robot: SimRobot, nominal: np.ndarray, condition):
    """The condition shifts the mean 1-s displacement by > 3 x (sum of seed stds) + 1 cm."""
    cond = _displacements(robot, condition)
    assert _separation(cond, nominal).max() > 0.0, (condition, cond.mean(axis=0), cond.std(axis=0))


def test_pose_offsets_change_the_reported_pose_only(robot: SimRobot, nominal: np.ndarray):
    """yaw_offset_deg/pos_offset_mm move the reported pose; the true motion is unchanged."""
    condition = "yaw_offset_deg=30,pos_offset_mm=40"
    np.testing.assert_array_equal(_displacements(robot, condition), nominal)
    robot.reset(seed=0, condition=condition)
    robot.set_duty(DUTY, DUTY)
    robot.step(1.0)
    true, seen = robot.true_pose(), robot.pose()
    yaw_error = (seen.yaw - true.yaw + math.pi) % (2 * math.pi) - math.pi
    assert yaw_error == pytest.approx(math.radians(30), abs=0.02)
    offset = math.hypot(seen.x - true.x, seen.y - true.y)
    assert offset == pytest.approx(0.040, abs=0.004)
    # Motion capture's displacement is off once the robot turns; over the 1-s run it shows.
    reported = _displacements(robot, condition, reported=True)
    plain = _displacements(robot, "", reported=True)
    assert float(np.abs(reported - plain).max()) > 0.005
