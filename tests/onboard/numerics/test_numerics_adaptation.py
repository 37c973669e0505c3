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
