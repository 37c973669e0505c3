"""The plausibility envelope and the prediction bound, in process: the rules of
onboard/plausibility.py on their own, then in the tick against a scripted robot (the real
adapter, objective, planner and MCAP log on a small random model)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scripted_robot import Fault, ScriptedRobot

from firmware_bridge.records import Pose, Telemetry
from firmware_bridge.robot import Stamped
from onboard import plausibility as pl
from onboard.adaptation import Adapter
from onboard.config import LoopConfig
from onboard.logging_mcap import TickLogWriter, read_log
from onboard.loop import Controller
from onboard.model import LoadedModel, load_model
from onboard.objective import Objective
from onboard.planner import PlannerConfig, make_planner
from onboard.plausibility import Envelope, PlausibilityConfig
from onboard.tasks import TaskConfig
from robot_contract.state import ACTION_HIGH_REV_S, ACTION_LOW_REV_S

LOW, HIGH = np.full(2, ACTION_LOW_REV_S), np.full(2, ACTION_HIGH_REV_S)
PLANNER = PlannerConfig(n_candidates=64, horizon=3)
LOCKSTEP = LoopConfig(lockstep_timeout_s=0.01)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    from onboard_fixtures import write_random_model

    return load_model(write_random_model(tmp_path_factory.mktemp("m") / "m.onnx"))


def _episode(
    model: LoadedModel,
    tmp_path: Path,
    script: dict[int, Fault] | None = None,
    steps: int = 8,
    bounds: PlausibilityConfig | None = None,
    adapter: Adapter | None = None,
    robot: ScriptedRobot | None = None,
    realtime: bool = False,
    cfg: LoopConfig = LOCKSTEP,
) -> tuple[Controller, ScriptedRobot, list[dict[str, Any]]]:
    robot = robot or ScriptedRobot(script, realtime=realtime)
    path = tmp_path / f"run-{time.monotonic_ns()}.mcap"
    log = TickLogWriter(path)
    ctl = Controller(
        robot, adapter or Adapter(model, "grbal", M=4), make_planner(PLANNER, True),
        Objective(model, PLANNER, TaskConfig()), cfg, LOW, HIGH, log=log,
        lockstep=not realtime, plausibility=bounds,
    )  # fmt: skip
    try:
        ctl.start()
        ctl.run(steps)
    finally:
        log.close(ctl.result.as_dict())
    return ctl, robot, read_log(path).ticks


def _kinds(ticks: list[dict[str, Any]]) -> list[str]:
    return [t["command"]["kind"] for t in ticks]


# -- the rules on their own ----------------------------------------------------------------


def _tel(t_us: int, battery_mv: int = 3900) -> Telemetry:
    return Telemetry(0, t_us, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4096, 0, 0, battery_mv)


def _pose(t_us: int, x: float = 0.0, roll: float = 0.0, pitch: float = 0.0) -> Pose:
    return Pose(x, 0.0, 0.03, roll, pitch, 0.0, t_us)


def test_teleport_is_refused_until_the_time_allows_the_distance() -> None:
    """A pose 5 m from the last accepted one 0.1 s later is pose_jump; the refusal holds
    while the distance is beyond max_speed x the time since the last accepted pose."""
    env = Envelope(PlausibilityConfig(), False, 1.0, 1.0)
    now = time.monotonic()
    assert env.inputs(now, Stamped(_tel(0), now), Stamped(_pose(0), now)) is None
    for k in (1, 2, 3):
        jumped = Stamped(_pose(k * 100_000, x=5.0), now)
        assert env.inputs(now, Stamped(_tel(k * 100_000), now), jumped) == pl.POSE_JUMP
    assert "5 m" in env.detail
    # A second later 5 m is 5 m/s, the bound: the tracker's new position is accepted.
    assert (
        env.inputs(now, Stamped(_tel(1_000_000), now), Stamped(_pose(1_000_000, 5.0), now)) is None
    )


@pytest.mark.parametrize(
    ("pose", "kind"),
    [
        (Pose(1e38, 0.0, 0.03, 0.0, 0.0, 0.0, 0), pl.POSE_OUT_OF_RANGE),
        (Pose(0.0, -150.0, 0.03, 0.0, 0.0, 0.0, 0), pl.POSE_OUT_OF_RANGE),
        (Pose(0.0, 0.0, 0.03, math.pi, 0.0, 0.0, 0), pl.TIPPED_OVER),
        (Pose(0.0, 0.0, 0.03, 0.0, math.radians(-75), 0.0, 0), pl.TIPPED_OVER),
        (Pose(0.0, 0.0, 0.03, 3 * math.pi, 0.0, 0.0, 0), pl.TIPPED_OVER),
        (Pose(0.0, 0.0, 0.03, math.radians(30), math.radians(-30), 0.0, 0), None),
    ],
)
def test_pose_envelope(pose: Pose, kind: str | None) -> None:
    """Positions beyond max_position_m and roll or pitch beyond max_tilt_deg (any multiple
    of a turn) are refused; a 30 degree tilt is not."""
    env = Envelope(PlausibilityConfig(), False, 1.0, 1.0)
    now = time.monotonic()
    assert env.inputs(now, Stamped(_tel(0), now), Stamped(pose, now)) == kind


@pytest.mark.parametrize(
    ("index", "value", "kind"),
    [
        (19, 305_000.0, pl.LEG_RATE_RANGE),
        (20, -41.0, pl.LEG_RATE_RANGE),
        (23, -32.8, pl.BATTERY_RANGE),
        (23, 7.4, pl.BATTERY_RANGE),
        (23, 1.9, pl.BATTERY_RANGE),
        (23, 3.1, None),
    ],
)
def test_state_envelope(index: int, value: float, kind: str | None) -> None:
    """Leg rates beyond max_leg_rate_rev_s and a battery outside its range are refused."""
    state = np.zeros(24)
    state[23] = 3.9
    state[index] = value
    assert Envelope(PlausibilityConfig(), False, 1.0, 1.0).state(state) == kind


def test_board_time_backwards_and_stalled() -> None:
    """Board time going backwards is refused at once; standing still for board_stall_ticks
    ticks in a row is refused; a u32 wrap is neither."""
    env = Envelope(PlausibilityConfig(board_stall_ticks=2), False, 1.0, 1.0)
    now = time.monotonic()

    def check(t_us: int, pose_us: int) -> str | None:
        return env.inputs(now, Stamped(_tel(t_us), now), Stamped(_pose(pose_us), now))

    assert check(0xFFFF_0000, 0) is None
    assert check(0x0000_1000, 100_000) is None  # wrapped: +0x11000 us
    assert check(0x0000_0800, 200_000) == pl.BOARD_TIME_BACKWARDS
    env = Envelope(PlausibilityConfig(board_stall_ticks=2), False, 1.0, 1.0)
    assert check(5, 0) is None
    assert check(5, 100_000) is None  # one repeat: not yet
    assert check(5, 200_000) == pl.BOARD_TIME_STALLED
    assert check(0, 300_000) == pl.BOARD_TIME_BACKWARDS


def test_samples_old_by_their_own_stamps_are_refused() -> None:
    """Realtime: samples queued while this computer stalled arrive late but carry their
    old timestamps; their age by stamp (not by arrival) exceeds the limit: old_telemetry."""
    env = Envelope(PlausibilityConfig(), True, 0.25, 0.25)
    t0 = time.monotonic()
    for k in range(5):  # steady stream, 2 ms link latency
        now = t0 + 0.1 * k
        tel = Stamped(_tel(k * 100_000), now - 0.002)
        assert env.inputs(now, tel, Stamped(_pose(k * 100_000), now - 0.002)) is None
    # 2 s stall: the reader delivers the sample stamped just after tick 4, arriving now.
    now = t0 + 0.4 + 2.0
    late = Stamped(_tel(410_000), now - 0.001)
    assert env.inputs(now, late, Stamped(_pose(410_000), now - 0.001)) == pl.OLD_TELEMETRY
    assert "ms old by its stamp" in env.detail


def test_prediction_bound() -> None:
    """A predicted move, speed, leg rate or battery step beyond the bounds is impossible."""
    env = Envelope(PlausibilityConfig(), False, 1.0, 1.0)
    state = np.zeros(24)
    assert env.prediction_fault(state, np.zeros(24), 0.1) == ""
    for index, value in ((0, 2.0), (3, 11.0), (19, 61.0), (23, 0.6)):
        delta = np.zeros(24)
        delta[index] = value
        assert env.prediction_fault(state, delta, 0.1), index


# -- in the tick ---------------------------------------------------------------------------


def test_tipped_over_robot_is_stopped_on_the_first_tilted_sample(
    model: LoadedModel, tmp_path: Path
) -> None:
    """From the first sample whose roll says the robot is on its back, every tick commands
    a stop with tipped_over; nothing is planned from those samples."""
    script = {k: Fault(pose={"roll": math.pi}) for k in range(4, 12)}
    _ctl, _robot, ticks = _episode(model, tmp_path, script, steps=8)
    tilted = [i for i, t in enumerate(ticks) if t["pose"]["roll"] == pytest.approx(math.pi)]
    assert tilted, "no tilted sample reached a tick"
    assert all(ticks[i]["events"][0] == pl.TIPPED_OVER for i in tilted)
    assert all(ticks[i]["command"]["kind"] == "stop" for i in tilted)
    assert all(ticks[i]["planner"] is None for i in tilted)
    assert all(k == "plan" for k in _kinds(ticks[: tilted[0]])[1:])


def test_teleporting_pose_is_refused_in_the_tick(model: LoadedModel, tmp_path: Path) -> None:
    """A pose 5 m away for one sample is pose_jump and a stop; the robot drives on when the
    tracker's pose is back."""
    _ctl, _robot, ticks = _episode(model, tmp_path, {3: Fault(pose={"y": 5.0})}, steps=7)
    jumped = [i for i, t in enumerate(ticks) if t["pose"]["y"] == 5.0]
    assert len(jumped) == 1
    i = jumped[0]
    assert ticks[i]["events"] == [pl.POSE_JUMP] and ticks[i]["command"]["kind"] == "stop"
    assert ticks[i]["state"] is None
    assert _kinds(ticks[i + 2 :]) == ["plan"] * len(ticks[i + 2 :])


