"""Builds the 24-number state (robot_contract.state) from telemetry and pose records.

The onboard controller and the simulator's gymnasium environment both build the state
here, so the training data and the robot see the same numbers.
"""

from __future__ import annotations

import math

import numpy as np

from firmware_bridge.calibration import SensorCalibration
from firmware_bridge.records import (
    ENCODER_COUNTS_PER_REV,
    GYRO_RAD_S_PER_LSB,
    MILLIVOLT,
    Pose,
    Telemetry,
)
from robot_contract.state import CONTROL_PERIOD_S, STATE_DIM


def leg_angle_rad(counts: float, per_rev: float = ENCODER_COUNTS_PER_REV) -> float:
    return 2.0 * math.pi * (counts % per_rev) / per_rev


class StateBuilder:
    """Builds the 24-number state from the latest telemetry and pose, once per control tick.

    Velocities and leg rates are finite differences against the previous call, over the
    time between the two samples' own timestamps (not the caller's clock), so a late
    tick does not inflate them. The first call has no previous sample and reports zero
    rates. ``calibration`` (a robot file's, firmware_bridge/calibration.py) corrects the
    encoders' sign and counts per revolution, the gyro bias and the battery scale; the
    default is the nominal robot, exactly as before.
    """

    def __init__(self, calibration: SensorCalibration | None = None) -> None:
        self._prev_pose: Pose | None = None
        self._prev_tel: Telemetry | None = None
        c = calibration or SensorCalibration()
        self._nominal = c == SensorCalibration()
        self._sign = c.encoder_sign
        self._per_rev = c.counts_per_rev
        self._bias = c.gyro_bias_rad_s
        self._battery_scale = c.battery_scale

    def reset(self) -> None:
        self._prev_pose = None
        self._prev_tel = None

    def build(self, tel: Telemetry, pose: Pose) -> np.ndarray:
        """Returns the state, shape (24,), float64."""
        s = np.empty(STATE_DIM, dtype=np.float64)
        s[0], s[1], s[2] = pose.x, pose.y, pose.z
        if self._prev_pose is not None:
            dt = _wrap_us(pose.timestamp_us - self._prev_pose.timestamp_us) * 1e-6
            dt = dt if dt > 0 else CONTROL_PERIOD_S
            s[3] = (pose.x - self._prev_pose.x) / dt
            s[4] = (pose.y - self._prev_pose.y) / dt
            s[5] = (pose.z - self._prev_pose.z) / dt
        else:
            s[3:6] = 0.0
        s[6], s[7] = math.cos(pose.roll), math.sin(pose.roll)
        s[8], s[9] = math.cos(pose.pitch), math.sin(pose.pitch)
        s[10], s[11] = math.cos(pose.yaw), math.sin(pose.yaw)
        if self._nominal:
            s[12] = tel.gyro_x * GYRO_RAD_S_PER_LSB
            s[13] = tel.gyro_y * GYRO_RAD_S_PER_LSB
            s[14] = tel.gyro_z * GYRO_RAD_S_PER_LSB
            la, ra = leg_angle_rad(tel.left_pos), leg_angle_rad(tel.right_pos)
        else:
            bx, by, bz = self._bias
            s[12] = tel.gyro_x * GYRO_RAD_S_PER_LSB - bx
            s[13] = tel.gyro_y * GYRO_RAD_S_PER_LSB - by
            s[14] = tel.gyro_z * GYRO_RAD_S_PER_LSB - bz
            la = leg_angle_rad(self._sign[0] * tel.left_pos, self._per_rev[0])
            ra = leg_angle_rad(self._sign[1] * tel.right_pos, self._per_rev[1])
        s[15], s[16], s[17], s[18] = math.cos(la), math.sin(la), math.cos(ra), math.sin(ra)
        if self._prev_tel is not None:
            dt = _wrap_us(tel.timestamp_us - self._prev_tel.timestamp_us) * 1e-6
            dt = dt if dt > 0 else CONTROL_PERIOD_S
            dl, dr = (
                tel.left_pos - self._prev_tel.left_pos,
                tel.right_pos - self._prev_tel.right_pos,
            )
            if self._nominal:
                s[19] = dl / ENCODER_COUNTS_PER_REV / dt
                s[20] = dr / ENCODER_COUNTS_PER_REV / dt
            else:
                s[19] = self._sign[0] * dl / self._per_rev[0] / dt
                s[20] = self._sign[1] * dr / self._per_rev[1] / dt
        else:
            s[19:21] = 0.0
        s[21] = tel.bemf_left * MILLIVOLT
        s[22] = tel.bemf_right * MILLIVOLT
        s[23] = tel.battery_mv * MILLIVOLT * self._battery_scale
        self._prev_pose, self._prev_tel = pose, tel
        return s


def _wrap_us(delta: int) -> int:
    """Difference of two u32 microsecond clocks, robust to one wrap-around."""
    return (delta + (1 << 31)) % (1 << 32) - (1 << 31)
