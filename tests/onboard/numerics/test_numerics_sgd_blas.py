"""The BLAS adaptation step against the Numba loop kernels on random problems."""

from __future__ import annotations

import numpy as np
import pytest

from onboard import kernels
from onboard.adaptation import Adapter
from onboard.bench.step_times import random_model
from onboard.sgd_blas import BlasSgd

SHAPES = [((32, 32), 16, 16), ((128, 128), 32, 32), ((500, 500), 23, 23), ((64,), 8, 5)]


def _numba_step(
    theta: np.ndarray, dims: np.ndarray, xn: np.ndarray, tn: np.ndarray, lr: float
) -> tuple[tuple[float, float], np.ndarray, np.ndarray]:
    n = xn.shape[0]
    n_acts, n_grad = kernels.work_sizes(dims, n)
    out = np.empty(theta.shape[0], np.float32)
    grad = np.empty(theta.shape[0], np.float32)
    losses = kernels.sgd_step_nb(
        theta,
        dims,
        xn,
        tn,
        lr,
        out,
        grad,
        np.empty((n, int(dims[-1])), np.float32),
        np.empty(n_acts, np.float32),
        np.empty(n_grad, np.float32),
        np.empty(n_grad, np.float32),
    )
    return (float(losses[0]), float(losses[1])), out, grad


@pytest.mark.parametrize(("hidden", "max_rows", "n"), SHAPES)
def test_sgd_step_matches_numba(hidden: tuple[int, ...], max_rows: int, n: int) -> None:
    """Losses, gradient and stepped parameters equal the Numba kernels' to float32 rounding."""
    model = random_model(hidden, seed=3)
    rng = np.random.default_rng(len(hidden) * 100 + n)
    xn = rng.standard_normal((n, 24)).astype(np.float32)
    tn = rng.standard_normal((n, 24)).astype(np.float32)
    lr = 0.01
    (nb_before, nb_after), nb_theta, nb_grad = _numba_step(model.theta, model.dims, xn, tn, lr)
    sgd = BlasSgd(model.dims, max_rows)
    theta_out = np.empty_like(model.theta)
    grad = np.empty_like(model.theta)
    before, after = sgd.sgd_step(model.theta, xn, tn, lr, theta_out, grad)
    assert before == pytest.approx(nb_before, rel=1e-5)
    assert after == pytest.approx(nb_after, rel=1e-5)
    assert after < before  # a descent step on this loss
    scale = float(np.abs(nb_grad).max())
    np.testing.assert_allclose(grad, nb_grad, rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(theta_out, nb_theta, rtol=0, atol=1e-6 + 1e-5 * lr * scale)
    assert sgd.loss(model.theta, xn, tn) == pytest.approx(nb_before, rel=1e-5)


def test_sgd_step_is_deterministic() -> None:
    """The same inputs give bit-identical results (what replay --check relies on)."""
    model = random_model((128, 128), seed=1)
    rng = np.random.default_rng(0)
    xn = rng.standard_normal((32, 24)).astype(np.float32)
    tn = rng.standard_normal((32, 24)).astype(np.float32)
    sgd = BlasSgd(model.dims, 32)
    outs = []
    for _ in range(2):
        t, g = np.empty_like(model.theta), np.empty_like(model.theta)
        losses = sgd.sgd_step(model.theta, xn, tn, 0.01, t, g)
        outs.append((losses, t.copy(), g.copy()))
    assert outs[0][0] == outs[1][0]
    assert np.array_equal(outs[0][1], outs[1][1]) and np.array_equal(outs[0][2], outs[1][2])


def test_adapter_step_matches_numba_reference() -> None:
    """Adapter.adapt (grbal) ends at the parameters the Numba step gives from the same
    window, and reports the same losses."""
    model = random_model((128, 128), seed=2)
    rng = np.random.default_rng(5)
    states = rng.standard_normal((17, 24))
    actions = rng.uniform(2.0, 9.0, (16, 2))
    adapter = Adapter(model, "grbal", M=16, inner_lr=0.01)
    res = adapter.adapt(states, actions)
    x = np.concatenate([states[:-1, 2:], actions], axis=1)
    xn = ((x - model.input_mean.astype(np.float64)) / model.input_std).astype(np.float32)
    tn = ((states[1:] - states[:-1] - model.delta_mean) / model.delta_std).astype(np.float32)
    (before, after), theta, _ = _numba_step(model.theta, model.dims, xn, tn, 0.01)
    assert res.stepped and not res.fallback
    assert res.loss_before == pytest.approx(before, rel=1e-5)
    assert res.loss_after == pytest.approx(after, rel=1e-5)
    np.testing.assert_allclose(adapter.params, theta, rtol=0, atol=1e-6)
