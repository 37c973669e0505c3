"""The simulated robot: the MuJoCo model plus the motor board's firmware behaviour.

``SimRobot`` runs the physics in chunks of ``CHUNK_S`` so that most of the time is spent
in C: the drive (drive.py: the leg-velocity PID, the motors and the battery) lives inside
the MuJoCo model, and between chunks the Python side updates the PID's integral, the
battery voltage, the rough-ground planes, the tow sled and any condition switching on
(docs/simulator.md explains the choices). It also reports the board's telemetry and the
motion capture's pose, with their noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import mujoco
import numpy as np

from firmware_bridge.records import ENCODER_COUNTS_PER_REV, Pose, Telemetry
from firmware_bridge.sim import model as M
from firmware_bridge.sim import sensors, terrain
from firmware_bridge.sim.conditions import LEG_NAMES, Condition, as_condition
from firmware_bridge.sim.drive import (  # the drive's constants, importable from here too
    BATTERY_R_OHM,
    DEFAULT_PID_GAINS,
    GEARBOX_DAMPING_NMS_RAD,
    INTEGRAL_LIMIT_DUTY,
    K_E_V_S_PER_RAD,
    MOTOR_R_OHM,
    Drive,
)
from firmware_bridge.sim.tow import Sled

__all__ = [
    "BATTERY_R_OHM",
    "CHUNK_S",
    "DEFAULT_PID_GAINS",
    "GEARBOX_DAMPING_NMS_RAD",
    "INTEGRAL_LIMIT_DUTY",
    "K_E_V_S_PER_RAD",
    "MOTOR_R_OHM",
    "SETTLE_S",
    "SimRobot",
]

CHUNK_S = 0.02
"""Physics runs in C for this long between Python-side updates (a multiple of the step)."""
SETTLE_S = 0.3
"""Motors-off settling before time zero, so every episode starts at rest on the ground."""


FLIPPED_COS = math.cos(math.radians(70.0))
_TWO_PI = 2.0 * math.pi
_COUNTS_PER_RAD = ENCODER_COUNTS_PER_REV / _TWO_PI


class SimRobot:
    """MuJoCo robot + the motor board's firmware behaviour (leg-velocity PID, duty
    saturation, back-EMF, battery sag; drive.py), on a 2.5 ms physics step.

    Units: leg rev/s for setpoints, duty -4000..4000, seconds. ``telemetry()`` and
    ``pose()`` report in firmware and tracker units with noise; ``true_pose()`` is exact.
    Everything random (leg phase, heading jitter, ground pattern, noise) comes from the seed.
    """

    def __init__(self, condition: Condition | str = "", seed: int = 0) -> None:
        self.model = M.make_model()
        self.data = mujoco.MjData(self.model)
        m = self.model
        jid = {n: mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, n) for n in LEG_NAMES}
        self._condition = as_condition(condition)
        self._drive = Drive(m, self.data, self._condition.at(0.0).battery_v)
        self._qadr, self._vadr = self._drive.qadr, self._drive.vadr  # the driven (front) legs
        self._leg_qadr = {n: int(m.jnt_qposadr[jid[n]]) for n in LEG_NAMES}
        self._torso = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "torso")
        self._payload = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "payload")
        self._grounds = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "ground")] + [
            mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, f"ground_{n}") for n in LEG_NAMES
        ]
        self._leg_bodies = [int(m.jnt_bodyid[jid[n]]) for n in LEG_NAMES]
        first = self._grounds[1]
        assert self._grounds[1:] == list(range(first, first + 6))
        self._leg_ground_pos = m.geom_pos[first : first + 6]  # views into the model
        self._leg_ground_quat = m.geom_quat[first : first + 6]
        self._leg_geoms = {
            n: [g for g in range(m.ngeom) if m.geom_bodyid[g] == m.jnt_bodyid[jid[n]]]
            for n in LEG_NAMES
        }
        self._sled = Sled()
        self._rng = np.random.default_rng(seed)
        self.reset(seed, condition)

    # ----------------------------------------------------------------- episode
    def reset(self, seed: int | None = None, condition: Condition | str | None = None) -> None:
        """Restart at rest on the ground at the origin, heading +x (with a small per-seed
        jitter), legs at per-seed random phases. ``seed=None`` continues the random stream."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        if condition is not None:
            self._condition = as_condition(condition)
        self._noise_rng = np.random.default_rng(self._rng.integers(1 << 63))
        self._pattern = terrain.make_pattern(self._rng)
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        yaw = self._rng.normal(0.0, math.radians(1.0))
        d.qpos[0:3] = (0.0, 0.0, M.LEG_RADIUS_M + M.LEG_OFFSET_M + 0.004)
        d.qpos[3:7] = (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
        # The two sides start near the alternating-tripod phasing, each episode at a
        # different point of the stride.
        phase = self._rng.uniform(0.0, _TWO_PI)
        phases = {"L": phase, "R": phase + self._rng.normal(0.0, 0.2)}
        for name, adr in self._leg_qadr.items():
            d.qpos[adr] = phases[name[0]]
        self._drive.reset(self._condition.at(0.0).battery_v)
        self._enc_zero = np.zeros(2, dtype=np.int64)
        self._applied: Condition | None = None
        mujoco.mj_kinematics(m, d)
        self._apply_condition(self._condition.at(0.0))
        mujoco.mj_step(m, d, nstep=round(SETTLE_S / m.opt.timestep))
        d.qpos[0:2] = 0.0
        d.time = 0.0
        mujoco.mj_forward(m, d)
        self._update_ground()
        self._vel_last = self._vel_prev = (0.0, 0.0, 0.0, 0.0)  # (time, torso velocity)
        dt = m.opt.timestep
        self._chunk_steps = round(CHUNK_S / dt)
        self._nstep = 0  # physics steps since time zero
        self._target_s = 0.0
        self._switch_pending = [round(t / dt) for t in self._condition.switch_times() if t > 0.0]
        self._hitch_sled()

    def set_condition(self, condition: Condition | str) -> None:
        """Switches to ``condition`` now, without a reset (the robot stays where it is); its
        ``@T`` switches are ignored. Used by long runs whose conditions change over time."""
        self._condition = as_condition(condition)
        self._switch_pending = []
        self._apply_condition(self._condition.at(0.0))

    @property
    def time_s(self) -> float:
        """Simulated seconds since reset."""
        return float(self.data.time)

    @property
    def condition(self) -> Condition:
        return self._condition

    # ---------------------------------------------------------------- commands
    def set_leg_velocity(self, left_rev_s: float, right_rev_s: float) -> None:
        """PID setpoints in leg rev/s; turns PID mode on (the reference starts at the leg)."""
        self._drive.set_leg_velocity(left_rev_s, right_rev_s)

    def set_duty(self, left: int, right: int) -> None:
        """Open-loop PWM duty, -4000..4000 (clamped); PID off."""
        self._drive.set_duty(left, right)

    def set_motors_enabled(self, on: bool) -> None:
        """Off: duty 0 (the shorted motor brakes through its back-EMF). On: duty 0 until
        the next command."""
        self._drive.set_motors_enabled(on)

    def set_pid_gains(
        self, kp: float, ki: float, kd: float, *more: float, right: Sequence[float] | None = None
    ) -> None:
        """Kp, Ki, Kd in firmware units (see DEFAULT_PID_GAINS) for the left side, and for
        the right side too unless ``right`` gives its own (Kp, Ki, Kd, ...). Extra firmware
        terms (Kaw, Kff) are accepted and ignored: the anti-windup is INTEGRAL_LIMIT_DUTY."""
        self._drive.set_pid_gains(kp, ki, kd, *more, right=right)

    @property
    def pid_gains(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """The (Kp, Ki, Kd) in force, (left, right), firmware units."""
        return self._drive.pid_gains

    def encoder_counts(self) -> tuple[int, int]:
        """The leg encoders' raw counts (left, right) now, before ``zero_encoders``: what a
        board's encoder hardware reads (no noise)."""
        q = self.data.qpos
        return round(q[self._qadr[0]] * _COUNTS_PER_RAD), round(q[self._qadr[1]] * _COUNTS_PER_RAD)

    def zero_encoders(self) -> None:
        """Makes the current leg positions read zero counts."""
        self._enc_zero[:] = [round(self.data.qpos[a] * _COUNTS_PER_RAD) for a in self._qadr]

    # ------------------------------------------------------------------ physics
    def step(self, duration_s: float) -> None:
        """Advances the simulation by ``duration_s``. Physics moves in whole TIMESTEP_S steps;
        a running target keeps the simulated clock within half a step of the sum of all
        durations, so any split of the same total time gives the same result. Conditions
        with @T switch on at their time; the PID integral, battery, ground and tow update
        at every CHUNK_S boundary of the simulated clock."""
        m, d = self.model, self.data
        self._target_s += duration_s
        target = round(self._target_s / m.opt.timestep)
        while self._nstep < target:
            while self._switch_pending and self._nstep >= self._switch_pending[0]:
                self._switch_pending.pop(0)
                self._apply_condition(self._condition.at(d.time + 0.5 * m.opt.timestep))
            n = min(target - self._nstep, self._chunk_steps - self._nstep % self._chunk_steps)
            if self._switch_pending:
                n = min(n, self._switch_pending[0] - self._nstep)
            mujoco.mj_step(m, d, nstep=n)
            self._nstep += n
            if self._nstep % self._chunk_steps == 0:
                self._after_chunk(CHUNK_S)

    def _after_chunk(self, elapsed_s: float) -> None:
        """Drive, tow and ground bookkeeping between chunks (scalar code: this runs ~50
        times per simulated second, so it avoids small-array numpy calls)."""
        qvel = self.data.qvel
        self._vel_prev = self._vel_last
        self._vel_last = (self.data.time, qvel[0], qvel[1], qvel[2])
        self._drive.after_chunk(elapsed_s)
        if self._applied is not None and self._applied.tow_g > 0.0:
            self._update_tow()
        if self._roughness_m > 0.0:
            self._update_ground()
        self._drive.push()

    # --------------------------------------------------------------- conditions
    def _apply_condition(self, cond: Condition) -> None:
        """Sets the model to ``cond`` (the condition in force now)."""
        m = self.model
        prev = self._applied
        surf = cond.surface()
        for g in self._grounds:
            m.geom_friction[g] = (surf.friction, 0.005, 0.0001)
            m.geom_solref[g] = (0.005 * 4.0**surf.softness, 1.0 + 2.0 * surf.softness)
            m.geom_solimp[g] = (0.9, 0.95, 0.001 + 0.004 * surf.softness, 0.5, 2.0)
        self._roughness_m = surf.roughness_mm * 1e-3
        self._update_ground()
        theta = math.radians(cond.slope_deg)
        m.opt.gravity[:] = (-9.81 * math.sin(theta), 0.0, -9.81 * math.cos(theta))
        for name, geoms in self._leg_geoms.items():
            for g in geoms:
                m.geom_conaffinity[g] = 0 if name in cond.missing_leg else M.leg_contact_bit(name)
                m.geom_rgba[g, 3] = 0.2 if name in cond.missing_leg else 1.0
        if prev is None or (prev.payload_g, prev.payload_x_mm, prev.payload_y_mm) != (
            cond.payload_g,
            cond.payload_x_mm,
            cond.payload_y_mm,
        ):
            mass = max(cond.payload_g * 1e-3, 1e-9)
            m.body_mass[self._payload] = mass
            m.body_inertia[self._payload] = mass * 2 * 0.012**2 / 12
            m.body_pos[self._payload] = (
                cond.payload_x_mm * 1e-3,
                cond.payload_y_mm * 1e-3,
                M.BODY_HALF_SIZE_M[2] + 0.004,
            )
            mujoco.mj_setConst(m, mujoco.MjData(m))
        if cond.tow_g > 0.0 and (prev is None or prev.tow_g <= 0.0):
            self._hitch_sled()  # a tow hitched now starts straight behind, tether taut
        self._applied = cond
        self._drive.set_condition(cond.gain_left, cond.gain_right, cond.battery_v)

    def _update_ground(self) -> None:
        """Moves each leg's ground plane to the rough ground under its hip."""
        if self._roughness_m <= 0.0:
            self._leg_ground_pos[:] = 0.0
            self._leg_ground_quat[:] = (1.0, 0.0, 0.0, 0.0)
            return
        xpos = self.data.xpos.tolist()
        # Sample where the hips will be half-way through the next chunk (the body's velocity
        # is a good proxy for a stance leg's hip), so the plane's step error is centred.
        ahead = 0.5 * CHUNK_S
        vx, vy = self.data.qvel[0] * ahead, self.data.qvel[1] * ahead
        pos, quat = [], []
        for b in self._leg_bodies:
            x, y = xpos[b][0] + vx, xpos[b][1] + vy
            height, q = terrain.sample(self._pattern, x, y, self._roughness_m)
            pos.append((x, y, height))  # the plane's tilt pivots about the hip's ground point
            quat.append(q)
        self._leg_ground_pos[:] = pos
        self._leg_ground_quat[:] = quat

    def _hitch_sled(self) -> None:
        d = self.data
        heading = d.xmat[self._torso].reshape(3, 3)[:2, 0]
        heading = heading / max(1e-9, float(np.linalg.norm(heading)))
        self._sled.hitch(self._attach_point()[:2], heading)

    def _attach_point(self) -> np.ndarray:
        """World position of the tether's attachment at the rear of the body, (3,) m."""
        d = self.data
        local = np.array([-M.BODY_HALF_SIZE_M[0], 0.0, 0.0])
        return d.xpos[self._torso] + d.xmat[self._torso].reshape(3, 3) @ local

    def _update_tow(self) -> None:
        """Moves the sled and applies its pull at the attachment point."""
        d, cond = self.data, self._applied
        assert cond is not None
        attach = self._attach_point()
        mu = cond.surface().friction
        fx, fy = self._sled.pull(attach[:2], cond.tow_g * 1e-3, mu, self.model.opt.gravity)
        force = np.array([fx, fy, 0.0])
        d.xfrc_applied[self._torso, :3] = force
        d.xfrc_applied[self._torso, 3:] = np.cross(attach - d.xipos[self._torso], force)

    # ------------------------------------------------------------------ sensors
    def telemetry(self) -> Telemetry:
        """The motor board's telemetry record of now: raw units, with sensor noise."""
        d = self.data
        q = d.qpos[self._qadr]
        ref = d.act[self._drive.ref_adr] if self._drive.mode == "pid" else q
        zero = self._enc_zero
        return sensors.telemetry_record(
            d.time,
            (round(q[0] * _COUNTS_PER_RAD) - zero[0], round(q[1] * _COUNTS_PER_RAD) - zero[1]),
            (round(ref[0] * _COUNTS_PER_RAD) - zero[0], round(ref[1] * _COUNTS_PER_RAD) - zero[1]),
            self._drive.duty_now(),
            d.qvel[3:6],  # the free joint's angular velocity is in the body frame
            self._specific_force(),
            K_E_V_S_PER_RAD * d.qvel[self._vadr],
            self._drive.vbatt,
            self._noise_rng,
        )

    def _specific_force(self) -> np.ndarray:
        """Accelerometer reading, body frame, m/s^2, shape (3,): the mean over the last chunk
        (the IMU's low-pass filter; instantaneous values are dominated by foot impacts that
        the sensor's filter removes). At time zero, at rest: gravity's reaction."""
        d = self.data
        t1, *v1 = self._vel_last
        t0, *v0 = self._vel_prev
        if d.time > t1 + 1e-9:  # part-way into a chunk: average since its start
            t0, v0, t1, v1 = t1, v1, d.time, list(d.qvel[0:3])
        accel = np.zeros(3)
        if t1 - t0 > 0.0:
            accel = (np.array(v1) - np.array(v0)) / (t1 - t0)
        return d.xmat[self._torso].reshape(3, 3).T @ (accel - self.model.opt.gravity)

    def true_pose(self) -> Pose:
        """Ground truth in the gravity-aligned lab frame: no noise, no miscalibration."""
        return sensors.exact_pose(*self._lab_pose(), self.data.time)

    def pose(self) -> Pose:
        """Motion capture: noise, plus the condition's marker offset and yaw error."""
        cond = self._applied
        assert cond is not None
        return sensors.tracked_pose(
            *self._lab_pose(),
            self.data.time,
            cond.yaw_offset_deg,
            cond.pos_offset_mm,
            self._noise_rng,
        )

    def _lab_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Torso position (3,) m and rotation (3, 3) in the lab frame."""
        d, cond = self.data, self._applied
        rot = d.xmat[self._torso].reshape(3, 3)
        return sensors.to_lab(d.xpos[self._torso].copy(), rot.copy(), cond.slope_deg if cond else 0)

    # --------------------------------------------------------------- inspection
    @property
    def flipped(self) -> bool:
        """True once the body is tilted more than 70 degrees from the ground's normal (on its
        side or back: the robot cannot right itself)."""
        return bool(self.data.xmat[self._torso][8] < FLIPPED_COS)

    @property
    def battery_v(self) -> float:
        """Battery terminal voltage now, V (no noise)."""
        return self._drive.vbatt

    @property
    def sled_xy(self) -> np.ndarray | None:
        """Tow sled position (2,) m in the simulation frame, or None without a tow."""
        return self._sled.xy.copy() if self._applied and self._applied.tow_g > 0 else None
