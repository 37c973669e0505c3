"""The simulated robot: gait, steering, determinism, sensors and condition switching."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from firmware_bridge.records import ENCODER_COUNTS_PER_REV, GYRO_RAD_S_PER_LSB, Telemetry
from firmware_bridge.sim.robot import SimRobot

SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def robot() -> SimRobot:
    return SimRobot()


def _run(robot: SimRobot, left: float, right: float, seconds: float, seed: int, condition=""):
    """(forward speed over the last second m/s, yaw change rad) for a leg-velocity command."""
    robot.reset(seed=seed, condition=condition)
    start = robot.true_pose()
    robot.set_leg_velocity(left, right)
    robot.step(seconds - 1.0)
    p0 = robot.true_pose()
    robot.step(1.0)
    p1 = robot.true_pose()
    heading = np.array([math.cos(start.yaw), math.sin(start.yaw)])
    speed = float(np.dot([p1.x - p0.x, p1.y - p0.y], heading))
    return speed, p1.yaw - start.yaw


def test_speed_rises_with_leg_frequency(robot: SimRobot):
    """Forward speed grows with the leg setpoint across 2..9 rev/s (mean of three seeds)."""
    speeds = [np.mean([_run(robot, f, f, 2.0, s)[0] for s in SEEDS]) for f in (2, 3, 6, 9)]
    assert speeds[0] > 0.05
    assert all(b > a * 1.25 for a, b in itertools.pairwise(speeds)), speeds


def test_left_right_difference_turns(robot: SimRobot):
    """Right legs faster turns left (yaw increases, CCW from above); left faster turns right."""
    for s in SEEDS:
        _, yaw_left_turn = _run(robot, 4.0, 6.0, 1.5, s)
        _, yaw_right_turn = _run(robot, 6.0, 4.0, 1.5, s)
        assert yaw_left_turn > 0.5
        assert yaw_right_turn < -0.5


def test_same_seed_same_states_different_seed_differs():
    """Same seed and condition give identical telemetry and poses; another seed differs."""

    def trace(seed: int) -> list:
        r = SimRobot("terrain=turf,missing_leg=LM@0.3", seed=seed)
        out = []
        for k in range(8):
            r.set_leg_velocity(3 + k % 5, 8 - k % 4)
            r.step(0.1)
            out.append((r.telemetry(), r.pose(), r.true_pose()))
        return out

    assert trace(5) == trace(5)
    assert trace(5) != trace(6)


def test_reset_reproduces_the_episode(robot: SimRobot):
    """reset(seed) after other episodes replays the same episode exactly."""
    robot.reset(seed=3, condition="payload_g=5")
    robot.set_leg_velocity(5, 5)
    robot.step(0.5)
    first = (robot.telemetry(), robot.true_pose())
    robot.reset(seed=9, condition="terrain=ice")
    robot.set_duty(1000, -1000)
    robot.step(0.3)
    robot.reset(seed=3, condition="payload_g=5")
    robot.set_leg_velocity(5, 5)
    robot.step(0.5)
    assert (robot.telemetry(), robot.true_pose()) == first


def test_telemetry_in_firmware_units(robot: SimRobot):
    """Encoders count 2**16 per leg turn, the PID tracks, and the sensors read plausible values."""
    robot.reset(seed=0)
    robot.zero_encoders()
    robot.set_leg_velocity(5.0, 5.0)
    robot.step(1.0)
    a = robot.telemetry()
    robot.step(1.0)
    b = robot.telemetry()
    assert isinstance(b, Telemetry) and len(b.pack()) == 46
    assert b.timestamp_us - a.timestamp_us == 1_000_000
    for pos_a, pos_b in ((a.left_pos, b.left_pos), (a.right_pos, b.right_pos)):
        assert (pos_b - pos_a) / ENCODER_COUNTS_PER_REV == pytest.approx(5.0, rel=0.05)
    assert 0 < b.left_duty <= 4000 and 0 < b.right_duty <= 4000
    assert 3500 < b.battery_mv <= 3900
    assert 1000 < b.bemf_left < 2000  # k_e * 5 rev/s
    samples = []
    for _ in range(50):
        robot.step(0.02)
        samples.append(robot.telemetry())
    # Averaged over the gait's bounces the accelerometer reads 1 g up (4096 LSB per g).
    assert np.mean([t.accel_z for t in samples]) == pytest.approx(4096, rel=0.1)
    assert abs(np.mean([t.gyro_z for t in samples]) * GYRO_RAD_S_PER_LSB) < 1.0


def test_duty_saturation_and_battery_sag(robot: SimRobot):
    """Full duty saturates at 4000, the legs spin faster than at half duty, and the battery sags."""
    robot.reset(seed=0)
    robot.set_duty(8000, 8000)  # clamped to 4000
    robot.step(1.0)
    full = robot.telemetry()
    robot.reset(seed=0)
    robot.set_duty(2000, 2000)
    robot.step(1.0)
    half = robot.telemetry()
    assert full.left_duty == 4000
    assert full.bemf_left > 1.4 * half.bemf_left
    assert full.battery_mv < half.battery_mv - 100


def test_motors_off_stops_the_legs(robot: SimRobot):
    """Disabling the motors zeroes the duty and the legs stop."""
    robot.reset(seed=0)
    robot.set_leg_velocity(6, 6)
    robot.step(0.5)
    robot.set_motors_enabled(False)
    robot.step(0.5)
    tel = robot.telemetry()
    assert tel.left_duty == 0 and tel.right_duty == 0
    assert abs(tel.bemf_left) < 100 and abs(tel.bemf_right) < 100


def test_missing_leg_switches_on_at_its_time(robot: SimRobot):
    """missing_leg=RF@T leaves the run unchanged before T and changes it after."""
    robot.reset(seed=2, condition="")
    robot.set_leg_velocity(6, 6)
    robot.step(0.6)
    nominal_before = robot.true_pose()
    robot.step(0.8)
    nominal_after = robot.true_pose()
    robot.reset(seed=2, condition="missing_leg=RF@0.6")
    robot.set_leg_velocity(6, 6)
    robot.step(0.6)
    assert robot.true_pose() == nominal_before
    robot.step(0.8)
    assert robot.true_pose() != nominal_after


def test_missing_right_front_leg_veers_right(robot: SimRobot):
    """Without the right front leg a straight command veers right (yaw falls) on every seed."""
    veer = [_run(robot, 6.0, 6.0, 2.0, s, "missing_leg=RF")[1] for s in range(4)]
    straight = [_run(robot, 6.0, 6.0, 2.0, s)[1] for s in range(4)]
    assert np.mean(veer) < -0.5
    assert np.mean(veer) < np.mean(straight) - 3 * (np.std(veer) + np.std(straight))


def test_split_steps_give_the_same_run():
    """Stepping 1 ms at a time reaches the same state as one 0.3 s step (clock stays on target)."""
    a, b = SimRobot("missing_leg=LF@0.15", seed=4), SimRobot("missing_leg=LF@0.15", seed=4)
    for r in (a, b):
        r.set_leg_velocity(7, 5)
    a.step(0.3)
    for _ in range(300):
        b.step(0.001)
    assert a.time_s == pytest.approx(0.3) and b.time_s == pytest.approx(0.3)
    assert a.true_pose() == b.true_pose()
    b.step(0.0004)  # less than half a physics step: the clock does not move
    assert b.time_s == pytest.approx(0.3)
