"""The control loop: read, update history, adapt, plan, command, log, at a fixed rate.

One episode (docs/controller.md):
  start:  hello -> set the command timeout -> start telemetry -> wait for the first
          telemetry and pose -> start motors -> send the nominal action (middle of the
          bounds). The nominal action is the first command in flight.
  tick k: at deadline ``t0 + k / rate_hz`` (realtime), or as soon as telemetry and pose
          newer than tick k-1's have arrived (lockstep): read -> state -> history ->
          adapt -> plan -> send -> log. Unusable input (missing, stale, non-finite),
          a board whose motors are off while the loop drives (watchdog trip), or a
          non-finite plan commands a stop instead and counts an event: the loop never
          raises for the robot's data. The next good tick starts the motors again. A
          latched emergency stop ends the episode.
  end:    after ``steps`` ticks or ``request_stop`` (SIGINT/SIGTERM): stop motors, stop
          telemetry, both sent without waiting (the link may be dead), once. The
          caller closes the log.

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
from typing import Any

import numpy as np

from firmware_bridge.messages import FLAG_MOTORS_ON
from firmware_bridge.records import Pose, Telemetry
from firmware_bridge.robot import Robot, Stamped
from firmware_bridge.state_builder import StateBuilder
from onboard import safety
from onboard.adaptation import Adapter, AdaptResult
from onboard.config import LoopConfig
from onboard.history import TransitionHistory
from onboard.logging_mcap import TOPIC_EVENT, TOPIC_TICK, TickLogWriter
from onboard.objective import Objective, PlannerLike
from onboard.tasks import TrackPoint
from onboard.tick_record import LoopResult, tick_record
from robot_contract.errors import LinkError

__all__ = ["Controller", "LoopResult", "Objective"]

_POLL_S = 0.0005  # lockstep polling interval, small against the control period


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
        """START_MOTORS was sent and no stop since (what the loop believes)."""
        self._motors_confirmed = False  # a sample since START_MOTORS showed the motors on
        self._start_sent_s = -math.inf  # when START_MOTORS was last sent (monotonic)
        # Realtime: samples in flight when START_MOTORS went out still show the motors off,
        # so only a start unconfirmed for a whole command timeout is a failed one. Lockstep:
        # a tick's sample answers the commands sent before it, in order.
        self._confirm_s = 0.0 if lockstep else cfg.command_timeout_ms / 1000.0
        self.result = LoopResult()
        self._stop_reason: str | None = None
        self._shut_down = False
        self._prev_tel_us: int | None = None
        self._prev_pose_us: int | None = None
        self._deadline = 0.0
        self._sent_at_s = -math.inf  # when the last SET_LEG_VELOCITY was sent (monotonic)

    def request_stop(self, reason: str) -> None:
        """Ends the episode within one control period. Safe to call from a signal handler."""
        self._stop_reason = reason

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
        if not self.lockstep:
            # Never start the motors blind. (A lockstep simulation sends its first sample
            # only after the first command, which tick 0 then waits for.)
            self._wait_fresh(time.monotonic() + 1.0)
            tel, pose = self.robot.latest_telemetry(), self.robot.latest_pose()
            if self._stop_reason is None and (tel is None or pose is None):
                self.shutdown()
                missing = "telemetry" if tel is None else "pose"
                raise LinkError(f"no {missing} within 1 s of starting the telemetry stream")
        if self._stop_reason is not None:
            self.shutdown()
            return dict(hello)
        # Waited for: a refusal here is a clear error before the episode, not a stop.
        self.robot.start_motors()
        self._motors_started()
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
                fault = safety.action_fault(action, float(plan.best_cost))
                if fault is not None:
                    detail = f"planned {action.tolist()}, best cost {float(plan.best_cost)}"
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
            if fault in (safety.WATCHDOG_STOP, safety.ESTOPPED) and tel is not None:
                detail = f"status flags 0x{tel.status_flags:02x}"
            self._safe_stop(k, fault, detail, events)
            if fault == safety.ESTOPPED and self._stop_reason is None:
                self._stop_reason = safety.ESTOPPED  # only a person may clear the latch
        self._log_tick(
            k, t_start, tel, pose, state, sent, action, adapt, plan, track, times, events
        )

    def shutdown(self) -> None:
        """Stop the motors and the telemetry stream: sent without waiting for answers (the
        link may be dead), once however often called. Never raises."""
        if self._shut_down:
            return
        self._shut_down = True
        self.motors_on = False
        with contextlib.suppress(Exception):
            self.robot.stop()
        with contextlib.suppress(Exception):
            self.robot.stop_telemetry_nowait()

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
        fault = self._board_fault(tel)
        if fault is not None:
            return None, fault
        state = self.states.build(tel.value, pose.value)
        return state, safety.state_fault(state)

    def _board_fault(self, tel: Stamped[Telemetry]) -> str | None:
        """Checks the telemetry's status flags against the motors the loop started."""
        flags = tel.status_flags
        after_start = tel.received_monotonic_s >= self._start_sent_s
        if self.motors_on and after_start and flags & FLAG_MOTORS_ON:
            self._motors_confirmed = True
        return safety.board_fault(
            flags,
            self.motors_on and after_start,
            self._motors_confirmed,
            tel.received_monotonic_s - self._start_sent_s,
            self._confirm_s,
        )

    def _adapt_and_plan(self, state: np.ndarray) -> tuple[AdaptResult, Any, tuple[float, float]]:
        # Blown-up predictions overflow; the tick's guards turn them into a stop, so
        # numpy's warnings would only be noise on stderr from inside the tick.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            t0 = time.perf_counter()
            adapt = self.adapter.adapt(*self.history.window(self.adapter.M))
            t1 = time.perf_counter()
            cost = self.objective.rollout_cost(state, self.adapter.params)
            plan = self.planner.plan(cost, self.in_flight, self.low, self.high)
        return adapt, plan, (t1 - t0, time.perf_counter() - t1)

    def _motors_started(self) -> None:
        self.motors_on = True
        self._motors_confirmed = False
        self._start_sent_s = time.monotonic()

    def _send(self, action: np.ndarray) -> None:
        if not self.motors_on:
            # Not waited for: an ack round trip inside the tick would delay the command,
            # and a refusal must not end the run; the telemetry flags say whether it took.
            self.robot.start_motors_nowait()
            self._motors_started()
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
        self, k, t_start, tel, pose, state, sent, planned, adapt, plan, track, times, events
    ):
        """Counts an overrun and writes the tick record (docs/log-format.md)."""
        late_s = time.monotonic() - (t_start if self.lockstep else self._deadline)
        if late_s > self.period_s:
            self.result.overruns += 1
            self._count(k, safety.OVERRUN, f"{late_s * 1e3:.1f} ms", events)
        self.result.ticks = k + 1
        if self.log is not None:
            tick_s = time.monotonic() - t_start
            record = tick_record(
                k, t_start, tel, pose, state, sent, planned, adapt, plan, track, times,
                tick_s, late_s, self.pipelined, events,
            )  # fmt: skip
            self.log.write(TOPIC_TICK, record)
        self.result.tick_times_s.append(time.monotonic() - t_start)
