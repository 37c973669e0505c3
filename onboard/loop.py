"""The control loop: read, update history, adapt, plan, command, log, at a fixed rate.

One episode (docs/controller.md):
  start:  hello -> set the command timeout -> start telemetry -> wait for the first
          telemetry and pose -> start motors -> send the nominal action (middle of the
          bounds). The nominal action is the first command in flight.
  tick k: at deadline ``t0 + k / rate_hz`` (realtime), or as soon as telemetry and pose
          newer than tick k-1's have arrived (lockstep): read -> state -> history ->
          adapt -> plan -> send -> log. Unusable input (missing, stale, non-finite) or a
          non-finite plan commands a stop instead and counts an event: the loop never
          raises for the robot's data.
  end:    after ``steps`` ticks or ``request_stop`` (SIGINT/SIGTERM): stop motors, stop
          telemetry. The caller closes the log.

Transition k is ``(s_k, a_k, s_{k+1})`` with ``a_k`` the command sent at tick k: in
lockstep that command is exactly what the simulator applies over the next period.

Lockstep: the fake's clock advances only on SET_LEG_VELOCITY, and answers each with
one telemetry + pose. A tick's sample must be newer than the previous tick's and must
have arrived after the last command was sent, so a sample that comes later than
``lockstep_timeout_s`` is skipped instead of putting the loop one sample behind. A stop
tick sends STOP_MOTORS and then the nominal setpoint with the motors off (stored, not
driven: docs/protocol.md) to let simulated time go on.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from firmware_bridge.errors import LinkError
from firmware_bridge.records import Pose, Telemetry
from firmware_bridge.robot import Robot, Stamped
from firmware_bridge.state import StateBuilder
from onboard import safety
from onboard.adaptation import Adapter, AdaptResult
from onboard.config import LoopConfig
from onboard.history import TransitionHistory
from onboard.logging_mcap import TOPIC_EVENT, TOPIC_TICK, TickLogWriter
from onboard.model import DynamicsModel
from onboard.planner import PlannerConfig
from onboard.rollout import Rollout
from onboard.tasks import Task, TaskConfig, TrackPoint, make_task

RolloutCost = Callable[[np.ndarray], np.ndarray]
"""action sequences [N, H, 2] -> costs [N]."""

_POLL_S = 0.0005  # lockstep polling interval, small against the control period


class PlannerLike(Protocol):
    cfg: PlannerConfig

    def plan(
        self, rollout_cost: Any, action_in_flight: np.ndarray, low: np.ndarray, high: np.ndarray
    ) -> Any: ...


class Objective:
    """The model and the task bound for the planner; the task is placed at the first state.

    Args:
        model: the dynamics model; rollouts use the parameters given per tick.
        planner_cfg: sizes the rollout buffers (N candidates, horizon H).
        task_name, task_cfg: the path to follow (onboard.tasks).
    """

    def __init__(
        self, model: DynamicsModel, planner_cfg: PlannerConfig, task_name: str, task_cfg: TaskConfig
    ) -> None:
        self.rollout = Rollout(model, planner_cfg.n_candidates, planner_cfg.horizon)
        self.task_name, self.task_cfg = task_name, task_cfg
        self.task: Task | None = None

    def track(self, state: np.ndarray) -> TrackPoint:
        """Projects the measured state [24] onto the path (placing the path on first call)."""
        if self.task is None:
            self.task = make_task(self.task_name, state, self.task_cfg)
        return self.task.track(state)

    def rollout_cost(self, state: np.ndarray, params: np.ndarray) -> RolloutCost:
        """The planner's cost of action sequences from ``state`` [24] under ``params`` [P]."""
        if self.task is None:
            self.task = make_task(self.task_name, state, self.task_cfg)
        return self.rollout.bind(params, state, self.task.cost)

    def metrics(self) -> dict[str, Any]:
        return {} if self.task is None else asdict(self.task.metrics())


