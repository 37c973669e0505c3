"""Adaptation modes, the window handling and the fallback guard."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from onboard.adaptation import MODES, Adapter
from onboard.model import LoadedModel, load_model
from robot_contract.errors import ConfigError


def _window(model: LoadedModel, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A window of n transitions whose deltas follow a shifted version of the model."""
    rng = np.random.default_rng(seed)
    states = np.empty((n + 1, 24))
    states[0] = model.input_mean[0] + rng.standard_normal(24) * 0.1
    actions = rng.uniform(2, 9, (n, 2))
    for t in range(n):
        x = np.concatenate([states[t, 2:], actions[t]])[None]
        d = model.predict_delta_norm(x)[0] * model.delta_std + model.delta_mean
        states[t + 1] = states[t] + d + 0.5 * model.delta_std  # a consistent model error
    return states, actions


@pytest.fixture
def model(random_model_path: Path) -> LoadedModel:
    return load_model(random_model_path)


def test_invalid_mode_lists_valid_modes(model: LoadedModel) -> None:
    """An unknown mode is a ConfigError naming every valid mode."""
    with pytest.raises(ConfigError) as info:
        Adapter(model, "maml")
    assert all(m in str(info.value) for m in MODES)


def test_grbal_step_lowers_window_loss_and_resets_each_step(model: LoadedModel) -> None:
    """grbal: one step lowers the window loss; every call starts again from the meta-learned set."""
    states, actions = _window(model, 16)
    ad = Adapter(model, "grbal", inner_lr=0.01)
    r1 = ad.adapt(states, actions)
    p1 = ad.params.copy()
    r2 = ad.adapt(states, actions)
    assert r1.stepped and not r1.fallback and r1.loss_after < r1.loss_before
    assert r2.loss_before == pytest.approx(r1.loss_before)
    np.testing.assert_array_equal(ad.params, p1)
    assert not np.array_equal(ad.params, ad.meta_params)


def test_dyn_eval_keeps_stepping(model: LoadedModel) -> None:
    """dyn-eval: each call starts from the previous adapted set, so the loss keeps falling."""
    states, actions = _window(model, 16)
    ad = Adapter(model, "dyn-eval", inner_lr=0.01)
    losses = [ad.adapt(states, actions).loss_after for _ in range(4)]
    assert all(b < a for a, b in itertools.pairwise(losses))


def test_none_mode_never_changes_parameters(model: LoadedModel) -> None:
    """none: no step, the meta-learned parameters are used, the window loss is reported."""
    states, actions = _window(model, 16)
    ad = Adapter(model, "none")
    r = ad.adapt(states, actions)
    assert not r.stepped and r.loss_before == r.loss_after > 0
    assert ad.params is ad.meta_params


def test_short_and_empty_windows(model: LoadedModel) -> None:
    """n < M uses the n transitions; n == 0 takes no step; n > M uses only the latest M."""
    ad = Adapter(model, "grbal", M=8, inner_lr=0.01)
    states, actions = _window(model, 20)
    assert ad.adapt(states[:4], actions[:3]).stepped
    r0 = ad.adapt(states[:1], actions[:0])
    assert not r0.stepped and np.isnan(r0.loss_before)
    full = ad.adapt(states, actions)
    latest = ad.adapt(states[-9:], actions[-8:])
    assert full.loss_before == pytest.approx(latest.loss_before)


def test_huge_step_falls_back_and_is_counted(model: LoadedModel) -> None:
    """A huge inner_lr makes the window worse: the meta-learned set is used and counted."""
    states, actions = _window(model, 16)
    ad = Adapter(model, "grbal", inner_lr=1e4)
    r = ad.adapt(states, actions)
    assert r.fallback and not r.stepped and r.fallbacks_total == 1
    assert ad.params is ad.meta_params
    assert ad.adapt(states, actions).fallbacks_total == 2