def test_off_path_is_a_stop(model: LoadedModel, tmp_path: Path) -> None:
    """Farther from the path (placed at the first state) than max_tracking_error_m:
    off_path, a stop on every such tick."""
    bounds = PlausibilityConfig(max_tracking_error_m=0.5, max_speed_m_s=100.0)
    script = {k: Fault(pose={"y": 0.8}) for k in range(3, 20)}
    _ctl, _robot, ticks = _episode(model, tmp_path, script, steps=7, bounds=bounds)
    off = [t for t in ticks if t["pose"]["y"] == 0.8]
    assert len(off) >= 3
    assert all(t["events"] == [pl.OFF_PATH] and t["command"]["kind"] == "stop" for t in off)


def test_stalled_board_time_is_a_stop(model: LoadedModel, tmp_path: Path) -> None:
    """Realtime: telemetry that keeps arriving with one board timestamp (a stuck board)
    is board_time_stalled after board_stall_ticks ticks."""
    cfg = LoopConfig(rate_hz=100.0, command_timeout_ms=50)
    script = {k: Fault(repeat=True) for k in range(5, 40)}
    robot = ScriptedRobot(script, realtime=True)
    orig = robot._produce

    def stuck() -> None:  # every sample from 5 on carries sample 4's timestamp
        orig()
        if robot.index > 5 and robot._tel is not None and robot._pose is not None:
            tel = robot._tel
            robot._tel = Stamped(
                Telemetry(*(tel.value.sample_index, 400_000), *TELEMETRY_REST(tel.value)),
                tel.received_monotonic_s,
                tel.status_flags,
            )

    robot._produce = stuck  # type: ignore[method-assign]
    _ctl, _robot, ticks = _episode(model, tmp_path, robot=robot, steps=8, cfg=cfg, realtime=True)
    events = [e for t in ticks for e in t["events"]]
    assert pl.BOARD_TIME_STALLED in events


