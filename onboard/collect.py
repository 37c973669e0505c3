"""``roach collect --port``: the published random-action data, collected on the robot.

Random leg-rate commands, uniform within the bounds, each held for a sampled number of
control steps (``hold_min`` .. ``hold_max``, as the simulated collection does:
offboard_training/collect.py), sent at the control rate with the loop's clock, motor
supervisor, freshness rules and tick records (onboard/loop.py), so a collection log is
a run log and ``roach train --data`` reads it (docs/training.md). No model, no torch.

The rules a lab needs, each a counted event in the log:
- ``arena_steer``: beyond ``arena_radius_m - arena_margin_m`` from the arena's centre
  and heading outward, the command turns the robot back toward the centre (still a
  command within the bounds, so the transition is data); it drives randomly again
  once inside the inner ring;
- ``arena_left``: beyond ``arena_radius_m``: stop, the session ends;
- ``tip_over``: roll or pitch beyond ``max_tilt_deg``: stop, the session ends (a person
  rights the robot);
- ``battery_floor``: battery below ``battery_floor_v``: stop, the session ends;
- the loop's own: missing or stale inputs stop the tick; the board's watchdog or a
  latched emergency stop as in ``roach run``.
A stop breaks the chain of transitions (no transition spans it). Ctrl-C ends the
session with everything kept; each session is one log, and rerunning in the same
folder appends a session (``collect-index.json`` counts the minutes per label).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from firmware_bridge.calibration import SensorCalibration
from firmware_bridge.robot import Robot
from firmware_bridge.state_builder import StateBuilder
from onboard import safety
from onboard.clock import make_clock
from onboard.config import LoopConfig
from onboard.logging_mcap import TOPIC_EVENT, TOPIC_TICK, TickLogWriter
from onboard.motors import MotorSupervisor
from onboard.tick_record import TickRecord
from robot_contract.errors import LinkError

ARENA_STEER = "arena_steer"
ARENA_LEFT = "arena_left"
TIP_OVER = "tip_over"
BATTERY_FLOOR = "battery_floor"
SESSION_ENDS = (ARENA_LEFT, TIP_OVER, BATTERY_FLOOR, safety.ESTOPPED)
"""Events after which the session ends: only a person can put the robot right."""


def _rng(lo: float, hi: float, doc: str) -> dict[str, object]:
    return {"range": (lo, hi), "doc": doc}


@dataclass(frozen=True)
class CollectSettings:
    """One collection session (``roach collect --port`` options)."""

    label: str = "carpet"
    """The terrain (or any condition) label the session's data is filed under."""
    minutes: float = field(default=30.0, metadata=_rng(0.001, 1e4, "min"))
    """Target minutes of driving for this label in the folder, earlier sessions included."""
    hold_min: int = 1
    hold_max: int = 5
    """Each random command is held for hold_min..hold_max control steps."""
    arena_radius_m: float = 1.5
    """The tracked area around the centre; beyond it the session stops."""
    arena_margin_m: float = 0.3
    """Beyond radius - margin the robot is steered back toward the centre."""
    arena_centre: tuple[float, float] | None = None
    """(x, y) in the pose frame; None: where the robot stands at the first pose."""
    max_tilt_deg: float = 45.0
    battery_floor_v: float = 3.3
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.hold_min <= self.hold_max:
            raise ValueError(f"hold steps {self.hold_min}..{self.hold_max}: need 1 <= min <= max")
        if not 0 < self.arena_margin_m < self.arena_radius_m:
            raise ValueError(
                f"arena margin {self.arena_margin_m:g} m: need 0 < margin < radius "
                f"{self.arena_radius_m:g} m"
            )
        if not 0 < self.max_tilt_deg < 180:
            raise ValueError(f"max tilt {self.max_tilt_deg:g} deg: valid 0 < tilt < 180")
        if not self.label or not self.label.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"label {self.label!r}: letters, digits, - and _ only")


class RandomHold:
    """Uniform random commands in [low, high]^2, each held for a sampled number of steps
    (the same sampling as offboard_training.collect.random_actions)."""

    def __init__(self, rng: np.random.Generator, low: float, high: float, hmin: int, hmax: int):
        self.rng, self.low, self.high, self.hmin, self.hmax = rng, low, high, hmin, hmax
        self._left = 0
        self._action = np.full(2, 0.5 * (low + high))

    def act(self) -> np.ndarray:
        if self._left == 0:
            self._left = int(self.rng.integers(self.hmin, self.hmax + 1))
            self._action = self.rng.uniform(self.low, self.high, 2)
        self._left -= 1
        return self._action.copy()

    def interrupt(self) -> None:
        """The next command is a new draw (after steering or a stop)."""
        self._left = 0


