"""The plain references of `roach bench` take the same adaptation step as the robot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from onboard import kernels
from onboard.adaptation import Adapter
from onboard.model import load_model
from tools import bench_reference

MODELS = Path(__file__).resolve().parents[2] / "models"


@pytest.mark.parametrize("name", ["grbal.onnx", "mb.onnx"])
def test_numpy_reference_step_matches_the_onboard_step(name: str) -> None:
    """One step from the meta-learned weights, each parameter by its own size where the
    file has per-parameter scales (the shipped GrBAL does, MB does not)."""
    model = load_model(MODELS / name)
    assert (model.step_scale is not None) == (name == "grbal.onnx")
    rng = np.random.default_rng(3)
    m = model.meta.M
    states = np.zeros((m + 1, 24), np.float32)  # a drive near the data's mean
    states[0, 2:] = model.input_mean[:22]
    for k in range(m):
        step = model.delta_mean + model.delta_std * rng.normal(0.0, 0.5, 24)
        states[k + 1] = states[k] + step
    actions = (model.input_mean[22:] + model.input_std[22:] * rng.normal(0, 1, (m, 2))).astype(
        np.float32
    )
    lr = 0.02  # small enough that the step lowers the window's loss for either model
    adapter = Adapter(model, "grbal", inner_lr=lr)
    result = adapter.adapt(states, actions)
    assert result.stepped
    xn, tn = bench_reference._window_xy(model, states, actions)
    ws, bs = bench_reference.numpy_adapt(model, xn, tn, *bench_reference.step_sizes(model, lr))
    theta = kernels.pack_params(ws, bs)
    moved = adapter.params - model.theta
    assert np.abs(moved).max() > 0
    np.testing.assert_allclose(theta - model.theta, moved, rtol=2e-3, atol=1e-6)
