"""The MPC collection policy: the onboard controller's parts driving the simulator."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from offboard_training.collect import (
    CollectConfig,
    ControllerPolicy,
    adaptation_mode,
    collect,
)
from offboard_training.dataset import Episode, load_dataset
from onboard.model import LoadedModel, load_model
from onboard.planner import PlanResult
from onboard.tasks import TaskConfig, TrackingMetrics, make_task
from robot_contract.errors import ConfigError, ModelFileError
from robot_contract.state import ACTION_HIGH_REV_S, ACTION_LOW_REV_S

MODELS = Path(__file__).resolve().parents[2] / "models"
NOMINAL = 0.5 * (ACTION_LOW_REV_S + ACTION_HIGH_REV_S)


@pytest.fixture(scope="module")
def grbal() -> LoadedModel:
    return load_model(MODELS / "grbal.onnx")


def _tracking(ep: Episode, task: str) -> TrackingMetrics:
    """How the episode's states follow ``task`` placed at its first state."""
    path = make_task(TaskConfig(name=task), ep.states[0])
    for s in ep.states:
        path.track(s)
    return path.metrics()


def test_adaptation_mode_is_the_models_own(grbal: LoadedModel) -> None:
    """A GrBAL model adapts as GrBAL, an MB model not at all, anything else is refused."""
    assert adaptation_mode(grbal) == "grbal"
    assert adaptation_mode(load_model(MODELS / "mb.onnx")) == "none"
    other = dataclasses.replace(grbal, meta=dataclasses.replace(grbal.meta, algorithm="ppo"))
    with pytest.raises(ModelFileError) as info:
        adaptation_mode(other)
    assert str(grbal.path) in str(info.value) and "grbal" in str(info.value)


@pytest.mark.parametrize(
    ("field", "value"), [("horizon", 1), ("candidates", 0), ("task", "spiral")]
)
def test_bad_mpc_settings_are_config_errors(field: str, value: Any) -> None:
    """Planner size and task are checked when the config is made, naming the option."""
    with pytest.raises(ConfigError, match=f"--{field}"):
        CollectConfig(episodes=1, policy="mpc", model="m.onnx", **{field: value})


def test_commands_are_pipelined(grbal: LoadedModel) -> None:
    """The first command is the nominal action; the command planned at step k is applied
    at step k+1 and is every candidate's first step at that plan."""
    from firmware_bridge.sim.env import RoachEnv

    policy = ControllerPolicy(grbal, candidates=50, horizon=3, task="left")
    assert policy.reset(np.random.default_rng(1)) == "left"
    assert policy.planner is not None
    plans: list[tuple[np.ndarray, PlanResult]] = []
    plan = policy.planner.plan

    def spy(cost, in_flight, low, high):  # type: ignore[no-untyped-def]
        plans.append((np.array(in_flight), result := plan(cost, in_flight, low, high)))
        return result

    policy.planner.plan = spy  # type: ignore[method-assign]
    env = RoachEnv("terrain=carpet")
    obs, _ = env.reset(seed=1)
    applied = []
    for _ in range(6):
        applied.append(policy.act(obs))
        obs, *_ = env.step(applied[-1].astype(np.float32))
    np.testing.assert_array_equal(applied[0], NOMINAL)
    for k, (in_flight, result) in enumerate(plans):
        np.testing.assert_array_equal(in_flight, applied[k])
        np.testing.assert_array_equal(result.best_sequence[0], applied[k].astype(np.float32))
        if k + 1 < len(applied):
            np.testing.assert_array_equal(applied[k + 1], result.action.astype(np.float64))
    assert policy.fallbacks == 0 and len(policy.history) == 5


def test_plan_without_finite_cost_falls_back_to_nominal(grbal: LoadedModel) -> None:
    """A model predicting NaN gives no finite plan: the nominal action goes out, counted."""
    from firmware_bridge.sim.env import RoachEnv

    broken = dataclasses.replace(grbal, theta=np.full_like(grbal.theta, np.nan))
    policy = ControllerPolicy(broken, candidates=20, horizon=2, task="straight")
    policy.reset(np.random.default_rng(0))
    env = RoachEnv("terrain=carpet")
    obs, _ = env.reset(seed=0)
    for _ in range(4):
        a = policy.act(obs)
        np.testing.assert_array_equal(a, NOMINAL)
        obs, *_ = env.step(a.astype(np.float32))
    assert policy.fallbacks == 4


@pytest.mark.timeout(120)
def test_mpc_collection_drives_better_than_random(tmp_path: Path) -> None:
    """With the shipped GrBAL model the MPC policy follows its task's path: closer to it
    and further along it than the random policy over the same seeds."""
    task = "left"
    mpc = CollectConfig(
        episodes=2, seed=4, workers=1, policy="mpc", model=str(MODELS / "grbal.onnx"), task=task
    )
    collect(mpc, tmp_path / "mpc", progress=False)
    collect(dataclasses.replace(mpc, policy="random"), tmp_path / "random", progress=False)
    by_policy = {}
    for name in ("mpc", "random"):
        episodes, summary = load_dataset([tmp_path / name])
        assert summary["policies"] == {name: 2}
        by_policy[name] = [_tracking(ep, task) for ep in episodes]
    for ours, theirs in zip(by_policy["mpc"], by_policy["random"], strict=True):
        # A random walk can project far along a path it never follows: distance decides.
        assert ours.mean_distance_m < min(0.1, 0.2 * theirs.mean_distance_m), (ours, theirs)
        assert ours.progress_m > theirs.progress_m, (ours, theirs)
        assert ours.progress_fraction > 0.9, ours


@pytest.mark.timeout(120)
def test_mpc_collection_is_reproducible_across_worker_counts(tmp_path: Path) -> None:
    """Same seed -> bit-identical MPC episodes and the same tasks, with one worker or two."""
    import json

    model = str(MODELS / "grbal.onnx")
    config = CollectConfig(episodes=2, seed=7, workers=1, policy="mpc", model=model)
    collect(config, tmp_path / "a", progress=False)
    collect(dataclasses.replace(config, workers=2), tmp_path / "b", progress=False)
    a, _ = load_dataset([tmp_path / "a"])
    b, _ = load_dataset([tmp_path / "b"])
    for ea, eb in zip(a, b, strict=True):
        assert ea.condition == eb.condition and ea.policy == eb.policy == "mpc"
        np.testing.assert_array_equal(ea.states, eb.states)
        np.testing.assert_array_equal(ea.actions, eb.actions)
        np.testing.assert_array_equal(ea.actions[0], NOMINAL)
    tasks = [
        [e["task"] for e in json.loads((tmp_path / d / "manifest.json").read_text())["episodes"]]
        for d in ("a", "b")
    ]
    assert tasks[0] == tasks[1]


@pytest.mark.timeout(120)
def test_cli_passes_the_mpc_settings(tmp_path: Path) -> None:
    """`roach collect --policy mpc` takes its task and planner size from the command line."""
    import json

    from tools.cli import main

    out = tmp_path / "data"
    argv = ["collect", "--out", str(out), "--episodes", "1", "--workers", "1", "--no-progress"]
    argv += ["--policy", "mpc", "--model", str(MODELS / "mb.onnx"), "--task", "circle"]
    assert main([*argv, "--candidates", "64", "--horizon", "3"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["info"]["candidates"] == 64 and manifest["info"]["horizon"] == 3
    assert [e["task"] for e in manifest["episodes"]] == ["circle"]
    assert manifest["episodes"][0]["plan_fallbacks"] == 0
