"""The control tick's decisions, in process: a scripted robot (no subprocess, no pty, no
MuJoCo), the real adapter, objective and planner on a small random model, and the real
MCAP log read back. The pty end-to-end tests (test_loop_robot_faults.py, tests/tools)
remain the system check."""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scripted_robot import Fault, ScriptedRobot

from firmware_bridge.messages import FLAG_ESTOPPED, FLAG_MOTORS_ON
from onboard import safety
from onboard.adaptation import Adapter
from onboard.config import LoopConfig
from onboard.logging_mcap import TickLogWriter, read_log
from onboard.loop import Controller
from onboard.model import LoadedModel, load_model
from onboard.objective import Objective
from onboard.planner import Planner, PlannerConfig, PlanResult, RolloutCost, make_planner
from onboard.plausibility import POSE_OUT_OF_RANGE
from onboard.tasks import TaskConfig
from robot_contract.errors import ConfigError, LinkError, ProtocolError
from robot_contract.state import ACTION_HIGH_REV_S, ACTION_LOW_REV_S

LOW, HIGH = np.full(2, ACTION_LOW_REV_S), np.full(2, ACTION_HIGH_REV_S)
NOMINAL = (LOW + HIGH) / 2
PLANNER = PlannerConfig(n_candidates=64, horizon=3)
LOCKSTEP = LoopConfig(lockstep_timeout_s=0.01)


class ScriptedPlanner(Planner):
    """The real planner, except at the plans listed: ``raise``, ``inf`` (no finite cost)
    or ``stall:S`` (takes S seconds longer)."""

    def __init__(self, fix_first_action: bool, script: dict[int, str]) -> None:
        super().__init__(make_planner(PLANNER).optimizer, fix_first_action)
        self.script, self.calls = script, 0

    def plan(
        self, cost: RolloutCost, action_in_flight: np.ndarray, low: np.ndarray, high: np.ndarray
    ) -> PlanResult:
        what = self.script.get(self.calls, "")
        self.calls += 1
        if what == "raise":
            raise RuntimeError("scripted planner failure")
        if what.startswith("stall:"):
            time.sleep(float(what.split(":")[1]))
        result = super().plan(cost, action_in_flight, low, high)
        if what == "inf":
            return dataclasses.replace(result, best_cost=math.inf)
        return result


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    from onboard_fixtures import write_random_model

    return load_model(write_random_model(tmp_path_factory.mktemp("m") / "m.onnx"))


Episode = Callable[..., tuple[Controller, ScriptedRobot, list[dict[str, Any]]]]


@pytest.fixture
def episode(model: LoadedModel, tmp_path: Path) -> Episode:
    """Runs one episode: ``episode(script, steps, cfg=..., planner=..., realtime=...)``;
    returns the controller, the robot and the logged tick records."""

    def run(
        script: dict[int, Fault] | None = None,
        steps: int = 8,
        cfg: LoopConfig = LOCKSTEP,
        planner: Planner | None = None,
        realtime: bool = False,
        robot: ScriptedRobot | None = None,
    ) -> tuple[Controller, ScriptedRobot, list[dict[str, Any]]]:
        robot = robot or ScriptedRobot(script, realtime=realtime)
        planner = planner or make_planner(PLANNER, cfg.pipelined)
        objective = Objective(model, PLANNER, TaskConfig())
        path = tmp_path / f"run-{time.monotonic_ns()}.mcap"
        log = TickLogWriter(path)
        ctl = Controller(
            robot, Adapter(model, "grbal", M=4), planner, objective, cfg, LOW, HIGH,
            log=log, lockstep=not realtime,
        )  # fmt: skip
        try:
            ctl.start()
            ctl.run(steps)
        finally:
            log.close(ctl.result.as_dict())
        return ctl, robot, read_log(path).ticks

    return run


def _cmd(tick: dict[str, Any]) -> tuple[float, float]:
    c = tick["command"]
    return (c["left_rev_s"], c["right_rev_s"])


def _planned(tick: dict[str, Any]) -> tuple[float, float]:
    p = tick["planner"]
    return (p["planned_left_rev_s"], p["planned_right_rev_s"])