@dataclass
class LoopResult:
    """What an episode did (printed by ``roach run``, written as the log's summary)."""

    ticks: int = 0
    step_times_s: list[float] = field(default_factory=list)
    """Adapt + plan time of each tick that planned, seconds."""
    tick_times_s: list[float] = field(default_factory=list)
    """Whole tick (read .. log written) of every tick, seconds."""
    overruns: int = 0
    events: Counter[str] = field(default_factory=Counter)
    stopped_by: str | None = None
    """None if the episode ran all its steps, else why it ended early (e.g. 'SIGINT')."""
    tracking: dict[str, Any] = field(default_factory=dict)
    """Task tracking metrics of the episode (onboard.tasks.TrackingMetrics)."""

    def timing_summary(self) -> dict[str, float]:
        """p50/p99/max of the step time (adapt + plan) and of the whole tick, ms."""
        out: dict[str, float] = {}
        for name, xs in (("step", self.step_times_s), ("tick", self.tick_times_s)):
            a = np.asarray(xs, dtype=np.float64) * 1e3
            if a.size:
                out[f"{name}_p50_ms"] = float(np.percentile(a, 50))
                out[f"{name}_p99_ms"] = float(np.percentile(a, 99))
                out[f"{name}_max_ms"] = float(a.max())
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "ticks": self.ticks,
            "overruns": self.overruns,
            "events": dict(self.events),
            "stopped_by": self.stopped_by,
            "timing": self.timing_summary(),
            "tracking": self.tracking,
        }


