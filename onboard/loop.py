"""The control loop: read, update history, adapt, plan, command, log, at a fixed rate.

One episode (docs/controller.md):
  start:  hello -> set the command timeout -> start telemetry -> (realtime) wait for the
          first telemetry and pose -> start motors -> send the nominal action (middle of
          the bounds), the first command in flight.
  tick k: when the clock says (onboard/clock.py): read -> state -> history -> adapt ->
          plan -> command -> record. Unusable input (missing, stale, non-finite), a
          board whose motors are off while the loop drives (onboard/motors.py), or a
          non-finite plan commands a stop instead and counts an event: the loop never
          raises for the robot's data. The next good tick starts the motors again. A
          latched emergency stop ends the episode.
  end:    after ``steps`` ticks or ``request_stop`` (SIGINT/SIGTERM): stop motors, stop
          telemetry, both sent without waiting (the link may be dead), once. The
          caller closes the log.

The parts, one job each: ``onboard/clock.py`` when a tick runs and which samples are
fresh; ``onboard/motors.py`` started / confirmed / stopped and the board's flags;
``onboard/command.py`` when the planned command is sent (pipelined or immediate);
``onboard/tick_record.py`` the record of the tick; ``onboard/safety.py`` the go/no-go
rules. Transition k is ``(s_k, a_k, s_{k+1})`` with ``a_k`` the command sent at tick k.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from firmware_bridge.calibration import SensorCalibration
from firmware_bridge.link_health import LinkHealth, LinkHealthConfig
from firmware_bridge.records import Pose, Telemetry
from firmware_bridge.robot import Robot, Stamped
from firmware_bridge.state_builder import StateBuilder
from onboard import safety
from onboard.adaptation import Adapter
from onboard.clock import make_clock
from onboard.command import CommandTiming
from onboard.config import ControllerConfig, LoopConfig
from onboard.history import TransitionHistory
from onboard.logging_mcap import TOPIC_EVENT, TOPIC_TICK, TickLogWriter
from onboard.model import LoadedModel, load_model
from onboard.motors import MotorSupervisor
from onboard.objective import Objective
from onboard.planner import Planner, make_planner
from onboard.plausibility import (
    IMPLAUSIBLE_MODEL,
    IMPLAUSIBLE_PREDICTION,
    Envelope,
    PlausibilityConfig,
)
from onboard.prediction_guard import PredictionGuard
from onboard.resources import check_sizes
from onboard.tick_record import LoopResult, TickRecord
from robot_contract.errors import ConfigError, LinkError

__all__ = ["Controller", "LoopResult", "Objective", "build_controller", "load_controller_model"]


class Controller:
    """Runs one episode on a connected robot. The caller owns the robot and the log.

    Args:
        robot: the robot interface (serial link, or the same link on the fake's pty).
        adapter: the adaptation step; ``adapter.params`` are planned with.
        planner: onboard.planner.Planner, its first step fixed iff ``cfg.command_timing``
            is pipelined.
        objective: binds the model and task to the state and parameters; tracks the path.
        cfg: loop timing and safety.
        action_low, action_high: command bounds [2], rev/s.
        log: where ticks and events go (None: nowhere).
        lockstep: wait for fresh simulated samples instead of a wall-clock deadline.
        plausibility: the physical bounds of inputs and predictions (onboard/plausibility.py).
        calibration: the robot file's sensor calibration (None: the nominal robot).
    """

    def __init__(
        self,
        robot: Robot,
        adapter: Adapter,
        planner: Planner,
        objective: Objective,
        cfg: LoopConfig,
        action_low: np.ndarray,
        action_high: np.ndarray,
        log: TickLogWriter | None = None,
        lockstep: bool = False,
        plausibility: PlausibilityConfig | None = None,
        link_health: LinkHealthConfig | None = None,
        calibration: SensorCalibration | None = None,
    ) -> None:
        self.robot, self.adapter, self.planner = robot, adapter, planner
        self.objective = objective
        self.cfg, self.log = cfg, log
        self.low = np.asarray(action_low, np.float64)
        self.high = np.asarray(action_high, np.float64)
        self.nominal = 0.5 * (self.low + self.high)
        self.clock = make_clock(cfg, lockstep)
        self.motors = MotorSupervisor(robot, self.clock.confirm_s)
        self.command = CommandTiming(cfg.command_timing, self.nominal)
        if planner.fix_first_action != self.command.pipelined:
            raise ConfigError(
                f"command_timing={cfg.command_timing} needs a planner with "
                f"fix_first_action={self.command.pipelined}"
            )
        self.states = StateBuilder(calibration)
        self.envelope = Envelope(
            plausibility or PlausibilityConfig(),
            not lockstep,
            cfg.telemetry_stale_s,
            cfg.pose_stale_s,
        )
        self.guard = PredictionGuard(
            adapter.model, self.envelope, adapter.model.meta.control_period_s
        )
        self.link = LinkHealth(robot, link_health or LinkHealthConfig(), self.clock.period_s)
        self.history = TransitionHistory(adapter.M)
        self.result = LoopResult()
        self._stop_reason: str | None = None
        self._shut_down = False
        self.observers: list[Callable[[TickRecord], None]] = []
        """Called with each tick's record before it is logged (the service watchdog, the
        live view, the status line): each must return at once, its time is the tick's."""

    def request_stop(self, reason: str) -> None:
        """Ends the episode within one control period. Safe to call from a signal handler."""
        self._stop_reason = reason

    def _stopping(self) -> bool:
        return self._stop_reason is not None

    # -- the episode -----------------------------------------------------------------------

    def start(self, hello_timeout_s: float = 1.0, telemetry_rate_hz: float = 100.0) -> dict:
        """The start sequence; returns the robot's hello. The motors are not started if a
        stop was requested meanwhile (``run`` then ends at once).

        LinkError if the robot does not answer or sends no telemetry and pose;
        ProtocolError if it refuses START_MOTORS (e.g. its emergency stop is latched).
        """
        hello = self.robot.hello(timeout_s=hello_timeout_s)
        self.robot.set_command_timeout(self.cfg.command_timeout_ms)
        self.robot.start_telemetry(telemetry_rate_hz)
        try:
            self.clock.wait_first_samples(self.robot, self._stopping)
        except LinkError:
            self.shutdown()
            raise
        if self._stop_reason is not None:
            self.shutdown()
            return dict(hello)
        # Waited for: a refusal here is a clear error before the episode, not a stop.
        self.motors.start()
        self._send(self.nominal)
        return dict(hello)

    def run(self, steps: int) -> LoopResult:
        """Runs up to ``steps`` ticks; always stops the motors before returning or raising."""
        self.clock.begin()
        self.link.start()
        try:
            for k in range(steps):
                if self._stopping() or not self.clock.wait_tick(self.robot, self._stopping):
                    break
                self.tick(k)
                self.clock.end_tick()
        finally:
            self.shutdown()
        if self._stop_reason is None:  # not after a signal: the exit must be prompt
            self.link.drain()
        self.result.link = self.link.summary()
        self.result.stopped_by = self._stop_reason
        self.result.tracking = self.objective.metrics()
        return self.result

    def tick(self, k: int) -> None:
        """One control tick: read, state, history, (send), adapt, plan, command, record."""
        rec = TickRecord(k, time.monotonic(), pipelined=self.command.pipelined)
        state = self._read_state(rec)
        if state is not None:
            self.history.push_state(state)
            self._send_planned_at_start(rec)
            self._adapt_and_plan(rec, state)
        self._command(rec)
        self._record(rec)

    def shutdown(self) -> None:
        """Stop the motors and the telemetry stream: sent without waiting for answers (the
        link may be dead), once however often called. Never raises."""
        if self._shut_down:
            return
        self._shut_down = True
        self.motors.shutdown()
        with contextlib.suppress(Exception):
            self.robot.stop_telemetry_nowait()

    # -- the steps of a tick ---------------------------------------------------------------

    def _read_state(self, rec: TickRecord) -> np.ndarray | None:
        """The newest samples -> the state [24], or None with ``rec.fault`` set."""
        tel, pose = self.robot.latest_telemetry(), self.robot.latest_pose()
        rec.telemetry, rec.pose = tel, pose
        rec.fault = self.clock.input_fault(rec.t_start_s, tel, pose)
        if rec.fault is None and tel is not None and pose is not None:
            rec.fault = self.motors.check(tel) or self._build_state(rec, tel, pose)
        return rec.state if rec.fault is None else None

    def _build_state(
        self, rec: TickRecord, tel: Stamped[Telemetry], pose: Stamped[Pose]
    ) -> str | None:
        fault = self.envelope.inputs(rec.t_start_s, tel, pose)
        if fault is None:
            rec.state = state = self.states.build(tel.value, pose.value)
            fault = safety.state_fault(state)
            if fault is None:
                rec.track = self.objective.track(state)
                fault = self.envelope.state(state, rec.track.distance_m)
        rec.detail = self.envelope.detail if fault is not None else ""
        return fault

    def _send_planned_at_start(self, rec: TickRecord) -> None:
        """Pipelined: last tick's plan goes out now, at the tick's start."""
        command = self.command.at_tick_start()
        if command is not None:
            self._send(command)
            self.history.push_action(command)
            rec.sent = command

    def _adapt_and_plan(self, rec: TickRecord, state: np.ndarray) -> None:
        """Adapts on the history and plans from ``state``; a failure is ``rec.fault``."""
        # Blown-up predictions overflow; the tick's guards turn them into a stop, so
        # numpy's warnings would only be noise on stderr from inside the tick.
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                t0 = time.perf_counter()
                rec.adapt = self.adapter.adapt(*self.history.window(self.adapter.M))
                t1 = time.perf_counter()
                params = self._plausible_params(rec, state)
                if params is None:
                    return
                cost = self.objective.rollout_cost(state, params)
                rec.plan = self.planner.plan(cost, self.command.in_flight, self.low, self.high)
                rec.adapt_s, rec.plan_s = t1 - t0, time.perf_counter() - t1
            rec.planned = np.clip(np.asarray(rec.plan.action, np.float64), self.low, self.high)
            rec.fault = safety.action_fault(rec.planned, rec.plan.best_cost)
            if rec.fault is not None:
                rec.detail = f"planned {rec.planned.tolist()}, best cost {rec.plan.best_cost}"
        except Exception as exc:  # a controller bug stops the robot instead of crashing
            rec.fault, rec.detail = safety.CONTROLLER_ERROR, f"{type(exc).__name__}: {exc}"

    def _plausible_params(self, rec: TickRecord, state: np.ndarray) -> np.ndarray | None:
        """The adapted parameters if their predicted step is possible, else the meta-learned
        ones (counted), else None with ``rec.fault`` set (onboard/prediction_guard.py)."""
        params = self.adapter.params
        detail = self.guard.fault(state, self.command.in_flight, params)
        if detail and params is not self.adapter.meta_params:
            self._count(rec, IMPLAUSIBLE_PREDICTION, detail)
            params = self.adapter.meta_params
            detail = self.guard.fault(state, self.command.in_flight, params)
        if detail:
            rec.fault, rec.detail = IMPLAUSIBLE_MODEL, detail
            return None
        return params

    def _command(self, rec: TickRecord) -> None:
        """Sends (immediate) or keeps (pipelined) the plan's command, or commands a stop."""
        if rec.adapt is not None and rec.adapt.change:
            self._count(rec, safety.ADAPT_CHANGE, "")
        if rec.adapt is not None and rec.adapt.fallback:
            self._count(rec, safety.ADAPT_FALLBACK, "")
        if rec.fault is None and rec.planned is not None:
            command = self.command.after_plan(rec.planned)
            if command is not None:
                self._send(command)
                self.history.push_action(command)
                rec.sent = command
            self.result.step_times_s.append(rec.adapt_s + rec.plan_s)
        else:
            self._safe_stop(rec)

    def _record(self, rec: TickRecord) -> None:
        """Counts an overrun and writes the tick record (docs/log-format.md)."""
        rec.late_s = self.clock.late_s(rec.t_start_s)
        if rec.late_s > self.clock.period_s:
            self.result.overruns += 1
            self._count(rec, safety.OVERRUN, f"{rec.late_s * 1e3:.1f} ms")
        rec.link, link_events = self.link.tick()
        for kind, detail in link_events:
            self._count(rec, kind, detail)
        self.result.ticks = rec.tick + 1
        for observe in self.observers:
            observe(rec)
        if self.log is not None:
            rec.tick_s = time.monotonic() - rec.t_start_s
            self.log.write(TOPIC_TICK, rec.message())
        self.result.tick_times_s.append(time.monotonic() - rec.t_start_s)

    # -- commands and stops ----------------------------------------------------------------

    def _send(self, action: np.ndarray) -> None:
        self.motors.ensure_on()
        self.clock.sending()
        self.robot.set_leg_velocity(float(action[0]), float(action[1]))
        self.command.sent(action)

    def _safe_stop(self, rec: TickRecord) -> None:
        fault = rec.fault or safety.CONTROLLER_ERROR
        rec.sent = None
        if fault in (safety.WATCHDOG_STOP, safety.ESTOPPED) and rec.telemetry is not None:
            rec.detail = f"status flags 0x{rec.telemetry.status_flags:02x}"
        self.motors.stop()
        self.clock.keep_time(self.robot, self.nominal)
        self.command.stopped()
        # No transition may span the stop, and rates must not difference across it.
        self.history.break_chain()
        self.states.reset()
        self._count(rec, fault, rec.detail)
        if self.motors.ends_episode(fault) and self._stop_reason is None:
            self._stop_reason = fault  # only a person may clear the latch

    def _count(self, rec: TickRecord, kind: str, detail: str) -> None:
        self.result.events[kind] += 1
        rec.events.append(kind)
        if self.log is not None:
            self.log.write(
                TOPIC_EVENT,
                {
                    "tick": rec.tick,
                    "kind": kind,
                    "detail": detail,
                    "count": self.result.events[kind],
                },
            )


