"""The motor board's firmware, in software, around a simulated robot.

``FakeFirmware`` takes the host's bytes, decodes them with the same ``FrameDecoder``
the host uses, executes the commands on a ``SimRobot`` and returns the reply bytes:
the watchdog, the emergency-stop latch, setpoint clamping, NACKs and the telemetry
stream of docs/protocol.md ("Board behaviour" and "The fake robot"). It does no I/O
and reads no clock: the caller says when time passes (``advance_to``) or, in lockstep,
each SET_LEG_VELOCITY advances one control period.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Protocol

from firmware_bridge.frame import PROTOCOL_VERSION, Frame, FrameDecoder
from firmware_bridge.messages import (
    COMMAND_TYPES,
    ERR_ESTOPPED,
    ERR_MALFORMED,
    ERR_OUT_OF_RANGE,
    ERR_UNKNOWN_TYPE,
    FLAG_ESTOPPED,
    FLAG_MOTORS_ON,
    FLAG_OPEN_LOOP,
    FLAG_TELEMETRY_ON,
    FLAG_WATCHDOG_TRIPPED,
    MESSAGE_TYPES,
    Ack,
    ClearEmergencyStop,
    EmergencyStop,
    GetStatus,
    Hello,
    HelloReply,
    Message,
    Nack,
    PoseMsg,
    SetCommandTimeout,
    SetDuty,
    SetLegVelocity,
    SetPidGains,
    StartMotors,
    StartTelemetry,
    Status,
    StopMotors,
    StopTelemetry,
    TelemetryMsg,
    ZeroEncoders,
    encode_message,
)
from firmware_bridge.records import DUTY_FULL_SCALE, Pose, Telemetry
from robot_contract.state import ACTION_HIGH_REV_S, ACTION_LOW_REV_S, CONTROL_PERIOD_S

FIRMWARE_VERSION = (1, 0, 0)
DEVICE_ID = 0x51A0_0001
DEFAULT_TIMEOUT_MS = 250
SANITY_LOW_REV_S = 0.0
SANITY_HIGH_REV_S = 20.0
"""Setpoints outside this range are NACKed; inside it they are clamped to 2..9 rev/s."""
LOCKSTEP_PERIOD_MS = round(CONTROL_PERIOD_S * 1000)


class Simulation(Protocol):
    """What the firmware drives: ``firmware_bridge.sim.robot.SimRobot``."""

    def set_leg_velocity(self, left_rev_s: float, right_rev_s: float) -> None: ...
    def set_duty(self, left: int, right: int) -> None: ...
    def set_motors_enabled(self, on: bool) -> None: ...
    def set_pid_gains(
        self, kp: float, ki: float, kd: float, *more: float, right: Sequence[float] | None = None
    ) -> None: ...
    def zero_encoders(self) -> None: ...
    def step(self, duration_s: float) -> None: ...
    def telemetry(self) -> Telemetry: ...
    def pose(self) -> Pose: ...


class SimulationWrapper:
    """A Simulation passing every call through to the one inside: the base of the fake's
    mishaps (firmware_bridge/fake/mishaps.py) and broken boards (board_faults.py), which
    override only the calls they change."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim

    def step(self, duration_s: float) -> None:
        self.sim.step(duration_s)

    def set_leg_velocity(self, left_rev_s: float, right_rev_s: float) -> None:
        self.sim.set_leg_velocity(left_rev_s, right_rev_s)

    def set_duty(self, left: int, right: int) -> None:
        self.sim.set_duty(left, right)

    def set_motors_enabled(self, on: bool) -> None:
        self.sim.set_motors_enabled(on)

    def set_pid_gains(
        self, kp: float, ki: float, kd: float, *more: float, right: Sequence[float] | None = None
    ) -> None:
        self.sim.set_pid_gains(kp, ki, kd, *more, right=right)

    def zero_encoders(self) -> None:
        self.sim.zero_encoders()

    def telemetry(self) -> Telemetry:
        return self.sim.telemetry()

    def pose(self) -> Pose:
        return self.sim.pose()


