"""The drive: the motor board's leg-velocity PID, the two motors and the battery.

Per side, the firmware runs a leg-velocity PID: a position reference integrates the
velocity setpoint, and ``duty = Kp * (ref - q) + Ki * integral(ref - q) + Kd * (v_set - v)``,
clamped to +-4000. The motor turns duty into leg torque
``tau = gain * k_t * (duty / 4000 * V_batt - k_e * omega) / R`` (leg-side constants), so
torque falls with speed, and the battery sags with the current it delivers,
``V_batt = V0 - R_int * I``.

The board evaluates its PID at 1 kHz; this simulation evaluates it at the physics rate
instead: the Kp and Kd terms every 2.5 ms physics step (400 Hz), the Ki integral every
chunk (robot.CHUNK_S). That is what makes it fast: the PID and motor live inside MuJoCo,
so whole chunks of physics run in C, and against a 1 ms step the displacements differ by
a few per cent (a fifth on ice; docs/simulator.md, "Speed"). The fake firmware's state
machine around the simulator (``firmware_bridge.fake``) still keeps a 1 ms board clock
for commands, the watchdog and telemetry.

Inside MuJoCo, an integrator actuator whose activation is the position reference gives
the Kp and Kd terms (``gain * (act - q) - bias * qdot``), a direct actuator adds
``Kd * v_set`` and the Ki term, the joint's actuator force range is the duty clamp, and
the back-EMF torque ``k_t * k_e / R * omega`` is joint damping. Between chunks the Python
side integrates the Ki term and updates the battery voltage (``after_chunk``), then
pushes the new values into the model (``push``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import mujoco

from firmware_bridge.records import DUTY_FULL_SCALE

# Motor and battery, leg-side equivalents (gearbox folded in), SI units.
K_E_V_S_PER_RAD = 0.04
"""Back-EMF constant: 2.3 V at 9 leg rev/s, so about 15 rev/s unloaded at 3.9 V (the
published top speed is about 15 strides/s). The torque constant equals it (N m / A)."""
MOTOR_R_OHM = 8.0
GEARBOX_DAMPING_NMS_RAD = 6e-5
"""Viscous gearbox and linkage friction at the leg shaft: 3.4 mN m at 9 rev/s."""
BATTERY_R_OHM = 1.0
"""Battery internal resistance plus wiring and connector (a small, well-used 1S LiPo)."""
DEFAULT_PID_GAINS = (1800.0, 200.0, 100.0)
"""Kp duty per rad of position error, Ki duty per rad s, Kd duty per rad/s of velocity error."""
INTEGRAL_LIMIT_DUTY = 2000.0
"""Anti-windup: the Ki term is held within +-this many duty units."""

_TWO_PI = 2.0 * math.pi
_SIDES = ("L", "R")


class Drive:
    """Both sides' PID, duty clamp, motor and the shared battery, on one MuJoCo model.

    Index 0 is the left side, 1 the right. Units: setpoints in rad/s inside (rev/s at
    the methods), duty -4000..4000, battery volts. The legs driven are the front ones
    (``LF``, ``RF``); the linkage springs carry the rest.
    """

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, battery_v: float) -> None:
        self.model, self.data = model, data
        m = model
        jnt = mujoco.mjtObj.mjOBJ_JOINT
        self.motor_jnt = [mujoco.mj_name2id(m, jnt, f"{s}F") for s in _SIDES]
        self.qadr = [int(m.jnt_qposadr[j]) for j in self.motor_jnt]
        self.vadr = [int(m.jnt_dofadr[j]) for j in self.motor_jnt]
        act = mujoco.mjtObj.mjOBJ_ACTUATOR
        self._pid_act = [mujoco.mj_name2id(m, act, f"pid_{s}") for s in _SIDES]
        self._ff_act = [mujoco.mj_name2id(m, act, f"ff_{s}") for s in _SIDES]
        self.ref_adr = [int(m.actuator_actadr[a]) for a in self._pid_act]
        for j in self.motor_jnt:
            # Back-EMF braking (k_t k_e / R) plus gearbox friction, both viscous at the shaft.
            m.dof_damping[m.jnt_dofadr[j]] = (
                K_E_V_S_PER_RAD**2 / MOTOR_R_OHM + GEARBOX_DAMPING_NMS_RAD
            )
            m.jnt_actfrclimited[j] = 1
        self.reset(battery_v)

    def reset(self, battery_v: float) -> None:
        """Default gains, open loop at duty 0, a fresh battery at ``battery_v`` volts."""
        self._pid = [DEFAULT_PID_GAINS, DEFAULT_PID_GAINS]  # (Kp, Ki, Kd) per side
        self.mode = "duty"  # "duty" (open loop), "pid", or "off"
        self._duty_cmd = [0.0, 0.0]
        self._vref = [0.0, 0.0]  # rad/s
        self._integral = [0.0, 0.0]  # rad s
        self._gain = (1.0, 1.0)  # motor torque per duty, relative to nominal
        self._v0 = self.vbatt = battery_v

    # ---------------------------------------------------------------- commands
    def set_leg_velocity(self, left_rev_s: float, right_rev_s: float) -> None:
        """PID setpoints in leg rev/s; turns PID mode on (the reference starts at the leg)."""
        if self.mode != "pid":
            self.mode = "pid"
            for i in range(2):
                self.data.act[self.ref_adr[i]] = self.data.qpos[self.qadr[i]]
            self._integral = [0.0, 0.0]
        self._vref = [float(left_rev_s) * _TWO_PI, float(right_rev_s) * _TWO_PI]
        self.push()

    def set_duty(self, left: int, right: int) -> None:
        """Open-loop PWM duty, -4000..4000 (clamped); PID off."""
        self.mode = "duty"
        self._duty_cmd = [
            float(min(DUTY_FULL_SCALE, max(-DUTY_FULL_SCALE, v))) for v in (left, right)
        ]
        self.push()

    def set_motors_enabled(self, on: bool) -> None:
        """Off: duty 0 (the shorted motor brakes through its back-EMF). On: duty 0 until
        the next command."""
        self.mode = "duty" if on else "off"
        self._duty_cmd = [0.0, 0.0]
        self.push()

    def set_pid_gains(
        self, kp: float, ki: float, kd: float, *_more: float, right: Sequence[float] | None = None
    ) -> None:
        """Kp, Ki, Kd in firmware units (see DEFAULT_PID_GAINS) for the left side, and for
        the right side too unless ``right`` gives its own (Kp, Ki, Kd, ...). Extra firmware
        terms (Kaw, Kff) are accepted and ignored: the anti-windup is INTEGRAL_LIMIT_DUTY."""
        left = (float(kp), float(ki), float(kd))
        if right is None:
            self._pid = [left, left]
        else:
            self._pid = [left, (float(right[0]), float(right[1]), float(right[2]))]
        self.push()

    @property
    def pid_gains(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """The (Kp, Ki, Kd) in force, (left, right), firmware units."""
        return self._pid[0], self._pid[1]

    def set_condition(self, gain_left: float, gain_right: float, battery_v: float) -> None:
        """Motor gains of a condition now in force, and its battery (a new battery: the
        present sag carries over)."""
        if battery_v != self._v0:
            self.vbatt += battery_v - self._v0
            self._v0 = battery_v
        self._gain = (gain_left, gain_right)
        self.push()

    # ------------------------------------------------------------------ physics
    def after_chunk(self, elapsed_s: float) -> None:
        """Integrates the Ki term and updates the battery voltage over ``elapsed_s``
        (scalar code: this runs ~50 times per simulated second). Call ``push`` after."""
        qpos, qvel, act = self.data.qpos, self.data.qvel, self.data.act
        duty = self.duty_now()
        if self.mode == "pid":
            for i in (0, 1):
                ki = self._pid[i][1]
                if ki > 0.0:
                    lim = INTEGRAL_LIMIT_DUTY / ki
                    err = act[self.ref_adr[i]] - qpos[self.qadr[i]]
                    self._integral[i] = min(lim, max(-lim, self._integral[i] + err * elapsed_s))
        # Battery current: each H-bridge draws its duty fraction of its motor's current.
        i_batt = 0.0
        for i in (0, 1):
            frac = duty[i] / DUTY_FULL_SCALE
            i_motor = (frac * self.vbatt - K_E_V_S_PER_RAD * qvel[self.vadr[i]]) / MOTOR_R_OHM
            i_batt += frac * i_motor
        self.vbatt = self._v0 - BATTERY_R_OHM * max(0.0, i_batt)

    def duty_now(self) -> list[float]:
        """The duty the firmware is applying now, [left, right]."""
        if self.mode != "pid":
            return [float(self._duty_cmd[0]), float(self._duty_cmd[1])]
        qpos, qvel, act = self.data.qpos, self.data.qvel, self.data.act
        out = []
        for i in (0, 1):
            kp, ki, kd = self._pid[i]
            raw = (
                kp * (act[self.ref_adr[i]] - qpos[self.qadr[i]])
                + ki * self._integral[i]
                + kd * (self._vref[i] - qvel[self.vadr[i]])
            )
            out.append(min(DUTY_FULL_SCALE, max(-DUTY_FULL_SCALE, float(raw))))
        return out

    def push(self) -> None:
        """Pushes the PID gains, duty feed-forward and torque-per-duty into the model."""
        m, ctrl = self.model, self.data.ctrl
        gain, bias, frc = m.actuator_gainprm, m.actuator_biasprm, m.jnt_actfrcrange
        on = self.mode == "pid"
        for i in (0, 1):
            kp, ki, kd = self._pid[i]
            # Leg torque per duty unit at the present battery voltage and motor gain.
            c = self._gain[i] * K_E_V_S_PER_RAD * self.vbatt / (DUTY_FULL_SCALE * MOTOR_R_OHM)
            pid, ff, jnt = self._pid_act[i], self._ff_act[i], self.motor_jnt[i]
            gain[pid, 0] = c * kp if on else 0.0
            bias[pid, 1] = -c * kp if on else 0.0
            bias[pid, 2] = -c * kd if on else 0.0
            gain[ff, 0] = c
            ctrl[pid] = self._vref[i] if on else 0.0
            if on:
                ctrl[ff] = kd * self._vref[i] + ki * self._integral[i]
            else:
                ctrl[ff] = self._duty_cmd[i] if self.mode == "duty" else 0.0
            frc[jnt, 0] = -c * DUTY_FULL_SCALE
            frc[jnt, 1] = c * DUTY_FULL_SCALE
