"""Things that happen to a robot, for the fake: ``roach sim --tip-at S`` rolls the body
onto its back at simulated second S, as a robot that ran into an obstacle and flipped
would be (the tip-over trip of ``roach collect --port`` is tested against it);
``roach sim --miscal ...`` plants the miscalibrations ``roach calibrate`` must find."""

from __future__ import annotations

import dataclasses
import math

import mujoco

from firmware_bridge.fake.firmware import Simulation, SimulationWrapper
from firmware_bridge.records import GYRO_RAD_S_PER_LSB, Telemetry, clamp_i16, clamp_i32
from firmware_bridge.sim.robot import SimRobot
from robot_contract.errors import ConfigError


class TippingSimulation(SimulationWrapper):
    """The simulated robot, rolled half a turn about its heading at ``tip_at_s``."""

    def __init__(self, sim: SimRobot, tip_at_s: float) -> None:
        super().__init__(sim)
        self.robot, self.tip_at_s = sim, tip_at_s
        self.tipped_at_s: float | None = None

    def step(self, duration_s: float) -> None:
        self.robot.step(duration_s)
        if self.tipped_at_s is None and self.robot.time_s >= self.tip_at_s - 1e-9:
            self.tipped_at_s = self.robot.time_s
            d = self.robot.data
            w, _x, _y, z = d.qpos[3:7]
            # (w, 0, 0, z) * (0, 1, 0, 0): the same heading, rolled half a turn.
            d.qpos[3:7] = (0.0, w, z, 0.0)
            d.qpos[2] += 0.02
            mujoco.mj_forward(self.robot.model, d)


MISCAL_KEYS = ("encoder_left", "encoder_right", "gyro_bias_x", "gyro_bias_y", "gyro_bias_z")


def parse_miscalibration(text: str) -> dict[str, float]:
    """``roach sim --miscal`` (e.g. ``encoder_left=-1,gyro_bias_z=0.05``): an encoder
    counting backwards (-1) and gyro biases in rad/s (|b| <= 0.5). ConfigError, one line."""
    out: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = (s.strip() for s in item.partition("="))
        if key not in MISCAL_KEYS:
            raise ConfigError(f"--miscal: unknown key {key!r}; valid: {', '.join(MISCAL_KEYS)}")
        try:
            v = float(value)
        except ValueError:
            v = math.nan
        ok = v in (-1.0, 1.0) if key.startswith("encoder") else abs(v) <= 0.5
        if not ok:
            valid = "1 or -1" if key.startswith("encoder") else "-0.5..0.5 rad/s"
            raise ConfigError(f"--miscal: {item!r}; valid values of {key}: {valid}")
        out[key] = v
    return out


class MiscalibratedSimulation(SimulationWrapper):
    """The simulated robot seen through a miscalibrated board: encoders mounted the other
    way round (the count runs backwards; the board's own PID still runs right) and gyro
    biases. What ``roach calibrate`` must find (tests/tools/test_calibrate.py)."""

    def __init__(self, sim: Simulation, miscal: dict[str, float]) -> None:
        super().__init__(sim)
        self.sign = (int(miscal.get("encoder_left", 1)), int(miscal.get("encoder_right", 1)))
        self.bias_lsb = tuple(miscal.get(f"gyro_bias_{a}", 0.0) / GYRO_RAD_S_PER_LSB
                              for a in "xyz")  # fmt: skip

    def telemetry(self) -> Telemetry:
        t = self.sim.telemetry()
        bx, by, bz = self.bias_lsb
        return dataclasses.replace(
            t,
            left_pos=clamp_i32(self.sign[0] * t.left_pos),
            right_pos=clamp_i32(self.sign[1] * t.right_pos),
            gyro_x=clamp_i16(t.gyro_x + bx),
            gyro_y=clamp_i16(t.gyro_y + by),
            gyro_z=clamp_i16(t.gyro_z + bz),
        )
