"""The exported file, the onboard loader and adaptation, and the training code agree."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from offboard_training.config import TrainConfig
from offboard_training.dataset import load_dataset
from offboard_training.export import export_run, read_onnx
from offboard_training.model import adapt, mse
from offboard_training.train import load_run, train


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


def test_learned_steps_train_export_and_drive_the_onboard_step(
    synthetic_dataset: Path, tmp_path: Path
) -> None:
    """``learn_step``: the per-parameter steps move away from inner_lr and lower the
    validation error they are scored with; the file carries them as scales relative to
    inner_lr; the onboard Adapter steps by them exactly as training's adapt does; an
    --init-from run continues from them."""
    from onboard.adaptation import Adapter
    from onboard.model import load_model

    episodes, summary = load_dataset([synthetic_dataset])
    config = TrainConfig(
        algo="grbal", hidden=(32, 32), M=8, K=4, inner_lr=0.05, epochs=3, steps_per_epoch=20,
        learn_step=True, robot_inner_lr=0.05,
    )  # fmt: skip
    train(config, episodes, summary, tmp_path / "run", progress=False)
    run = load_run(tmp_path / "run")
    assert run.step is not None and set(run.step) == set(run.model.layer_params())
    flat = torch.cat([v.flatten() for v in run.step.values()])
    assert bool((flat > 0).all()) and float((flat - 0.05).abs().max()) > 1e-4
    q = run.summary["step_scale_quantiles"]
    assert q["max"] > 1.0 > q["min"]

    path = export_run(tmp_path / "run", tmp_path / "grbal.onnx").path
    f = read_onnx(path)
    step = f.step_for(0.05)
    assert isinstance(step, dict)
    for k, v in run.step.items():
        np.testing.assert_allclose(step[k].numpy(), v.numpy(), rtol=1e-6)

    onboard_model = load_model(path)
    assert onboard_model.step_scale is not None
    adapter = Adapter(onboard_model, "grbal")
    ep = episodes[0]
    result = adapter.adapt(ep.states[:9], ep.actions[:8])
    xn = torch.as_tensor(f.norm.norm_inputs(ep.inputs()[:8]), dtype=torch.float32)
    yn = torch.as_tensor(f.norm.norm_deltas(ep.deltas()[:8]), dtype=torch.float32)
    new = adapt(f.params, xn, yn, step)
    assert result.stepped
    np.testing.assert_allclose(result.loss_after, float(mse(new, xn, yn)), rtol=1e-4)
    x = ep.inputs()[8:20].astype(np.float32)
    with torch.no_grad():
        from offboard_training.model import mlp

        ours = mlp(new, torch.as_tensor(f.norm.norm_inputs(x), dtype=torch.float32)).numpy()
    onboard_pred = onboard_model.predict_delta_norm(x, theta=adapter.params)
    np.testing.assert_allclose(onboard_pred, ours, atol=1e-4)

    again = replace(config, epochs=1, steps_per_epoch=1, init_from=str(tmp_path / "run"))
    train(again, episodes, summary, tmp_path / "run2", progress=False)
    moved = load_run(tmp_path / "run2").step
    assert moved is not None
    for k, v in run.step.items():  # one more Adam step from where the first run stopped
        np.testing.assert_allclose(moved[k].numpy(), v.numpy(), rtol=0.01)


def test_learn_step_needs_grbal() -> None:
    """MB takes no step in training: learn_step with algo=mb is a one-line ConfigError."""
    import pytest

    from robot_contract.errors import ConfigError

    with pytest.raises(ConfigError, match="learn_step"):
        TrainConfig(algo="mb", learn_step=True)
    with pytest.raises(ConfigError, match="learn_step"):
        TrainConfig(algo="grbal", learn_step=1)  # type: ignore[arg-type]
