"""``roach calibrate``: measures a new robot over the link and fills its robot file
(firmware_bridge/calibration.py). Legs free, or on the floor for the yaw step.

The steps, in order (each a few seconds of the board's 100 Hz telemetry, realtime):
1. at rest, motors off: gyro bias (mean rate), accelerometer gravity (|mean accel|),
   reported battery;
2. PID at ``drive_rev_s`` both sides: each encoder's direction and counts per reference
   revolution (the board's own reference position runs forward at the setpoint), and
   back-EMF per leg rev/s;
3. open loop, the same duty both sides: leg rates compared, the left/right gain;
4. PID step ``step_from`` -> ``step_to`` rev/s: rise time (10 % -> 90 %) and overshoot;
5. with a pose: drive straight, the tracker's heading against the direction of travel
   (the pose is read raw for this: no alignment, no offset).
Battery scale: the voltage a person measured (``battery_v``) over the reported one.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field

import numpy as np

from firmware_bridge.calibration import RobotFile, SensorCalibration
from firmware_bridge.records import (
    ACCEL_M_S2_PER_LSB,
    ENCODER_COUNTS_PER_REV,
    GYRO_RAD_S_PER_LSB,
    MILLIVOLT,
    Pose,
    Telemetry,
)
from firmware_bridge.serial_robot import SerialRobot
from robot_contract.errors import LinkError

GRAVITY_M_S2 = 9.80665
GRAVITY_TOLERANCE = 0.05
COMMAND_EVERY_S = 0.05


@dataclass(frozen=True)
class CalibrateSettings:
    settle_s: float = 0.5
    """Discarded at the start: the body settling on its legs is not the gyro's bias."""
    rest_s: float = 1.0
    drive_rev_s: float = 4.0
    drive_s: float = 1.5
    duty: int = 1600
    step_from_rev_s: float = 2.0
    step_to_rev_s: float = 6.0
    step_s: float = 0.8
    yaw_drive_s: float = 2.5
    battery_v: float | None = None
    """The battery voltage a person measured, V (None: scale 1)."""


@dataclass
class Sample:
    tel: Telemetry
    pose: Pose | None


@dataclass
class Calibration:
    """What the steps measured, and the lines of the report."""

    robot: RobotFile = field(default_factory=RobotFile)
    lines: list[str] = field(default_factory=list)
    ok: bool = True


