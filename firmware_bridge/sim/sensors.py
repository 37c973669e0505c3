"""What the robot's sensors and the motion-capture system report, from the true state.

Pure functions: arrays and scalars in, records out. Noise comes from the caller's
generator, so a seeded robot reports the same readings every run.
"""

from __future__ import annotations

import math

import numpy as np

from firmware_bridge.records import (
    ACCEL_M_S2_PER_LSB,
    GYRO_RAD_S_PER_LSB,
    MILLIVOLT,
    Pose,
    Telemetry,
    clamp_i16,
    clamp_i32,
)

# Noise, one standard deviation, raw units.
GYRO_NOISE_LSB = 6.0
ACCEL_NOISE_LSB = 40.0
BEMF_NOISE_MV = 15.0
BATTERY_NOISE_MV = 8.0
POSE_POS_NOISE_M = 0.0005
POSE_ANGLE_NOISE_RAD = 0.003


def telemetry_record(
    t_s: float,
    pos_counts: tuple[int, int],
    cmd_counts: tuple[int, int],
    duty: list[float],
    gyro_rad_s: np.ndarray,
    accel_m_s2: np.ndarray,
    bemf_v: np.ndarray,
    battery_v: float,
    rng: np.random.Generator,
) -> Telemetry:
    """The board's telemetry record: encoder and reference counts (2 each), duty (2),
    body-frame gyro rad/s (3) and specific force m/s^2 (3), back-EMF V (2) and battery V,
    turned into firmware units with noise on the analog sensors."""
    gyro = gyro_rad_s / GYRO_RAD_S_PER_LSB + rng.normal(0.0, GYRO_NOISE_LSB, 3)
    accel = accel_m_s2 / ACCEL_M_S2_PER_LSB + rng.normal(0.0, ACCEL_NOISE_LSB, 3)
    bemf = bemf_v / MILLIVOLT + rng.normal(0.0, BEMF_NOISE_MV, 2)
    battery = battery_v / MILLIVOLT + rng.normal(0.0, BATTERY_NOISE_MV)
    return Telemetry(
        sample_index=round(t_s * 1e3) & 0xFFFFFFFF,
        timestamp_us=round(t_s * 1e6) & 0xFFFFFFFF,
        left_pos=clamp_i32(pos_counts[0]),
        right_pos=clamp_i32(pos_counts[1]),
        left_cmd=clamp_i32(cmd_counts[0]),
        right_cmd=clamp_i32(cmd_counts[1]),
        left_duty=clamp_i16(duty[0]),
        right_duty=clamp_i16(duty[1]),
        gyro_x=clamp_i16(gyro[0]),
        gyro_y=clamp_i16(gyro[1]),
        gyro_z=clamp_i16(gyro[2]),
        accel_x=clamp_i16(accel[0]),
        accel_y=clamp_i16(accel[1]),
        accel_z=clamp_i16(accel[2]),
        bemf_left=clamp_i16(bemf[0]),
        bemf_right=clamp_i16(bemf[1]),
        battery_mv=clamp_i16(battery),
    )


def to_lab(pos: np.ndarray, rot: np.ndarray, slope_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Position (3,) m and rotation (3, 3) from the simulation frame (level ground, tilted
    gravity) to the gravity-aligned lab frame, where the ground rises along +x."""
    if not slope_deg:
        return pos, rot
    theta = math.radians(slope_deg)
    c, s = math.cos(theta), math.sin(theta)
    tilt = np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])  # rotation about y by -theta
    return tilt @ pos, tilt @ rot


def exact_pose(pos: np.ndarray, rot: np.ndarray, t_s: float) -> Pose:
    """The true pose of a lab-frame position (3,) m and rotation (3, 3)."""
    roll, pitch, yaw = euler_zyx(rot)
    return Pose(
        float(pos[0]), float(pos[1]), float(pos[2]), roll, pitch, yaw,
        timestamp_us=round(t_s * 1e6),
    )  # fmt: skip


def tracked_pose(
    pos: np.ndarray,
    rot: np.ndarray,
    t_s: float,
    yaw_offset_deg: float,
    pos_offset_mm: float,
    rng: np.random.Generator,
) -> Pose:
    """Motion capture of a lab-frame pose: the tracked point sits ``pos_offset_mm`` ahead of
    the body centre, the yaw reads ``yaw_offset_deg`` too high, and both carry noise."""
    pos = pos + rot[:, 0] * (pos_offset_mm * 1e-3) + rng.normal(0.0, POSE_POS_NOISE_M, 3)
    roll, pitch, yaw = np.array(euler_zyx(rot)) + rng.normal(0.0, POSE_ANGLE_NOISE_RAD, 3)
    return Pose(
        float(pos[0]), float(pos[1]), float(pos[2]), float(roll), float(pitch),
        wrap_pi(yaw + math.radians(yaw_offset_deg)), timestamp_us=round(t_s * 1e6),
    )  # fmt: skip


def euler_zyx(rot: np.ndarray) -> tuple[float, float, float]:
    """(roll, pitch, yaw) in rad of a rotation matrix (3, 3), z-y-x convention."""
    yaw = math.atan2(rot[1, 0], rot[0, 0])
    pitch = math.asin(max(-1.0, min(1.0, -rot[2, 0])))
    roll = math.atan2(rot[2, 1], rot[2, 2])
    return roll, pitch, yaw


def wrap_pi(angle: float) -> float:
    """The angle in rad wrapped to [-pi, pi)."""
    return (float(angle) + math.pi) % (2.0 * math.pi) - math.pi