def test_nan_in_window_falls_back(model: LoadedModel) -> None:
    """A NaN in the window gives a non-finite loss: fallback to the meta-learned set."""
    states, actions = _window(model, 16)
    states[5, 7] = np.nan
    ad = Adapter(model, "dyn-eval", inner_lr=0.01)
    r = ad.adapt(states, actions)
    assert r.fallback and ad.params is ad.meta_params and r.fallbacks_total == 1


def _changed_window(model: LoadedModel, n: int, onset: int) -> tuple[np.ndarray, np.ndarray]:
    """``_window`` whose transitions from ``onset`` on each move 3 std further."""
    states, actions = _window(model, n)
    for t in range(onset, n):
        states[t + 1 :] += 3.0 * model.delta_std
    return states, actions


def _run_ticks(ad: Adapter, states: np.ndarray, actions: np.ndarray, first: int = 1) -> list:
    """adapt() once per tick as the loop calls it: the history up to that tick."""
    return [ad.adapt(states[: t + 1], actions[:t]) for t in range(first, actions.shape[0] + 1)]


@pytest.mark.parametrize("mode", ["dyn-eval", "grbal"])
def test_change_rule_restarts_the_window_at_a_change(model: LoadedModel, mode: str) -> None:
    """Three surprising transitions in a row trip the rule once; the step then uses only
    the transitions since the change, one more each tick, until the window is whole."""
    onset, n, m = 20, 40, 32
    states, actions = _changed_window(model, n, onset)
    # The random model's errors on the unchanged transitions reach 4 x the window's mean;
    # the changed ones are 50 to 1000 x: a threshold of 10 separates them.
    ad = Adapter(model, mode, M=m, inner_lr=0.01, change_ratio=10.0)
    results = _run_ticks(ad, states, actions)
    tripped = [t for t, r in enumerate(results, start=1) if r.change]
    assert tripped == [onset + 3]  # the tick whose window ends with the 3rd changed transition
    windows = [r.window for r in results[onset + 2 : onset + 8]]
    assert windows == [3, 4, 5, 6, 7, 8]
    assert all(r.window == min(t, m) for t, r in enumerate(results[:onset], start=1))


def test_one_surprising_transition_does_not_trip_the_rule(model: LoadedModel) -> None:
    """A single outlier (one state 3 std off: two surprising transitions) leaves the window
    whole."""
    states, actions = _window(model, 40)
    states[21] += 3.0 * model.delta_std
    ad = Adapter(model, "dyn-eval", M=32, inner_lr=0.01, change_ratio=10.0)
    results = _run_ticks(ad, states, actions)
    assert not any(r.change for r in results)
    assert [r.window for r in results[-5:]] == [32] * 5


def test_change_rule_off_and_its_step_gain(model: LoadedModel) -> None:
    """change_ratio 0 never trips; after a change the step is change_gain x the step size."""
    states, actions = _changed_window(model, 40, 20)
    off = _run_ticks(Adapter(model, "dyn-eval", M=32, change_ratio=0.0), states, actions)
    assert not any(r.change for r in off) and off[-1].window == 32
    at_onset = states[:24], actions[:23]  # the tick the rule trips on
    steps = {}
    for gain in (1.0, 3.0):
        ad = Adapter(model, "grbal", M=32, inner_lr=0.01, change_gain=gain)
        _run_ticks(ad, *at_onset)
        steps[gain] = ad.params - ad.meta_params
    np.testing.assert_allclose(steps[3.0], 3.0 * steps[1.0], rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"change_ratio": -1.0}, "change_ratio"),
        ({"change_ratio": float("nan")}, "change_ratio"),
        ({"change_rows": 0}, "change_rows"),
        ({"change_gain": float("inf")}, "change_gain"),
    ],
)
def test_invalid_change_rule_is_a_config_error(model: LoadedModel, kwargs: dict, word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        Adapter(model, "dyn-eval", **kwargs)
