"""The control loop against the fake robot (`roach sim` on a real pty), in process: a board
watchdog trip is noticed and recovered from, a latched e-stop ends the episode, a plan
without a finite cost is a stop, and a stop requested during start never starts the motors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onboard_fixtures import build_model_proto, default_metadata, random_model_arrays

from firmware_bridge.fake.process import running_fake
from firmware_bridge.messages import FLAG_ESTOPPED, FLAG_MOTORS_ON, FLAG_WATCHDOG_TRIPPED
from firmware_bridge.serial_robot import SerialRobot
from onboard import safety
from onboard.adaptation import Adapter
from onboard.config import ControllerConfig, LoopConfig
from onboard.logging_mcap import TickLogWriter, read_log
from onboard.loop import Controller
from onboard.model import LoadedModel, load_model, model_from_arrays
from onboard.objective import Objective
from onboard.planner import Planner, PlannerConfig, make_planner
from onboard.plausibility import IMPLAUSIBLE_MODEL
from onboard.tasks import TaskConfig
from onboard.warmup import warm_up
from robot_contract.errors import ModelFileError
from robot_contract.state import ACTION_HIGH_REV_S, ACTION_LOW_REV_S

REPO = Path(__file__).resolve().parents[3]
LOW, HIGH = np.full(2, ACTION_LOW_REV_S), np.full(2, ACTION_HIGH_REV_S)
PLANNER = PlannerConfig(n_candidates=200, horizon=4)


@contextlib.contextmanager
def fake_robot(clock: str) -> Iterator[str]:
    """`roach sim --clock CLOCK` for the duration; yields its pty path."""
    with running_fake("--clock", clock, "--seed", "0", cwd=str(REPO)) as (_proc, path):
        yield path


def _controller(
    model_path: Path | LoadedModel,
    robot: SerialRobot,
    planner: Any,
    tmp_path: Path,
    lockstep: bool,
) -> Controller:
    model = (
        model_path
        if isinstance(model_path, LoadedModel)
        else load_model(model_path, action_low=tuple(LOW), action_high=tuple(HIGH))
    )
    adapter = Adapter(model, "grbal")
    objective = Objective(model, PLANNER, TaskConfig())
    # As `roach run` does: run every step once before the robot moves, so the first tick
    # costs what every tick costs.
    warm_up(model, adapter, objective, ControllerConfig(planner=PLANNER))
    log = TickLogWriter(tmp_path / "run.mcap", sync_every_s=0.5)
    return Controller(
        robot, adapter, planner, objective, LoopConfig(), LOW, HIGH, log=log, lockstep=lockstep
    )


class StallingPlanner(Planner):
    """Random shooting whose ``stall_at``-th plan takes ``stall_s`` longer: the computer
    hangs mid-tick (a CPU hog, a swap storm) while the board keeps running."""

    def __init__(self, cfg: PlannerConfig, stall_at: int, stall_s: float) -> None:
        super().__init__(make_planner(cfg).optimizer)
        self.calls, self.stall_at, self.stall_s = 0, stall_at, stall_s

    def plan(self, *args: Any) -> Any:
        self.calls += 1
        if self.calls == self.stall_at:
            import time

            time.sleep(self.stall_s)
        return super().plan(*args)


class EstopPressingPlanner(Planner):
    """Random shooting that latches the board's emergency stop during its ``at``-th plan,
    as a person pressing the e-stop mid-episode would."""

    def __init__(self, cfg: PlannerConfig, robot: SerialRobot, at: int) -> None:
        super().__init__(make_planner(cfg).optimizer)
        self.robot, self.calls, self.at = robot, 0, at

    def plan(self, *args: Any) -> Any:
        self.calls += 1
        if self.calls == self.at:
            self.robot.emergency_stop()
        return super().plan(*args)


def test_watchdog_trip_is_noticed_and_the_motors_restart(
    random_model_path: Path, tmp_path: Path
) -> None:
    """A tick stalled past the command timeout trips the board's watchdog: the next tick
    sees the motors off in the telemetry flags, counts robot_stopped and stops, and later
    ticks start the motors again and drive."""
    with fake_robot("realtime") as pty:
        robot = SerialRobot(pty)
        try:
            planner = StallingPlanner(PLANNER, stall_at=8, stall_s=0.6)
            ctl = _controller(random_model_path, robot, planner, tmp_path, lockstep=False)
            try:
                ctl.start()
                result = ctl.run(20)
            finally:
                assert ctl.log is not None
                ctl.log.close(None)
            status = robot.status()
        finally:
            robot.close()
    ticks = read_log(tmp_path / "run.mcap").ticks
    assert status.watchdog_trips >= 1
    stops = [i for i, t in enumerate(ticks) if safety.WATCHDOG_STOP in t["events"]]
    assert result.events[safety.WATCHDOG_STOP] == len(stops) >= 1
    assert stops[0] == 8  # the tick after the stalled one (tick 7 planned 8th: 0-based)
    for i in stops:  # every counted stop is real: the board reported its motors off
        flags = ticks[i]["telemetry"]["status_flags"]
        assert ticks[i]["command"]["kind"] == "stop" and not flags & FLAG_MOTORS_ON
    assert ticks[8]["telemetry"]["status_flags"] & FLAG_WATCHDOG_TRIPPED
    after = ticks[stops[-1] + 1 :]
    assert len(after) >= 5, "the motors never came back"
    assert all(t["command"]["kind"] == "plan" for t in after)
    # From the second tick after the restart on, the board reports the motors running.
    assert all(t["telemetry"]["status_flags"] & FLAG_MOTORS_ON for t in after[1:])
    # The restart begins a new history: the first tick after the stop adapts on nothing.
    assert after[0]["adaptation"]["loss_before"] is None


def test_latched_estop_ends_the_episode(random_model_path: Path, tmp_path: Path) -> None:
    """An emergency stop latched mid-episode: the loop counts robot_estopped, commands a
    stop and ends the episode instead of trying to restart the motors."""
    with fake_robot("lockstep") as pty:
        robot = SerialRobot(pty)
        try:
            planner = EstopPressingPlanner(PLANNER, robot, at=3)
            ctl = _controller(random_model_path, robot, planner, tmp_path, lockstep=True)
            try:
                ctl.start()
                result = ctl.run(30)
            finally:
                assert ctl.log is not None
                ctl.log.close(None)
            status = robot.status()
        finally:
            robot.close()
    assert result.stopped_by == safety.ESTOPPED
    assert result.events[safety.ESTOPPED] == 1 and result.ticks < 30
    last = read_log(tmp_path / "run.mcap").ticks[-1]
    assert last["events"] == [safety.ESTOPPED] and last["command"]["kind"] == "stop"
    assert status.flags & FLAG_ESTOPPED and not status.flags & FLAG_MOTORS_ON


def _exploding_model(path: Path) -> tuple[Path, LoadedModel]:
    """A valid model file whose de-normalised predictions overflow float32 (delta_std at
    the float32 maximum): every rollout's cost is non-finite. Also the same model in
    memory, past the load-time checks that refuse the file."""
    weights, biases, norm = random_model_arrays((32, 32), 0)
    norm["delta_std"] = np.full(24, 3e38, np.float32)
    onnx.save(build_model_proto(weights, biases, norm, default_metadata((32, 32))), str(path))
    return path, model_from_arrays(weights, biases, norm, M=16, inner_lr=0.01)


@pytest.mark.parametrize("kind", ["random", "cem"])
def test_all_non_finite_costs_give_no_best(kind: str) -> None:
    """When every candidate's cost is NaN or inf the plan's cost is inf and its command is
    the command in flight, never a random candidate passed off as best."""
    planner = make_planner(PlannerConfig(kind=kind))

    def cost(a: np.ndarray) -> np.ndarray:
        c = np.full(a.shape[0], np.nan)
        c[::2] = np.inf
        return c

    in_flight = np.array([4.0, 6.5])
    r = planner.plan(cost, in_flight, LOW, HIGH)
    assert r.best_cost == np.inf
    np.testing.assert_array_equal(r.action, in_flight.astype(np.float32))


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_plan_without_finite_cost_is_a_stop(tmp_path: Path) -> None:
    """A model whose predictions blow up is refused at load; past that check (in memory)
    every tick's predicted step is impossible, so every tick commands a stop and counts
    implausible_model, the robot never drives, and numpy prints no overflow warnings."""
    model_path, model = _exploding_model(tmp_path / "exploding.onnx")
    with pytest.raises(ModelFileError, match="implausible prediction"):
        load_model(model_path)
    with fake_robot("lockstep") as pty:
        robot = SerialRobot(pty)
        try:
            ctl = _controller(model, robot, make_planner(PLANNER), tmp_path, True)
            try:
                ctl.start()
                result = ctl.run(6)
            finally:
                assert ctl.log is not None
                ctl.log.close(None)
            status = robot.status()
        finally:
            robot.close()
    ticks = read_log(tmp_path / "run.mcap").ticks
    assert len(ticks) == 6 and result.events[IMPLAUSIBLE_MODEL] == 6
    assert all(t["command"]["kind"] == "stop" for t in ticks)
    assert all(t["planner"] is None for t in ticks)  # it never planned
    assert not status.flags & FLAG_MOTORS_ON


def test_stop_requested_during_start_never_starts_the_motors(
    random_model_path: Path, tmp_path: Path
) -> None:
    """A stop requested before the start sequence finishes: no START_MOTORS is sent, the
    episode runs no tick, and shutting down twice sends its stops once."""
    with fake_robot("lockstep") as pty:
        robot = SerialRobot(pty)
        try:
            ctl = _controller(
                random_model_path, robot, make_planner(PLANNER), tmp_path, lockstep=True
            )
            ctl.request_stop("SIGINT")
            try:
                hello = ctl.start()
                result = ctl.run(10)
                sent = robot.frames_sent
                ctl.shutdown()
            finally:
                assert ctl.log is not None
                ctl.log.close(None)
            assert robot.frames_sent == sent  # the second shutdown sent nothing
            status = robot.status()
        finally:
            robot.close()
    assert hello["name"] == "sim-lockstep"
    assert result.ticks == 0 and result.stopped_by == "SIGINT"
    assert not status.flags & FLAG_MOTORS_ON and status.watchdog_trips == 0