def TELEMETRY_REST(t: Telemetry) -> tuple[int, ...]:
    return (
        t.left_pos, t.right_pos, t.left_cmd, t.right_cmd, t.left_duty, t.right_duty,
        t.gyro_x, t.gyro_y, t.gyro_z, t.accel_x, t.accel_y, t.accel_z,
        t.bemf_left, t.bemf_right, t.battery_mv,
    )  # fmt: skip


class _AbsurdAdapter(Adapter):
    """The real adapter whose adapted parameters are scaled by 1e4 (a step gone wrong)."""

    def adapt(self, states: np.ndarray, actions: np.ndarray) -> Any:
        result = super().adapt(states, actions)
        self._absurd = (np.asarray(super().params) * 1e4).astype(np.float32)
        return result

    @property
    def params(self) -> np.ndarray:
        return getattr(self, "_absurd", self.meta_params)


def test_absurd_adapted_model_falls_back_to_the_meta_learned_one(
    model: LoadedModel, tmp_path: Path
) -> None:
    """Adapted parameters that predict the impossible are not planned with: the tick plans
    with the meta-learned parameters (implausible_prediction, counted) and drives."""
    adapter = _AbsurdAdapter(model, "grbal", M=4)
    ctl, _robot, ticks = _episode(model, tmp_path, steps=6, adapter=adapter)
    assert ctl.result.events[pl.IMPLAUSIBLE_PREDICTION] >= 5
    assert _kinds(ticks[1:]) == ["plan"] * 5
    assert ctl.result.events[pl.IMPLAUSIBLE_MODEL] == 0