class Controller:
    """Runs one episode on a connected robot. The caller owns the robot and the log.

    Args:
        robot: the robot interface (serial link, or the same link on the fake's pty).
        adapter: the adaptation step; ``adapter.params`` are planned with.
        planner: ``plan(rollout_cost, action_in_flight [2], low [2], high [2])``.
        objective: binds the model and task to the state and parameters; tracks the path.
        cfg: loop timing and safety.
        action_low, action_high: command bounds [2], rev/s.
        log: where ticks and events go (None: nowhere).
        lockstep: wait for fresh telemetry instead of a wall-clock deadline.
    """

    def __init__(
        self,
        robot: Robot,
        adapter: Adapter,
        planner: PlannerLike,
        objective: Objective,
        cfg: LoopConfig,
        action_low: np.ndarray,
        action_high: np.ndarray,
        log: TickLogWriter | None = None,
        lockstep: bool = False,
    ) -> None:
        self.robot, self.adapter, self.planner = robot, adapter, planner
        self.objective = objective
        self.cfg, self.log, self.lockstep = cfg, log, lockstep
        self.low = np.asarray(action_low, np.float64)
        self.high = np.asarray(action_high, np.float64)
        self.nominal = 0.5 * (self.low + self.high)
        self.period_s = 1.0 / cfg.rate_hz
        self.states = StateBuilder()
        self.history = TransitionHistory(adapter.M)
        self.in_flight = self.nominal.copy()
        self.pipelined = planner.cfg.fix_first_action
        """Send the previous tick's plan at the start of each tick (see ``tick``)."""
        self.next_command = self.nominal.copy()
        self.motors_on = False
        self.result = LoopResult()
        self._stop_reason: str | None = None
        self._prev_tel_us: int | None = None
        self._prev_pose_us: int | None = None
        self._deadline = 0.0
        self._sent_at_s = -math.inf  # when the last SET_LEG_VELOCITY was sent (monotonic)

    def request_stop(self, reason: str) -> None:
        """Ends the episode within one control period. Safe to call from a signal handler."""
        self._stop_reason = reason

    # -- the episode -----------------------------------------------------------------------

    def start(self, hello_timeout_s: float = 1.0, telemetry_rate_hz: float = 100.0) -> dict:
        """The start sequence; returns the robot's hello.

        LinkError if the robot does not answer or sends no telemetry and pose.
        """
        hello = self.robot.hello(timeout_s=hello_timeout_s)
        self.robot.set_command_timeout(self.cfg.command_timeout_ms)
        self.robot.start_telemetry(telemetry_rate_hz)
        if not self.lockstep:
            # Never start the motors blind. (A lockstep simulation sends its first sample
            # only after the first command, which tick 0 then waits for.)
            self._wait_fresh(time.monotonic() + 1.0)
            tel, pose = self.robot.latest_telemetry(), self.robot.latest_pose()
            if tel is None or pose is None:
                self.shutdown()
                missing = "telemetry" if tel is None else "pose"
                raise LinkError(f"no {missing} within 1 s of starting the telemetry stream")
        self._send(self.nominal)
        return dict(hello)

    def run(self, steps: int) -> LoopResult:
        """Runs up to ``steps`` ticks; always stops the motors before returning or raising."""
        self._deadline = time.monotonic() + self.period_s
        try:
            for k in range(steps):
                if self._stop_reason is not None or not self._wait_tick():
                    break
                self.tick(k)
                if not self.lockstep:
                    self._deadline, _ = safety.next_deadline(
                        self._deadline, self.period_s, time.monotonic()
                    )
        finally:
            self.shutdown()
        self.result.stopped_by = self._stop_reason
        self.result.tracking = self.objective.metrics()
        return self.result

    def tick(self, k: int) -> None:
        """One control tick: read, state, history, (send), adapt, plan, (send), log.

        Pipelined (``fix_first_action``, the published planner): the command planned at
        the previous tick goes out first, at the tick's start, so it applies over exactly
        the period the model predicts for it whatever the compute time; the plan then
        keeps it as every candidate's first step and its second step is sent next tick.
        Immediate: the plan's first step is sent as soon as the plan is done.
        """
        t_start = time.monotonic()
        tel, pose = self.robot.latest_telemetry(), self.robot.latest_pose()
        state, fault = self._read_state(t_start, tel, pose)
        adapt: AdaptResult | None = None
        plan: Any = None
        action = self.nominal
        sent: np.ndarray | None = None
        times = (0.0, 0.0)
        detail = ""
        track: TrackPoint | None = None
        if fault is None and state is not None:
            self.history.push_state(state)
            if self.pipelined:
                sent = self.next_command.copy()
                self._send(sent)
                self.history.push_action(sent)
            try:
                track = self.objective.track(state)
                adapt, plan, times = self._adapt_and_plan(state)
                action = np.clip(np.asarray(plan.action, np.float64), self.low, self.high)
                fault = safety.action_fault(action)
            except Exception as exc:  # a controller bug stops the robot instead of crashing
                fault, detail = safety.CONTROLLER_ERROR, f"{type(exc).__name__}: {exc}"
        events: list[str] = []
        if adapt is not None and adapt.fallback:
            self._count(k, safety.ADAPT_FALLBACK, "", events)
        if fault is None:
            if self.pipelined:
                self.next_command[:] = action
            else:
                self._send(action)
                self.history.push_action(action)
                sent = action
            self.result.step_times_s.append(times[0] + times[1])
        else:
            sent = None
            self._safe_stop(k, fault, detail, events)
        self._log_tick(
            k, t_start, tel, pose, state, fault, sent, action, adapt, plan, track, times, events
        )

    def shutdown(self) -> None:
        """Stop the motors and the telemetry stream (best effort, never raises)."""
        self.robot.stop()
        self.motors_on = False
        # The link may already be gone; the motors are what matter.
        with contextlib.suppress(Exception):
            self.robot.stop_telemetry()

    # -- the pieces of a tick --------------------------------------------------------------

    def _wait_tick(self) -> bool:
        """Waits for this tick's moment; False if a stop was requested meanwhile."""
        if self.lockstep:
            self._wait_fresh(time.monotonic() + self.cfg.lockstep_timeout_s)
        else:
            # Sleep in slices so a stop request ends the episode within one period.
            while (left := self._deadline - time.monotonic()) > 0:
                if self._stop_reason is not None:
                    return False
                time.sleep(min(left, self.period_s / 4))
        return self._stop_reason is None

    def _wait_fresh(self, until_s: float) -> None:
        """Polls until telemetry and pose newer than the last tick's, and received after
        the last command was sent, are there; or until ``until_s``."""
        while time.monotonic() < until_s and self._stop_reason is None:
            tel, pose = self.robot.latest_telemetry(), self.robot.latest_pose()
            if (
                tel is not None
                and pose is not None
                and tel.value.timestamp_us != self._prev_tel_us
                and pose.value.timestamp_us != self._prev_pose_us
                and min(tel.received_monotonic_s, pose.received_monotonic_s) >= self._sent_at_s
            ):
                return
            time.sleep(_POLL_S)

    def _read_state(
        self, now_s: float, tel: Stamped[Telemetry] | None, pose: Stamped[Pose] | None
    ) -> tuple[np.ndarray | None, str | None]:
        if self.lockstep:
            # Simulated time stands still between commands: a sample is fresh when it is
            # newer than the last tick's, however long this computer took.
            fault = safety.input_fault(
                now_s, tel, pose, math.inf, math.inf,
                self._prev_tel_us, self._prev_pose_us, self._sent_at_s,
            )  # fmt: skip
        else:
            fault = safety.input_fault(
                now_s, tel, pose, self.cfg.telemetry_stale_s, self.cfg.pose_stale_s
            )
        if fault is not None or tel is None or pose is None:
            return None, fault
        self._prev_tel_us, self._prev_pose_us = tel.value.timestamp_us, pose.value.timestamp_us
        state = self.states.build(tel.value, pose.value)
        return state, safety.state_fault(state)

    def _adapt_and_plan(self, state: np.ndarray) -> tuple[AdaptResult, Any, tuple[float, float]]:
        t0 = time.perf_counter()
        adapt = self.adapter.adapt(*self.history.window(self.adapter.M))
        t1 = time.perf_counter()
        cost = self.objective.rollout_cost(state, self.adapter.params)
        plan = self.planner.plan(cost, self.in_flight, self.low, self.high)
        return adapt, plan, (t1 - t0, time.perf_counter() - t1)

    def _send(self, action: np.ndarray) -> None:
        if not self.motors_on:
            self.robot.start_motors()
            self.motors_on = True
        self._sent_at_s = time.monotonic()  # before sending: the answer cannot precede it
        self.robot.set_leg_velocity(float(action[0]), float(action[1]))
        self.in_flight[:] = action

    def _safe_stop(self, k: int, kind: str, detail: str, events: list[str]) -> None:
        self.robot.stop()
        self.motors_on = False
        if self.lockstep:
            # Advances the simulated clock; the drive stays off until START_MOTORS.
            self._sent_at_s = time.monotonic()
            self.robot.set_leg_velocity(float(self.nominal[0]), float(self.nominal[1]))
        self.in_flight[:] = self.nominal
        self.next_command[:] = self.nominal
        # No transition may span the stop, and rates must not difference across it.
        self.history.break_chain()
        self.states.reset()
        self._count(k, kind, detail, events)

    def _count(self, k: int, kind: str, detail: str, events: list[str]) -> None:
        self.result.events[kind] += 1
        events.append(kind)
        if self.log is not None:
            self.log.write(
                TOPIC_EVENT,
                {"tick": k, "kind": kind, "detail": detail, "count": self.result.events[kind]},
            )

    def _log_tick(
        self, k, t_start, tel, pose, state, fault, sent, planned, adapt, plan, track, times, events
    ):
        """Counts an overrun and writes the tick record (docs/log-format.md)."""
        late_s = time.monotonic() - (t_start if self.lockstep else self._deadline)
        if late_s > self.period_s:
            self.result.overruns += 1
            self._count(k, safety.OVERRUN, f"{late_s * 1e3:.1f} ms", events)
        self.result.ticks = k + 1
        if self.log is not None:
            self.log.write(
                TOPIC_TICK,
                {
                    "tick": k,
                    "t_monotonic_s": t_start,
                    "telemetry": _stamped(tel),
                    "pose": _stamped(pose),
                    "state": state,
                    "command": {
                        "kind": "plan" if sent is not None else "stop",
                        "left_rev_s": float(sent[0]) if sent is not None else None,
                        "right_rev_s": float(sent[1]) if sent is not None else None,
                    },
                    "adaptation": None if adapt is None else asdict(adapt),
                    "planner": None
                    if plan is None
                    else {
                        "best_cost": float(plan.best_cost),
                        "planned_left_rev_s": float(planned[0]),
                        "planned_right_rev_s": float(planned[1]),
                        "pipelined": self.pipelined,
                    },
                    "tracking": None if track is None else asdict(track),
                    "timing": {
                        "adapt_ms": times[0] * 1e3,
                        "plan_ms": times[1] * 1e3,
                        "tick_ms": (time.monotonic() - t_start) * 1e3,
                        "late_ms": late_s * 1e3,
                    },
                    "events": events,
                },
            )
        self.result.tick_times_s.append(time.monotonic() - t_start)


def _stamped(s: Stamped[Any] | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return asdict(s.value) | {
        "received_monotonic_s": s.received_monotonic_s,
        "status_flags": s.status_flags,
    }