def test_start_sequence_and_first_command_is_nominal(episode: Episode) -> None:
    """Start: hello, command timeout, telemetry, START_MOTORS (waited), then the nominal
    command; the episode ends with STOP_MOTORS and STOP_TELEMETRY, sent once."""
    ctl, robot, _ticks = episode(steps=3)
    names = robot.names()
    assert names[:5] == [
        "hello", "set_command_timeout", "start_telemetry", "start_motors", "set_leg_velocity",
    ]  # fmt: skip
    assert robot.commands()[0] == tuple(NOMINAL)
    assert names[-2:] == ["stop", "stop_telemetry_nowait"]
    ctl.shutdown()
    assert robot.names()[-2:] == ["stop", "stop_telemetry_nowait"] and len(robot.calls) == len(
        names
    )


def test_pipelined_sends_last_ticks_plan_at_the_tick_start(episode: Episode) -> None:
    """Pipelined: tick k sends the command tick k-1 planned (tick 0 the nominal one), and
    every plan is made with that command as its fixed first step."""
    _ctl, robot, ticks = episode(steps=6)
    assert [t["command"]["kind"] for t in ticks] == ["plan"] * 6
    assert _cmd(ticks[0]) == tuple(NOMINAL)
    for prev, tick in itertools.pairwise(ticks):
        assert _cmd(tick) == pytest.approx(_planned(prev), abs=1e-6)
        assert tick["planner"]["pipelined"] is True
    # start's nominal, then one command per tick
    assert len(robot.commands()) == 1 + 6


def test_immediate_sends_the_plan_of_the_same_tick(episode: Episode) -> None:
    """Immediate: tick k sends its own plan's first step as soon as planning ends."""
    cfg = dataclasses.replace(LOCKSTEP, command_timing="immediate")
    _ctl, robot, ticks = episode(steps=5, cfg=cfg)
    for tick in ticks:
        assert _cmd(tick) == pytest.approx(_planned(tick), abs=1e-6)
        assert tick["planner"]["pipelined"] is False
    np.testing.assert_allclose(robot.commands()[1:], [_planned(t) for t in ticks], atol=1e-6)


def test_planner_must_match_the_command_timing(model: LoadedModel) -> None:
    """A planner that does not fix its first step cannot serve pipelined timing."""
    with pytest.raises(ConfigError, match="fix_first_action"):
        Controller(
            ScriptedRobot(), Adapter(model, "grbal", M=4), make_planner(PLANNER, False),
            Objective(model, PLANNER, TaskConfig()), LOCKSTEP, LOW, HIGH,
        )  # fmt: skip


def test_no_sample_at_all_is_a_no_telemetry_stop(episode: Episode) -> None:
    """Tick 0 gets no answer to the first command: no_telemetry, a stop, and no plan."""
    _ctl, _robot, ticks = episode({0: Fault(silent=True)}, steps=3)
    assert ticks[0]["events"] == [safety.NO_TELEMETRY]
    assert ticks[0]["command"]["kind"] == "stop" and ticks[0]["planner"] is None
    assert [t["command"]["kind"] for t in ticks[1:]] == ["plan", "plan"]


def test_repeated_sample_is_stale_in_lockstep(episode: Episode) -> None:
    """A sample with the previous tick's timestamps is stale whatever its arrival time."""
    _ctl, _robot, ticks = episode({3: Fault(repeat=True)}, steps=6)
    assert ticks[3]["events"] == [safety.STALE_TELEMETRY]
    assert ticks[3]["command"]["kind"] == "stop"
    assert all(t["command"]["kind"] == "plan" for t in ticks[4:])


def test_old_sample_is_stale_in_realtime(episode: Episode) -> None:
    """Realtime: a sample that arrived longer ago than telemetry_stale_s is a stop.
    (Realtime samples: 0 and 1 are read by the start sequence, tick k reads k + 2.)"""
    cfg = LoopConfig(rate_hz=100.0, command_timeout_ms=50, telemetry_stale_s=0.05)
    _ctl, _robot, ticks = episode({4: Fault(age_s=0.2)}, steps=5, cfg=cfg, realtime=True)
    assert ticks[2]["events"] == [safety.STALE_TELEMETRY]
    assert [t["command"]["kind"] for t in ticks] == ["plan", "plan", "stop", "plan", "plan"]


