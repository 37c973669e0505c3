"""The batched rollout equals a step-by-step prediction with the model's own forward."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from onboard.adaptation import Adapter
from onboard.model import load_model
from onboard.planner import PlannerConfig, make_planner
from onboard.rollout import Rollout
from onboard.tasks import TaskConfig, make_task


def _reference(model, theta, state, actions) -> np.ndarray:  # type: ignore[no-untyped-def]
    n, h = actions.shape[:2]
    ref = np.empty((n, h + 1, 24))
    ref[:, 0] = state
    for k in range(h):
        x = np.concatenate([ref[:, k, 2:], actions[:, k]], axis=1)
        d = model.predict_delta_norm(x, theta) * model.delta_std + model.delta_mean
        ref[:, k + 1] = ref[:, k] + d
    return ref


def test_rollout_matches_stepwise_prediction(random_model_path: Path) -> None:
    """Folded normalisation and the shared first step give the same states as a plain loop."""
    model = load_model(random_model_path)
    rng = np.random.default_rng(0)
    state = model.input_mean[0] + 0.1 * rng.standard_normal(24)
    ro = Rollout(model, 300, 5)
    seen: list[np.ndarray] = []
    actions = rng.uniform(2, 9, (300, 5, 2)).astype(np.float32)
    for first_shared in (True, False):
        if first_shared:
            actions[:, 0] = actions[0, 0]
        cost = ro.bind(model.theta, state, lambda ps: (seen.append(ps.copy()), ps[:, -1, 0])[1])
        cost(actions)
        ref = _reference(model, model.theta, state, actions)
        assert np.max(np.abs(seen[-1] - ref)) <= 1e-4 * max(1.0, float(np.max(np.abs(ref))))


def test_planning_tick_end_to_end(random_model_path: Path) -> None:
    """adapt -> bind -> plan runs with each planner and returns an in-bounds finite command."""
    model = load_model(random_model_path)
    rng = np.random.default_rng(1)
    states = model.input_mean[0] + 0.1 * rng.standard_normal((17, 24))
    actions = rng.uniform(2, 9, (16, 2))
    adapter = Adapter(model, "grbal")
    adapter.adapt(states, actions)
    task = make_task(TaskConfig(name="left"), states[0])
    for kind in ("random", "cem"):
        cfg = PlannerConfig(kind=kind, n_candidates=200, horizon=4)
        ro = Rollout(model, cfg.n_candidates, cfg.horizon)
        planner = make_planner(cfg)
        r = planner.plan(
            ro.bind(adapter.params, states[-1], task.cost),
            actions[-1],
            np.full(2, 2.0),
            np.full(2, 9.0),
        )
        assert r.action.shape == (2,) and np.all((r.action >= 2.0) & (r.action <= 9.0))
        assert np.isfinite(r.best_cost)
        np.testing.assert_allclose(r.best_sequence[0], actions[-1], rtol=1e-6)


def test_rollout_workers_give_identical_predictions(random_model_path: Path) -> None:
    """Splitting the candidates over 3 worker threads changes the prediction by float32
    rounding at most: sgemm blocks its work by the row count, so a row's sums may be
    ordered differently in a smaller block (not bit-identical, seen at 1.2e-7 relative)."""
    model = load_model(random_model_path)
    rng = np.random.default_rng(2)
    state = model.input_mean[0] + 0.1 * rng.standard_normal(24)
    actions = rng.uniform(2, 9, (301, 5, 2)).astype(np.float32)
    single, multi = Rollout(model, 301, 5), Rollout(model, 301, 5, workers=3)
    try:
        a = single.bind(model.theta, state, lambda ps: ps.reshape(len(ps), -1).sum(1))(actions)
        b = multi.bind(model.theta, state, lambda ps: ps.reshape(len(ps), -1).sum(1))(actions)
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=0)
        np.testing.assert_allclose(single.states, multi.states, rtol=2e-6, atol=1e-6)
    finally:
        multi.close()
