"""The exported file, the onboard loader and adaptation, and the training code agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from offboard_training.config import TrainConfig
from offboard_training.dataset import load_dataset
from offboard_training.export import export_run, read_onnx
from offboard_training.model import adapt, mse
from offboard_training.train import train


def test_onboard_adaptation_equals_training_step(synthetic_dataset: Path, tmp_path: Path) -> None:
    """onboard's Adapter takes the same step as offboard_training.model.adapt: same window
    loss before and after, same adapted predictions (float32 tolerance)."""
    from onboard.adaptation import Adapter
    from onboard.model import load_model

    episodes, summary = load_dataset([synthetic_dataset])
    config = TrainConfig(
        algo="grbal", hidden=(32, 32), M=8, K=4, inner_lr=0.05, epochs=1, steps_per_epoch=5
    )
    train(config, episodes, summary, tmp_path / "run", progress=False)
    path = export_run(tmp_path / "run", tmp_path / "grbal.onnx").path
    onboard_model = load_model(path)
    adapter = Adapter(onboard_model, "grbal")
    assert adapter.M == 8 and abs(adapter.inner_lr - 0.05) < 1e-12

    ep = episodes[0]
    states, actions = ep.states[:9], ep.actions[:8]
    result = adapter.adapt(states, actions)

    f = read_onnx(path)
    xn = torch.as_tensor(f.norm.norm_inputs(ep.inputs()[:8]), dtype=torch.float32)
    yn = torch.as_tensor(f.norm.norm_deltas(ep.deltas()[:8]), dtype=torch.float32)
    new = adapt(f.params, xn, yn, 0.05)
    before, after = float(mse(f.params, xn, yn)), float(mse(new, xn, yn))
    assert after < before
    assert result.stepped and not result.fallback
    np.testing.assert_allclose(result.loss_before, before, rtol=1e-4)
    np.testing.assert_allclose(result.loss_after, after, rtol=1e-4)
    x = ep.inputs()[8:20].astype(np.float32)
    onboard_pred = onboard_model.predict_delta_norm(x, theta=adapter.params)
    with torch.no_grad():
        from offboard_training.model import mlp

        ours = mlp(new, torch.as_tensor(f.norm.norm_inputs(x), dtype=torch.float32)).numpy()
    np.testing.assert_allclose(onboard_pred, ours, atol=1e-4)