def steer_toward(
    x: float, y: float, yaw: float, centre: tuple[float, float], low: float, high: float
) -> np.ndarray:
    """[2] rev/s turning the robot toward ``centre``: the side on the inside of the turn
    at the lower bound, the other at the upper; both at the upper once the centre is
    within 0.3 rad of ahead."""
    err = math.atan2(centre[1] - y, centre[0] - x) - yaw
    err = math.atan2(math.sin(err), math.cos(err))
    slow, fast = low, high  # the tightest turn the bounds allow (no leg runs backwards)
    if abs(err) < 0.3:
        return np.array([fast, fast])
    return np.array([slow, fast]) if err > 0 else np.array([fast, slow])


@dataclass
class CollectResult:
    ticks: int = 0
    transitions: int = 0
    driven_ticks: int = 0
    """Ticks that sent a command (the minutes of data are these x the period)."""
    events: Counter[str] = field(default_factory=Counter)
    stopped_by: str | None = None
    max_distance_m: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "ticks": self.ticks,
            "transitions": self.transitions,
            "driven_ticks": self.driven_ticks,
            "events": dict(self.events),
            "stopped_by": self.stopped_by,
            "max_distance_m": self.max_distance_m,
        }


class Collector:
    """Runs one collection session on a connected robot; the caller owns robot and log."""

    def __init__(
        self,
        robot: Robot,
        cfg: LoopConfig,
        settings: CollectSettings,
        log: TickLogWriter | None = None,
        lockstep: bool = False,
        calibration: SensorCalibration | None = None,
    ) -> None:
        self.robot, self.cfg, self.s, self.log = robot, cfg, settings, log
        self.low, self.high = cfg.action_low_rev_s, cfg.action_high_rev_s
        self.nominal = np.full(2, 0.5 * (self.low + self.high))
        self.clock = make_clock(cfg, lockstep)
        self.motors = MotorSupervisor(robot, self.clock.confirm_s)
        self.states = StateBuilder(calibration)
        rng = np.random.default_rng(settings.seed)
        self.policy = RandomHold(rng, self.low, self.high, settings.hold_min, settings.hold_max)
        self.centre = settings.arena_centre
        self.result = CollectResult()
        self.observers: list[Callable[[TickRecord], None]] = []
        self._steering = False
        self._chain = False  # the previous tick sent a command on a good state
        self._stop_reason: str | None = None
        self._shut_down = False

    def request_stop(self, reason: str) -> None:
        """Ends the session within one control period. Safe from a signal handler."""
        self._stop_reason = reason

    def _stopping(self) -> bool:
        return self._stop_reason is not None

    def start(self, hello_timeout_s: float = 1.0, telemetry_rate_hz: float = 100.0) -> dict:
        """The start sequence of onboard/loop.py; returns the hello."""
        hello = self.robot.hello(timeout_s=hello_timeout_s)
        self.robot.set_command_timeout(self.cfg.command_timeout_ms)
        self.robot.start_telemetry(telemetry_rate_hz)
        try:
            self.clock.wait_first_samples(self.robot, self._stopping)
        except LinkError:
            self.shutdown()
            raise
        if self._stop_reason is None:
            self.motors.start()
            self._send(self.nominal)
        return dict(hello)

    def run(self, max_ticks: int) -> CollectResult:
        """Up to ``max_ticks`` ticks; always stops the motors before returning or raising."""
        self.clock.begin()
        try:
            for k in range(max_ticks):
                if self._stopping() or not self.clock.wait_tick(self.robot, self._stopping):
                    break
                self.tick(k)
                self.clock.end_tick()
        finally:
            self.shutdown()
        self.result.stopped_by = self._stop_reason
        return self.result

    def tick(self, k: int) -> None:
        """Read, state, the arena / tilt / battery rules, command (random or steer), record."""
        rec = TickRecord(k, time.monotonic(), pipelined=False)
        tel, pose = self.robot.latest_telemetry(), self.robot.latest_pose()
        rec.telemetry, rec.pose = tel, pose
        rec.fault = self.clock.input_fault(rec.t_start_s, tel, pose)
        if rec.fault is None and tel is not None and pose is not None:
            rec.fault = self.motors.check(tel)
            if rec.fault is None:
                rec.state = self.states.build(tel.value, pose.value)
                rec.fault = safety.state_fault(rec.state) or self._trip(rec, rec.state)
        if rec.fault is None and rec.state is not None:
            action = self._choose(rec, rec.state)
            self._send(action)
            rec.sent = action
            self.result.driven_ticks += 1
            self.result.transitions += self._chain
            self._chain = True
        else:
            self._stop(rec)
        self.result.ticks = k + 1
        rec.late_s = self.clock.late_s(rec.t_start_s)
        for observe in self.observers:
            observe(rec)
        if self.log is not None:
            rec.tick_s = time.monotonic() - rec.t_start_s
            self.log.write(TOPIC_TICK, rec.message())

    def shutdown(self) -> None:
        """Motors and telemetry off, without waiting, once. Never raises."""
        if self._shut_down:
            return
        self._shut_down = True
        self.motors.shutdown()
        with contextlib.suppress(Exception):
            self.robot.stop_telemetry_nowait()

    # -- the rules -------------------------------------------------------------------------

    def _trip(self, rec: TickRecord, state: np.ndarray) -> str | None:
        """TIP_OVER, BATTERY_FLOOR or ARENA_LEFT (with ``rec.detail``), or None."""
        assert rec.pose is not None
        p = rec.pose.value
        if self.centre is None:
            self.centre = (p.x, p.y)
        tilt = math.degrees(max(abs(_wrap(p.roll)), abs(_wrap(p.pitch))))
        if tilt > self.s.max_tilt_deg:
            rec.detail = f"roll {math.degrees(p.roll):.0f} deg, pitch {math.degrees(p.pitch):.0f}"
            return TIP_OVER
        if state[23] < self.s.battery_floor_v:
            rec.detail = f"battery {state[23]:.2f} V < {self.s.battery_floor_v:g} V"
            return BATTERY_FLOOR
        d = math.hypot(p.x - self.centre[0], p.y - self.centre[1])
        self.result.max_distance_m = max(self.result.max_distance_m, d)
        if d > self.s.arena_radius_m:
            rec.detail = f"{d:.2f} m from the centre > {self.s.arena_radius_m:g} m"
            return ARENA_LEFT
        return None

    def _choose(self, rec: TickRecord, state: np.ndarray) -> np.ndarray:
        """The random command, or one steering back when near the boundary."""
        assert rec.pose is not None and self.centre is not None
        p = rec.pose.value
        d = math.hypot(p.x - self.centre[0], p.y - self.centre[1])
        outer = self.s.arena_radius_m - self.s.arena_margin_m
        inner = self.s.arena_radius_m - 2 * self.s.arena_margin_m
        if d > outer:
            self._steering = True
        elif d < max(inner, 0.0):
            if self._steering:
                self.policy.interrupt()
            self._steering = False
        if self._steering:
            self._count(rec, ARENA_STEER, f"{d:.2f} m from the centre")
            return steer_toward(p.x, p.y, p.yaw, self.centre, self.low, self.high)
        return self.policy.act()

    def _send(self, action: np.ndarray) -> None:
        self.motors.ensure_on()
        self.clock.sending()
        self.robot.set_leg_velocity(float(action[0]), float(action[1]))

    def _stop(self, rec: TickRecord) -> None:
        fault = rec.fault or safety.CONTROLLER_ERROR
        rec.sent = None
        self.motors.stop()
        self.clock.keep_time(self.robot, self.nominal)
        self.states.reset()
        self.policy.interrupt()
        self._chain = False
        self._count(rec, fault, rec.detail)
        if fault in SESSION_ENDS and self._stop_reason is None:
            self._stop_reason = fault

    def _count(self, rec: TickRecord, kind: str, detail: str) -> None:
        self.result.events[kind] += 1
        rec.events.append(kind)
        if self.log is not None:
            self.log.write(
                TOPIC_EVENT,
                {"tick": rec.tick, "kind": kind, "detail": detail,
                 "count": self.result.events[kind]},
            )  # fmt: skip


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi
