"""The robot's adaptation step and loader agree with offboard training's own code.

docs/model-format.md says training and the robot use the same inner step; these tests
hold the two implementations to it (tests may import training code, onboard may not).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onboard_fixtures import default_metadata, random_model_arrays

from onboard.adaptation import Adapter
from onboard.model import load_model

torch = pytest.importorskip("torch")
train_model = pytest.importorskip("offboard_training.model")
train_export = pytest.importorskip("offboard_training.export")


def _exported(tmp_path: Path, hidden: tuple[int, ...]) -> Path:
    """A random model written by offboard training's exporter."""
    weights, biases, norm = random_model_arrays(hidden, seed=11)
    arrays = {}
    for i, (w, b) in enumerate(zip(weights, biases)):
        arrays[f"layers.{i}.weight"] = w
        arrays[f"layers.{i}.bias"] = b
    normalizer = train_model.Normalizer(**{k: v.astype(np.float64) for k, v in norm.items()})
    proto = train_export.build_onnx(arrays, normalizer, default_metadata(hidden))
    path = tmp_path / "exported.onnx"
    onnx.save(proto, str(path))
    return path


def test_training_export_loads_onboard(tmp_path: Path) -> None:
    """A file from offboard_training.export.build_onnx passes every onboard check."""
    model = load_model(_exported(tmp_path, (48, 40)))
    assert model.meta.hidden == (48, 40)


def test_onboard_step_equals_training_inner_step(tmp_path: Path) -> None:
    """Adapter('grbal') gives the parameters of offboard_training.model.adapt (<= 1e-4 rel)."""
    model = load_model(_exported(tmp_path, (48, 40)))
    rng = np.random.default_rng(12)
    m = 16
    states = model.input_mean[0] + 0.2 * rng.standard_normal((m + 1, 24))
    actions = rng.uniform(2, 9, (m, 2))
    lr = 0.01
    adapter = Adapter(model, "grbal", M=m, inner_lr=lr)
    result = adapter.adapt(states, actions)
    assert result.stepped

    x = np.concatenate([states[:-1, 2:], actions], axis=1)
    xn = (x - model.input_mean) / model.input_std
    yn = ((states[1:] - states[:-1]) - model.delta_mean) / model.delta_std
    params = {}
    for i, (w, b) in enumerate(zip(model.weights, model.biases)):
        params[f"layers.{i}.weight"] = torch.tensor(w, dtype=torch.float64, requires_grad=True)
        params[f"layers.{i}.bias"] = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    new = train_model.adapt(
        params, torch.tensor(xn, dtype=torch.float64), torch.tensor(yn, dtype=torch.float64), lr
    )
    ref = np.concatenate(
        [
            new[f"layers.{i}.{k}"].detach().numpy().ravel()
            for i in range(len(model.weights))
            for k in ("weight", "bias")
        ]
    )
    step_ref = ref - model.theta.astype(np.float64)
    step = adapter.params.astype(np.float64) - model.theta.astype(np.float64)
    assert np.max(np.abs(step - step_ref)) <= 1e-4 * np.max(np.abs(step_ref)) + 1e-7