class Calibrator:
    def __init__(self, robot: SerialRobot, settings: CalibrateSettings, with_pose: bool) -> None:
        self.robot, self.s, self.with_pose = robot, settings, with_pose

    def run(self) -> Calibration:
        r = self.robot
        r.hello(timeout_s=1.0)
        r.set_command_timeout(250)
        r.start_telemetry(100)
        try:
            return self._steps()
        finally:
            r.stop()
            r.stop_telemetry_nowait()

    def _steps(self) -> Calibration:
        out = Calibration()
        self._record(self.s.settle_s, None)
        rest = self._record(self.s.rest_s, None)
        if len(rest) < 10:
            raise LinkError(f"only {len(rest)} telemetry samples in {self.s.rest_s:g} s at rest")
        gyro = np.mean([[t.tel.gyro_x, t.tel.gyro_y, t.tel.gyro_z] for t in rest], axis=0)
        bias = tuple(float(v) for v in gyro * GYRO_RAD_S_PER_LSB)
        acc = np.mean([[t.tel.accel_x, t.tel.accel_y, t.tel.accel_z] for t in rest], axis=0)
        g = float(np.linalg.norm(acc) * ACCEL_M_S2_PER_LSB)
        g_ok = abs(g - GRAVITY_M_S2) <= GRAVITY_TOLERANCE * GRAVITY_M_S2
        battery = float(np.mean([t.tel.battery_mv for t in rest]) * MILLIVOLT)
        out.lines += [
            "gyro bias at rest: " + ", ".join(f"{b:+.4f}" for b in bias) + " rad/s (x, y, z)",
            f"accelerometer at rest: {g:.3f} m/s^2 (gravity {GRAVITY_M_S2} +-5 %: "
            f"{'PASS' if g_ok else 'FAIL'})",
        ]
        out.ok &= g_ok

        # 2. encoders: PID drive; the board's reference position is the yardstick.
        drive = self._record(self.s.drive_s, ("pid", self.s.drive_rev_s, self.s.drive_rev_s))
        a, b = _settled(drive)
        signs, per_rev, bemf = [], [], []
        for side in ("left", "right"):
            moved = getattr(b.tel, f"{side}_pos") - getattr(a.tel, f"{side}_pos")
            ref = getattr(b.tel, f"{side}_cmd") - getattr(a.tel, f"{side}_cmd")
            sign = 1 if moved * ref >= 0 else -1
            cpr = abs(moved) / abs(ref) * ENCODER_COUNTS_PER_REV if ref else 0.0
            signs.append(sign)
            per_rev.append(cpr)
            rate = abs(ref) / ENCODER_COUNTS_PER_REV / _dt(a.tel, b.tel)
            tail = drive[len(drive) // 3 :]
            bemf.append(float(np.mean([getattr(t.tel, f"bemf_{side}") for t in tail]))
                        * MILLIVOLT / rate if rate else 0.0)  # fmt: skip
            out.lines.append(
                f"{side} encoder: {'forward' if sign > 0 else 'REVERSED'}, "
                f"{cpr:.0f} counts per leg revolution, back-EMF {bemf[-1]:.4f} V per rev/s"
            )
            out.ok &= cpr > 0

        # 3. gain imbalance: the same duty both sides, leg rates compared.
        duty = self._record(self.s.drive_s, ("duty", self.s.duty, self.s.duty))
        a, b = _settled(duty)
        rates = [
            signs[i] * (getattr(b.tel, f"{s}_pos") - getattr(a.tel, f"{s}_pos"))
            / per_rev[i] / _dt(a.tel, b.tel)
            for i, s in enumerate(("left", "right"))
        ]  # fmt: skip
        mean = sum(rates) / 2
        gains = (rates[0] / mean, rates[1] / mean) if mean > 0 else (1.0, 1.0)
        out.lines.append(
            f"open loop at duty {self.s.duty}: left {rates[0]:.2f}, right {rates[1]:.2f} rev/s; "
            f"gain left {gains[0]:.3f}, right {gains[1]:.3f} (right/left {rates[1] / rates[0]:.3f})"
            if rates[0] > 0 else f"open loop at duty {self.s.duty}: the left leg did not turn"
        )  # fmt: skip

        # 4. PID step response.
        lo, hi = self.s.step_from_rev_s, self.s.step_to_rev_s
        before = self._record(self.s.step_s, ("pid", lo, lo))
        after = self._record(self.s.step_s, ("pid", hi, hi))
        rise, over = _step_response([*before[-3:], *after], signs, per_rev, lo, hi)
        out.lines.append(
            f"PID step {lo:g} -> {hi:g} rev/s: rise time (10-90 %) {rise * 1e3:.0f} ms, "
            f"overshoot {100 * over:.0f} %"
        )

        # 5. tracker yaw alignment: drive straight, heading against direction of travel.
        yaw_offset = 0.0
        if self.with_pose:
            run = self._record(self.s.yaw_drive_s, ("pid", 5.0, 5.0))
            poses = [t.pose for t in run[len(run) // 5 :] if t.pose is not None]
            if len(poses) < 5:
                raise LinkError(f"only {len(poses)} poses while driving straight")
            p0, p1 = poses[0], poses[-1]
            travel = math.atan2(p1.y - p0.y, p1.x - p0.x)
            heading = math.atan2(sum(math.sin(p.yaw) for p in poses),
                                 sum(math.cos(p.yaw) for p in poses))  # fmt: skip
            yaw_offset = math.atan2(math.sin(heading - travel), math.cos(heading - travel))
            dist = math.hypot(p1.x - p0.x, p1.y - p0.y)
            out.lines.append(
                f"tracker yaw: heading {math.degrees(heading):.1f} deg, travel "
                f"{math.degrees(travel):.1f} deg over {dist:.2f} m: offset "
                f"{math.degrees(yaw_offset):+.1f} deg"
            )
        scale = self.s.battery_v / battery if self.s.battery_v else 1.0
        out.lines.append(
            f"battery: reported {battery:.3f} V"
            + (f", measured {self.s.battery_v:g} V: scale {scale:.4f}" if self.s.battery_v
               else " (give --battery-v V, measured, for its scale)")
        )  # fmt: skip
        out.robot = RobotFile(
            sensors=SensorCalibration(
                encoder_sign=(signs[0], signs[1]),
                counts_per_rev=(per_rev[0], per_rev[1]),
                gyro_bias_rad_s=(bias[0], bias[1], bias[2]),
                battery_scale=scale,
            ),
            accel_gravity_m_s2=g,
            bemf_v_per_rev_s=(bemf[0], bemf[1]),
            motor_gain=gains,
            pid_rise_time_s=rise,
            pid_overshoot=over,
            yaw_offset_rad=yaw_offset,
        )
        return out

    def _record(self, seconds: float, command: tuple[str, float, float] | None) -> list[Sample]:
        """Every new telemetry sample (with the newest pose) for ``seconds``, while sending
        ``command`` (``pid`` rev/s or ``duty``) every 50 ms; motors stopped after."""
        r = self.robot
        if command is not None:
            kind, left, right = command
            if kind == "duty":
                r.set_duty(int(left), int(right))
            else:
                r.set_leg_velocity(left, right)
            r.start_motors()
        out: list[Sample] = []
        last = -1
        end = time.monotonic() + seconds
        next_cmd = 0.0
        while (now := time.monotonic()) < end:
            if command is not None and now >= next_cmd:
                next_cmd = now + COMMAND_EVERY_S
                if command[0] == "duty":
                    r.set_duty(int(command[1]), int(command[2]))
                else:
                    r.set_leg_velocity(command[1], command[2])
            tel = r.latest_telemetry()
            if tel is not None and tel.value.sample_index != last:
                last = tel.value.sample_index
                pose = r.latest_pose()
                out.append(Sample(tel.value, None if pose is None else pose.value))
            time.sleep(0.002)
        if command is not None and command[0] == "duty":
            r.stop()
        return out


def _dt(a: Telemetry, b: Telemetry) -> float:
    return max(((b.timestamp_us - a.timestamp_us) % (1 << 32)) * 1e-6, 1e-6)


def _settled(samples: list[Sample]) -> tuple[Sample, Sample]:
    """The first sample after a third of the run (spin-up) and the last."""
    if len(samples) < 6:
        raise LinkError(f"only {len(samples)} telemetry samples while driving")
    return samples[len(samples) // 3], samples[-1]


def _step_response(
    samples: list[Sample], signs: list[int], per_rev: list[float], lo: float, hi: float
) -> tuple[float, float]:
    """Rise time (s, 10 -> 90 % of the step) and overshoot (fraction of the step) of the
    mean leg rate, from consecutive samples' encoder counts."""
    t, rate = [], []
    for a, b in itertools.pairwise(samples):
        dt = _dt(a.tel, b.tel)
        dl = signs[0] * (b.tel.left_pos - a.tel.left_pos) / per_rev[0]
        dr = signs[1] * (b.tel.right_pos - a.tel.right_pos) / per_rev[1]
        t.append(b.tel.timestamp_us * 1e-6)
        rate.append(0.5 * (dl + dr) / dt)
    r = np.convolve(np.asarray(rate), np.ones(3) / 3, mode="same")  # one-sample jitter off
    step = hi - lo
    t10 = next((t[i] for i in range(len(r)) if r[i] >= lo + 0.1 * step), math.nan)
    t90 = next((t[i] for i in range(len(r)) if r[i] >= lo + 0.9 * step), math.nan)
    over = max(0.0, (float(np.max(r[1:-1])) - hi) / step) if len(r) > 2 else 0.0
    return (t90 - t10 if math.isfinite(t90 - t10) else 0.0), over