class FakeFirmware:
    """Board state machine on a 1 ms tick. ``lockstep``: see docs/protocol.md."""

    def __init__(
        self,
        sim: Simulation,
        *,
        lockstep: bool,
        pose_out: Callable[[Pose, int], None] | None = None,
    ) -> None:
        self.sim = sim
        self.lockstep = lockstep
        self.pose_out = pose_out
        """Where each pose goes instead of a POSE frame (``roach sim --pose-out``): called
        with the pose and the board clock in microseconds (not wrapped), as a tracker
        would publish it."""
        self.decoder = FrameDecoder(COMMAND_TYPES)
        self.tick_ms = 0  # board clock; simulation time = tick_ms / 1000
        self.tx_seq = 0
        self.tx_frames = 0
        self.motors_on = False
        self.open_loop = False
        self.watchdog_tripped = False
        self.estopped = False
        self.timeout_ms = DEFAULT_TIMEOUT_MS
        self.last_command_ms = 0
        self.watchdog_trip_ms = 0
        self.watchdog_trips: list[tuple[float, float]] = []  # (last command s, trip s)
        self.setpoint_rev_s = (ACTION_LOW_REV_S, ACTION_LOW_REV_S)
        self.duty = (0, 0)
        self.telemetry_rate_hz = 0
        self._next_telemetry_ms = 0
        self._telemetry_start_ms = 0
        self.sample_index = 0
        self.nacks_sent = 0

    # --- input ----------------------------------------------------------------------
    def receive(self, data: bytes) -> bytes:
        """Executes every command ``data`` completes; returns the bytes to send back."""
        out: list[bytes] = []
        for frame in self.decoder.feed(data):
            self._execute(frame, out)
        return b"".join(out)

    def advance_to(self, tick_ms: int) -> bytes:
        """Runs the board until ``tick_ms`` (realtime clock); returns telemetry bytes."""
        out: list[bytes] = []
        self._advance(tick_ms - self.tick_ms, out, stream=True)
        return b"".join(out)

    def flags(self) -> int:
        return (
            FLAG_MOTORS_ON * self.motors_on
            | FLAG_WATCHDOG_TRIPPED * self.watchdog_tripped
            | FLAG_ESTOPPED * self.estopped
            | FLAG_OPEN_LOOP * self.open_loop
            | FLAG_TELEMETRY_ON * (self.telemetry_rate_hz > 0)
        )

    # --- commands -------------------------------------------------------------------
    def _execute(self, frame: Frame, out: list[bytes]) -> None:
        cls = MESSAGE_TYPES.get(frame.type)
        if cls is None or frame.type not in COMMAND_TYPES:
            self._nack(frame, ERR_UNKNOWN_TYPE, out)
            return
        if len(frame.payload) != cls.STRUCT.size:
            self._nack(frame, ERR_MALFORMED, out)
            return
        msg = cls.unpack(frame.payload)
        if isinstance(msg, SetLegVelocity):
            self._set_leg_velocity(frame, msg, out)
            return
        error = self._apply(msg)
        if error:
            self._nack(frame, error, out)
        elif isinstance(msg, Hello):
            major, minor, patch = FIRMWARE_VERSION
            name = b"sim-lockstep" if self.lockstep else b"sim-realtime"
            reply = HelloReply(frame.seq, PROTOCOL_VERSION, major, minor, patch, DEVICE_ID, name)
            self._send(reply, out)
        elif isinstance(msg, GetStatus):
            self._send(self._status(frame.seq), out)
        else:
            self._send(Ack(frame.seq, frame.type), out)

    def _apply(self, msg: Message) -> int:
        """Executes a command other than SET_LEG_VELOCITY; returns a NACK code or 0."""
        sim = self.sim
        if isinstance(msg, SetDuty):
            if self.estopped:
                return ERR_ESTOPPED
            if max(abs(msg.left), abs(msg.right)) > DUTY_FULL_SCALE:
                return ERR_OUT_OF_RANGE
            self.duty, self.open_loop = (msg.left, msg.right), True
            self._feed_watchdog()
            if self.motors_on:
                sim.set_duty(msg.left, msg.right)
        elif isinstance(msg, StartMotors):
            if self.estopped:
                return ERR_ESTOPPED
            self.motors_on, self.watchdog_tripped = True, False
            self._feed_watchdog()
            if self.open_loop:
                sim.set_duty(*self.duty)
            else:
                sim.set_leg_velocity(*self.setpoint_rev_s)
        elif isinstance(msg, StopMotors):
            self._motors_off()
        elif isinstance(msg, EmergencyStop):
            self.estopped = True
            self._motors_off()
        elif isinstance(msg, ClearEmergencyStop):
            self.estopped = False
        elif isinstance(msg, SetPidGains):
            right = (msg.right_kp, msg.right_ki, msg.right_kd, msg.right_kaw, msg.right_kff)
            sim.set_pid_gains(
                msg.left_kp, msg.left_ki, msg.left_kd, msg.left_kaw, msg.left_kff, right=right
            )
        elif isinstance(msg, ZeroEncoders):
            sim.zero_encoders()
        elif isinstance(msg, SetCommandTimeout):
            if not 10 <= msg.timeout_ms <= 10_000:
                return ERR_OUT_OF_RANGE
            self.timeout_ms = msg.timeout_ms
        elif isinstance(msg, StartTelemetry):
            if not 1 <= msg.rate_hz <= 1000:
                return ERR_OUT_OF_RANGE
            self.telemetry_rate_hz = msg.rate_hz
            self.sample_index = 0
            self._telemetry_start_ms = self._next_telemetry_ms = self.tick_ms
        elif isinstance(msg, StopTelemetry):
            self.telemetry_rate_hz = 0
        return 0

    def _set_leg_velocity(self, frame: Frame, msg: SetLegVelocity, out: list[bytes]) -> None:
        left, right = msg.left_rev_s, msg.right_rev_s
        if self.estopped:
            self._nack(frame, ERR_ESTOPPED, out)
        elif not all(SANITY_LOW_REV_S <= v <= SANITY_HIGH_REV_S for v in (left, right)):
            self._nack(frame, ERR_OUT_OF_RANGE, out)
        else:
            self.setpoint_rev_s = (_clamp(left), _clamp(right))
            self.open_loop = False
            self._feed_watchdog()
            if self.motors_on:
                self.sim.set_leg_velocity(*self.setpoint_rev_s)
            self._send(Ack(frame.seq, frame.type), out)
        if self.lockstep:
            # One control period per well-formed SET_LEG_VELOCITY, then the pair that
            # describes its end (docs/protocol.md, "--clock lockstep").
            self._advance(LOCKSTEP_PERIOD_MS, out, stream=False)
            if self.telemetry_rate_hz:
                self._send_telemetry(out)

    # --- time -----------------------------------------------------------------------
    def _advance(self, n_ms: int, out: list[bytes], *, stream: bool) -> None:
        """Steps the simulation n_ms, stopping at watchdog and telemetry instants."""
        end = self.tick_ms + n_ms
        while self.tick_ms < end:
            stop = end
            deadline = self.last_command_ms + self.timeout_ms
            if self.motors_on:
                stop = min(stop, max(deadline, self.tick_ms))
            if stream and self.telemetry_rate_hz:
                stop = min(stop, max(self._next_telemetry_ms, self.tick_ms))
            if stop > self.tick_ms:
                self.sim.step((stop - self.tick_ms) * 1e-3)
                self.tick_ms = stop
            if self.motors_on and self.tick_ms >= deadline:
                self._motors_off()
                self.watchdog_tripped = True
                self.watchdog_trip_ms = self.tick_ms
                self.watchdog_trips.append((self.last_command_ms * 1e-3, self.tick_ms * 1e-3))
            if stream and self.telemetry_rate_hz and self.tick_ms >= self._next_telemetry_ms:
                self._send_telemetry(out)
                self._next_telemetry_ms = telemetry_due_ms(
                    self._telemetry_start_ms, self.sample_index, self.telemetry_rate_hz
                )

    def _feed_watchdog(self) -> None:
        self.last_command_ms = self.tick_ms

    def _motors_off(self) -> None:
        if self.motors_on:
            self.sim.set_motors_enabled(False)
        self.motors_on = False

    # --- output ---------------------------------------------------------------------
    def _send(self, msg: Message, out: list[bytes]) -> None:
        out.append(encode_message(msg, self.tx_seq))
        self.tx_seq = (self.tx_seq + 1) & 0xFFFF
        self.tx_frames += 1

    def _nack(self, frame: Frame, error: int, out: list[bytes]) -> None:
        self.nacks_sent += 1
        self._send(Nack(frame.seq, frame.type, error), out)

    def _send_telemetry(self, out: list[bytes]) -> None:
        tel = dataclasses.replace(
            self.sim.telemetry(),
            sample_index=self.sample_index & 0xFFFFFFFF,
            timestamp_us=(self.tick_ms * 1000) & 0xFFFFFFFF,
        )
        pose = dataclasses.replace(self.sim.pose(), timestamp_us=tel.timestamp_us)
        self.sample_index += 1
        if self.pose_out is not None:
            # The tracker sees the pose at the sample instant, before the telemetry frame
            # leaves: in lockstep the frame then closes the pair (docs/pose.md).
            self.pose_out(pose, self.tick_ms * 1000)
        self._send(TelemetryMsg(self.flags(), tel), out)
        if self.pose_out is None:
            self._send(PoseMsg(pose), out)

    def _status(self, request_seq: int) -> Status:
        d = self.decoder
        return Status(
            request_seq,
            self.flags(),
            (self.tick_ms * 1000) & 0xFFFFFFFF,
            (self.last_command_ms * 1000) & 0xFFFFFFFF,
            (self.watchdog_trip_ms * 1000) & 0xFFFFFFFF,
            self.timeout_ms,
            self.telemetry_rate_hz,
            d.frames_ok & 0xFFFFFFFF,
            d.errors & 0xFFFFFFFF,
            d.frames_missed & 0xFFFFFFFF,
            self.tx_frames & 0xFFFFFFFF,
            len(self.watchdog_trips) & 0xFFFF,
        )

    def stats(self) -> dict[str, object]:
        return {
            "sim_time_s": self.tick_ms * 1e-3,
            "rx": self.decoder.counters(),
            "tx_frames": self.tx_frames,
            "nacks_sent": self.nacks_sent,
            "watchdog_trips": [list(t) for t in self.watchdog_trips],
        }


def telemetry_due_ms(start_ms: int, n: int, rate_hz: int) -> int:
    """Board tick of telemetry sample ``n``: start + round(n x 1000 / rate) ms, halves
    rounded up, in integers (docs/protocol.md, "Board behaviour")."""
    return start_ms + (2000 * n + rate_hz) // (2 * rate_hz)


def _clamp(v: float) -> float:
    return min(ACTION_HIGH_REV_S, max(ACTION_LOW_REV_S, v))