def test_non_finite_pose_is_a_stop(episode: Episode) -> None:
    """A NaN in the pose is nan_pose: a stop, and nothing of it reaches the planner."""
    _ctl, _robot, ticks = episode({2: Fault(pose={"yaw": math.nan})}, steps=4)
    assert ticks[2]["events"] == [safety.NAN_POSE] and ticks[2]["state"] is None
    assert ticks[2]["command"]["kind"] == "stop"


def test_overflowing_pose_is_refused_before_the_state(episode: Episode) -> None:
    """A finite pose far beyond any tracker's range (whose difference from the last would
    overflow the velocity) is pose_out_of_range: a stop, before any state is built."""
    _ctl, _robot, ticks = episode({2: Fault(pose={"x": 1.7e308})}, steps=4)
    assert ticks[2]["events"] == [POSE_OUT_OF_RANGE] and ticks[2]["state"] is None
    assert ticks[2]["command"]["kind"] == "stop"


def test_motors_off_in_the_flags_is_a_stop_then_the_motors_restart(episode: Episode) -> None:
    """The board reports its motors off while the loop drives (watchdog trip): the tick
    counts robot_stopped and stops; the next tick sends START_MOTORS before its command
    and drives again, on a new history."""
    ctl, robot, ticks = episode({3: Fault(flags_clear=FLAG_MOTORS_ON)}, steps=6)
    assert ticks[3]["events"] == [safety.WATCHDOG_STOP]
    assert ticks[3]["command"]["kind"] == "stop"
    assert all(t["command"]["kind"] == "plan" for t in ticks[4:])
    names = robot.names()
    i = names.index("start_motors_nowait")
    assert names[i + 1] == "set_leg_velocity" and names[i - 2 : i] == ["stop", "set_leg_velocity"]
    # After the stop the pipeline restarts from the nominal command, on a new history.
    assert _cmd(ticks[4]) == tuple(NOMINAL)
    assert ticks[4]["adaptation"]["loss_before"] is None
    assert ctl.result.stopped_by is None


def test_latched_estop_ends_the_episode(episode: Episode) -> None:
    """The e-stop latched: robot_estopped, a stop, and no tick after it."""
    ctl, robot, ticks = episode({2: Fault(flags_set=FLAG_ESTOPPED)}, steps=8)
    assert len(ticks) == 3 and ticks[2]["events"] == [safety.ESTOPPED]
    assert ctl.result.stopped_by == safety.ESTOPPED
    assert "start_motors_nowait" not in robot.names()


def test_plan_without_a_finite_cost_is_a_stop(episode: Episode) -> None:
    """A plan whose best cost is inf is nan_action: a stop, never sent."""
    planner = ScriptedPlanner(True, {2: "inf"})
    _ctl, _robot, ticks = episode(steps=4, planner=planner)
    assert ticks[2]["events"] == [safety.NAN_ACTION]
    assert ticks[2]["command"]["kind"] == "stop"
    assert _cmd(ticks[3]) == tuple(NOMINAL)  # tick 2's plan never went out


def test_controller_exception_is_a_stop_not_a_crash(episode: Episode) -> None:
    """An exception inside adapt/plan is controller_error: the tick stops the robot, the
    episode goes on and the next tick drives."""
    planner = ScriptedPlanner(True, {1: "raise"})
    ctl, _robot, ticks = episode(steps=4, planner=planner)
    assert ticks[1]["events"] == [safety.CONTROLLER_ERROR]
    assert ctl.result.ticks == 4 and ticks[2]["command"]["kind"] == "plan"


def test_slow_tick_is_an_overrun(episode: Episode) -> None:
    """A tick that takes longer than the period is counted and logged as an overrun, and
    still sends its command."""
    cfg = dataclasses.replace(LOCKSTEP, rate_hz=100.0, command_timeout_ms=50)
    planner = ScriptedPlanner(True, {2: "stall:0.02"})
    ctl, _robot, ticks = episode(steps=4, cfg=cfg, planner=planner)
    assert ctl.result.overruns == 1 and ticks[2]["events"] == [safety.OVERRUN]
    assert ticks[2]["timing"]["late_ms"] > 10.0
    assert ticks[2]["command"]["kind"] == "plan"


