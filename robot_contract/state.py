"""The 24-number robot state of the published work, built from telemetry and pose.

Layout (index: name, unit):
  0-2   x, y, z                         m (motion capture)
  3-5   vx, vy, vz                      m/s, finite difference over the control period
  6-11  cos/sin of roll, pitch, yaw
  12-14 gyro_x, gyro_y, gyro_z          rad/s (body frame)
  15-18 cos/sin of left and right leg angle
  19-20 left_leg_rate, right_leg_rate   rev/s, encoder difference over the control period
  21-22 bemf_left, bemf_right           V
  23    battery                         V
The dynamics model sees ``state[2:]`` (everything but x and y) plus the action, and
predicts the change of all 24 numbers over one control period.
"""

from __future__ import annotations

STATE_NAMES: tuple[str, ...] = (
    "x", "y", "z",
    "vx", "vy", "vz",
    "cos_roll", "sin_roll", "cos_pitch", "sin_pitch", "cos_yaw", "sin_yaw",
    "gyro_x", "gyro_y", "gyro_z",
    "cos_left_leg", "sin_left_leg", "cos_right_leg", "sin_right_leg",
    "left_leg_rate", "right_leg_rate",
    "bemf_left", "bemf_right",
    "battery",
)  # fmt: skip
STATE_DIM = len(STATE_NAMES)
assert STATE_DIM == 24
ACTION_NAMES: tuple[str, ...] = ("left_leg_rate_cmd", "right_leg_rate_cmd")
ACTION_DIM = 2
MODEL_INPUT_STATE_SLICE = slice(2, STATE_DIM)
"""The model's state input drops x and y (22 numbers)."""

ACTION_LOW_REV_S = 2.0
ACTION_HIGH_REV_S = 9.0
"""Leg-velocity setpoint bounds, leg revolutions per second (docs/protocol.md)."""

CONTROL_PERIOD_S = 0.1
"""10 Hz control, as on the published robot."""