def load_controller_model(path: str | Path, cfg: ControllerConfig) -> LoadedModel:
    """The model file, checked against the configured command bounds and control rate
    (ModelFileError, one line, if it does not fit them)."""
    return load_model(
        path,
        action_low=(cfg.loop.action_low_rev_s,) * 2,
        action_high=(cfg.loop.action_high_rev_s,) * 2,
        control_period_s=1.0 / cfg.loop.rate_hz,
    )


def build_controller(
    robot: Robot,
    model: LoadedModel,
    cfg: ControllerConfig,
    log: TickLogWriter | None = None,
    lockstep: bool = False,
    calibration: SensorCalibration | None = None,
) -> Controller:
    """The controller ``roach run`` runs: ``cfg``'s adaptation, planner, task and loop
    settings on ``model`` (loaded with ``load_controller_model``). ConfigError before any
    buffer is allocated if a size does not fit (onboard/resources.py)."""
    check_sizes(cfg, model)
    a = cfg.adaptation
    return Controller(
        robot,
        Adapter(
            model,
            a.mode,
            M=a.M,
            inner_lr=a.inner_lr,
            change_ratio=a.change_ratio,
            change_rows=a.change_rows,
            change_gain=a.change_gain,
        ),
        make_planner(cfg.planner, cfg.loop.pipelined),
        Objective(model, cfg.planner, cfg.task),
        cfg.loop,
        np.full(2, cfg.loop.action_low_rev_s),
        np.full(2, cfg.loop.action_high_rev_s),
        log=log,
        lockstep=lockstep,
        plausibility=cfg.plausibility,
        link_health=cfg.link_health,
        calibration=calibration,
    )
