"""Random shooting and CEM on costs with a known optimum, and the planner wrapper that fixes
the first step and shifts the warm start."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from onboard.planner import CEM, Planner, PlannerConfig, RandomShooting, make_planner
from robot_contract.errors import ConfigError

LOW = np.array([2.0, 2.0])
HIGH = np.array([9.0, 9.0])
TARGET = np.array([[7.0, 3.0], [4.0, 8.0], [6.0, 6.0], [3.0, 5.0]], np.float32)


def quadratic(actions: np.ndarray) -> np.ndarray:
    """Squared distance of steps 1.. to TARGET (step 0 is fixed by the planner)."""
    return np.sum((actions[:, 1:, :] - TARGET[: actions.shape[1] - 1]) ** 2, axis=(1, 2))


def test_random_shooting_beats_a_random_guess_and_fixes_first_action() -> None:
    """Random shooting's best is far below a random guess; row 0 is the command in flight."""
    rs = make_planner(PlannerConfig(kind="random", n_candidates=2000, horizon=3, seed=1))
    in_flight = np.array([5.5, 2.5], np.float32)
    seen: list[np.ndarray] = []

    def cost(a: np.ndarray) -> np.ndarray:
        seen.append(a.copy())
        return quadratic(a)

    r = rs.plan(cost, in_flight, LOW, HIGH)
    cand = seen[0]
    assert np.all(cand[:, 0] == in_flight)
    assert np.all((cand >= LOW) & (cand <= HIGH))
    assert r.best_cost < 0.1 * float(np.median(quadratic(cand)))
    assert r.best_cost < 3.0
    np.testing.assert_array_equal(r.action, r.best_sequence[1])
    np.testing.assert_array_equal(r.best_sequence[0], in_flight)


def test_cem_improves_over_iterations_and_beats_random_shooting() -> None:
    """CEM's best cost does not increase over iterations and ends below random shooting's."""
    cfg = PlannerConfig(kind="cem", n_candidates=300, horizon=5, cem_iters=5, cem_elites=30)
    cem = make_planner(cfg)
    assert isinstance(cem.optimizer, CEM)
    r = cem.plan(quadratic, np.array([5.0, 5.0]), LOW, HIGH)
    c = cem.optimizer.last_iteration_costs
    assert all(b <= a for a, b in itertools.pairwise(c)) and c[-1] < c[0]
    rs = make_planner(PlannerConfig(n_candidates=300, horizon=5))
    assert r.best_cost < rs.plan(quadratic, np.array([5.0, 5.0]), LOW, HIGH).best_cost
    assert r.best_cost < 1.0


def test_cem_warm_start_shifts_previous_plan() -> None:
    """The second CEM plan starts from the first one shifted by a step: it is better at once."""
    cfg = PlannerConfig(kind="cem", n_candidates=200, horizon=5, cem_iters=1, cem_elites=20)
    cem = Planner(CEM(cfg))
    shifted_target = np.concatenate([TARGET[1:], TARGET[-1:]])

    def cost_then(a: np.ndarray) -> np.ndarray:
        return np.sum((a[:, 1:, :] - TARGET) ** 2, axis=(1, 2))

    def cost_now(a: np.ndarray) -> np.ndarray:
        return np.sum((a[:, 1:, :] - shifted_target) ** 2, axis=(1, 2))

    for _ in range(4):
        cem.plan(cost_then, np.array([5.0, 5.0]), LOW, HIGH)
        # As if the last plan's mean had converged on TARGET, shifted by one step.
        cem._warm[:] = np.concatenate([TARGET, TARGET[-1:]])
    warm = cem.plan(cost_now, np.array([5.0, 5.0]), LOW, HIGH).best_cost
    cem.reset()
    cold = cem.plan(cost_now, np.array([5.0, 5.0]), LOW, HIGH).best_cost
    assert warm < cold


def test_non_finite_costs_never_win() -> None:
    """Candidates with NaN cost are never chosen."""
    rs = make_planner(PlannerConfig(n_candidates=100, horizon=2))

    def cost(a: np.ndarray) -> np.ndarray:
        c = quadratic(a)
        c[:99] = np.nan
        return c

    r = rs.plan(cost, np.array([5.0, 5.0]), LOW, HIGH)
    assert np.isfinite(r.best_cost)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "mppi"},
        {"horizon": 0},
        {"n_candidates": 0},
        {"kind": "cem", "cem_elites": 5000},
        {"cem_alpha": 1.0},
    ],
)
def test_bad_planner_config_is_rejected(kwargs: dict) -> None:
    """Invalid planner settings raise ConfigError at construction."""
    with pytest.raises(ConfigError):
        PlannerConfig(**kwargs)


def test_pipelined_planner_needs_two_steps() -> None:
    """A fixed first step leaves nothing to plan with horizon 1: refused at construction."""
    with pytest.raises(ConfigError, match="horizon=1"):
        make_planner(PlannerConfig(horizon=1), fix_first_action=True)
    assert make_planner(PlannerConfig(horizon=1), fix_first_action=False).horizon == 1


@pytest.mark.parametrize("kind", ["random", "cem"])
def test_optimizers_stay_inside_per_step_bounds(kind: str) -> None:
    """The optimisers sample inside the [H, 2] bounds they are given, so low == high pins a
    step: that is how the wrapper fixes the command in flight."""
    cfg = PlannerConfig(kind=kind, n_candidates=500, horizon=3, cem_elites=20)
    opt = RandomShooting(cfg) if kind == "random" else CEM(cfg)
    low = np.array([[4.0, 6.0], [2.0, 2.0], [3.0, 3.0]], np.float32)
    high = np.array([[4.0, 6.0], [9.0, 9.0], [5.0, 4.0]], np.float32)
    seen: list[np.ndarray] = []

    def cost(a: np.ndarray) -> np.ndarray:
        seen.append(a.copy())
        return quadratic(a)

    sol = opt.optimize(cost, (low + high) / 2, low, high)
    for cand in seen:
        assert np.all((cand >= low) & (cand <= high))
        assert np.all(cand[:, 0] == low[0])
    np.testing.assert_array_equal(sol.sequence[0], low[0])
    assert sol.sequence.shape == (3, 2) and np.isfinite(sol.cost)


@pytest.mark.parametrize("kind", ["random", "cem"])
def test_free_first_action_sends_step_zero(kind: str) -> None:
    """With fix_first_action=False step 0 is optimised too and is the command to send."""
    cfg = PlannerConfig(kind=kind, n_candidates=2000, horizon=3)

    def cost(a: np.ndarray) -> np.ndarray:
        return np.sum((a - TARGET[:3]) ** 2, axis=(1, 2))

    r = make_planner(cfg, fix_first_action=False).plan(cost, np.array([2.0, 9.0]), LOW, HIGH)
    np.testing.assert_array_equal(r.action, r.best_sequence[0])
    assert np.sum((r.action - TARGET[0]) ** 2) < 2.0
