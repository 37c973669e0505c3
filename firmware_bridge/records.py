"""Telemetry and pose records as the motor board and the tracker report them, with units.

The telemetry record is the 46-byte ``=LL4l11h`` record of the published firmware
(see docs/protocol.md for the byte layout). Raw integer fields keep the firmware's
units; the ``*_SCALE`` constants turn them into SI units. Both the simulator and the
real link produce these records, and ``firmware_bridge.state_builder`` turns them into the
24-number model state, so the training data and the robot see the same numbers.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

ENCODER_COUNTS_PER_REV = 1 << 16
"""Magnetic encoder counts per leg revolution."""

GYRO_RAD_S_PER_LSB = math.radians(1.0 / 16.4)
"""Gyro scale: +-2000 deg/s full scale on 16 bits (16.4 LSB per deg/s)."""

ACCEL_M_S2_PER_LSB = 9.80665 / 4096.0
"""Accelerometer scale: +-8 g full scale on 16 bits (4096 LSB per g)."""

MILLIVOLT = 1e-3
"""Back-EMF and battery voltage are reported in millivolts."""

DUTY_FULL_SCALE = 4000
"""PWM duty full scale of the motor board (duty 4000 = 100 %)."""

TELEMETRY_STRUCT = struct.Struct("<LL4l11h")
assert TELEMETRY_STRUCT.size == 46


@dataclass(frozen=True, slots=True)
class Telemetry:
    """One telemetry sample, raw firmware units (see the ``*_SCALE`` constants)."""

    sample_index: int  # u32, counts samples since telemetry start
    timestamp_us: int  # u32, board clock, wraps after ~71 minutes
    left_pos: int  # i32 encoder counts, 2**16 per leg revolution
    right_pos: int
    left_cmd: int  # i32 commanded (reference) position, counts
    right_cmd: int
    left_duty: int  # i16 PWM duty, -4000..4000
    right_duty: int
    gyro_x: int  # i16 gyro, GYRO_RAD_S_PER_LSB
    gyro_y: int
    gyro_z: int
    accel_x: int  # i16 accel, ACCEL_M_S2_PER_LSB
    accel_y: int
    accel_z: int
    bemf_left: int  # i16 millivolts
    bemf_right: int
    battery_mv: int  # i16 millivolts

    def pack(self) -> bytes:
        return TELEMETRY_STRUCT.pack(
            self.sample_index & 0xFFFFFFFF,
            self.timestamp_us & 0xFFFFFFFF,
            self.left_pos,
            self.right_pos,
            self.left_cmd,
            self.right_cmd,
            self.left_duty,
            self.right_duty,
            self.gyro_x,
            self.gyro_y,
            self.gyro_z,
            self.accel_x,
            self.accel_y,
            self.accel_z,
            self.bemf_left,
            self.bemf_right,
            self.battery_mv,
        )

    @classmethod
    def unpack(cls, data: bytes) -> Telemetry:
        return cls(*TELEMETRY_STRUCT.unpack(data))


@dataclass(frozen=True, slots=True)
class Pose:
    """Motion-capture pose of the body frame in the world frame.

    Position in metres, Euler angles in radians (roll about x, pitch about y, yaw
    about z, applied z-y-x), timestamp in microseconds of the tracker's clock.
    """

    x: float
    y: float
    z: float
    roll: float
    pitch: float
    yaw: float
    timestamp_us: int


def clamp_i16(value: float) -> int:
    """Round and saturate to the i16 range, as the firmware's sensor fields do."""
    return max(-32768, min(32767, round(value)))


def clamp_i32(value: float) -> int:
    return max(-(1 << 31), min((1 << 31) - 1, round(value)))