def test_lockstep_stop_keeps_simulated_time_going(episode: Episode) -> None:
    """A lockstep stop tick sends STOP_MOTORS, then the nominal setpoint with the motors
    off, so the simulation answers and the next tick has a fresh sample."""
    _ctl, robot, ticks = episode({2: Fault(pose={"z": math.inf})}, steps=4)
    names = robot.names()
    i = names.index("stop")
    assert names[i + 1] == "set_leg_velocity" and robot.calls[i + 1][1] == tuple(NOMINAL)
    assert ticks[3]["events"] == [] and ticks[3]["command"]["kind"] == "plan"


def test_link_down_then_back(episode: Episode) -> None:
    """No answers for three periods: the ticks stop (stale), and when the samples come back
    the loop restarts the motors and drives."""
    script = {k: Fault(silent=True) for k in (3, 4, 5)}
    ctl, _robot, ticks = episode(script, steps=8)
    kinds = [t["command"]["kind"] for t in ticks]
    assert kinds[3:6] == ["stop"] * 3 and kinds[6:] == ["plan", "plan"]
    assert ctl.result.events[safety.STALE_TELEMETRY] == 3


def test_send_that_raises_stops_the_motors_and_propagates(episode: Episode) -> None:
    """A robot whose command send raises: the error leaves run(), after STOP_MOTORS, and
    the ticks before it are in the log."""
    robot = ScriptedRobot({3: Fault(send_raises=True)})
    with pytest.raises(LinkError, match="link is gone"):
        episode(steps=6, robot=robot)
    names = robot.names()
    assert names[-2:] == ["stop", "stop_telemetry_nowait"]
    assert names.count("set_leg_velocity") == 4  # start, ticks 0 and 1, tick 2's (raised)


def test_stop_requested_before_start_never_starts_the_motors(
    model: LoadedModel, episode: Episode
) -> None:
    """A stop requested during start: no START_MOTORS, no command, no tick."""
    robot = ScriptedRobot()
    ctl = Controller(
        robot, Adapter(model, "grbal", M=4), make_planner(PLANNER),
        Objective(model, PLANNER, TaskConfig()), LOCKSTEP, LOW, HIGH,
        lockstep=True,
    )  # fmt: skip
    ctl.request_stop("SIGTERM")
    ctl.start()
    result = ctl.run(5)
    assert result.ticks == 0 and result.stopped_by == "SIGTERM"
    assert "start_motors" not in robot.names() and not robot.commands()


def test_refused_start_raises_before_any_command(model: LoadedModel) -> None:
    """START_MOTORS refused (e-stop latched before the run): ProtocolError, no command."""
    robot = ScriptedRobot()
    robot.estop_latched = True
    ctl = Controller(
        robot, Adapter(model, "grbal", M=4), make_planner(PLANNER),
        Objective(model, PLANNER, TaskConfig()), LOCKSTEP, LOW, HIGH,
        lockstep=True,
    )  # fmt: skip
    with pytest.raises(ProtocolError, match="refused"):
        ctl.start()
    assert not robot.commands()


def test_realtime_start_without_samples_never_starts_the_motors(
    model: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Realtime: no telemetry after START_TELEMETRY is a LinkError naming what is missing,
    and the motors are never started (a robot is never driven blind)."""
    monkeypatch.setattr("onboard.clock.FIRST_SAMPLE_TIMEOUT_S", 0.05)
    robot = ScriptedRobot()  # lockstep-style: it answers only commands, so never here
    cfg = LoopConfig(rate_hz=100.0, command_timeout_ms=50)
    ctl = Controller(
        robot, Adapter(model, "grbal", M=4), make_planner(PLANNER),
        Objective(model, PLANNER, TaskConfig()), cfg, LOW, HIGH,
    )  # fmt: skip
    with pytest.raises(LinkError, match=r"no telemetry within 0\.05 s"):
        ctl.start()
    assert "start_motors" not in robot.names() and not robot.commands()
    assert robot.names()[-2:] == ["stop", "stop_telemetry_nowait"]
