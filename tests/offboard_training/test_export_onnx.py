"""ONNX export: contract names and metadata, checker, onnxruntime == PyTorch, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper

from offboard_training.config import TrainConfig
from offboard_training.dataset import load_dataset
from offboard_training.export import export_run
from offboard_training.train import load_run, train
from robot_contract.model_file import METADATA_KEYS, read_model_file
from robot_contract.state import STATE_NAMES

TINY = {"hidden": (32, 32), "M": 4, "K": 4, "epochs": 2, "steps_per_epoch": 5, "meta_batch": 8}


def _train_export(data: Path, out: Path, algo: str, seed: int) -> Path:
    episodes, summary = load_dataset([data])
    train(TrainConfig(algo=algo, seed=seed, **TINY), episodes, summary, out / "run", progress=False)
    return export_run(out / "run", out / f"{algo}.onnx").path


@pytest.fixture(scope="module")
def grbal_file(synthetic_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train_export(synthetic_dataset, tmp_path_factory.mktemp("exp"), "grbal", 0)


def test_graph_follows_contract(grbal_file: Path) -> None:
    """Opset 17, input x, outputs delta_norm/delta, the named initializers, every metadata key."""
    model = onnx.load(str(grbal_file))
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
    assert [i.name for i in model.graph.input] == ["x"]
    assert [o.name for o in model.graph.output] == ["delta_norm", "delta"]
    names = {t.name for t in model.graph.initializer}
    expected = {f"norm.{k}" for k in ("input_mean", "input_std", "delta_mean", "delta_std")}
    expected |= {f"layers.{i}.{p}" for i in range(3) for p in ("weight", "bias")}
    assert names == expected
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    assert init["layers.0.weight"].shape == (32, 24) and init["layers.2.weight"].shape == (24, 32)
    assert all(v.dtype == np.float32 for v in init.values())
    assert init["norm.input_std"].min() > 0
    meta = {p.key: p.value for p in model.metadata_props}
    assert set(METADATA_KEYS) <= set(meta)
    assert meta["roach.state_names"].split(",") == list(STATE_NAMES)
    assert meta["roach.algorithm"] == "grbal" and meta["roach.hidden"] == "32,32"
    assert (meta["roach.M"], meta["roach.K"]) == ("4", "4")
    assert meta["roach.action_low"] == "2.0,2.0" and meta["roach.action_high"] == "9.0,9.0"


def test_onnxruntime_matches_torch(grbal_file: Path) -> None:
    """Both outputs of the file equal the PyTorch model's to 1e-5, and delta = dn*std + mean."""
    run = load_run(grbal_file.parent / "run")
    rng = np.random.default_rng(7)
    x = (run.norm.input_mean + run.norm.input_std * rng.standard_normal((64, 24))).astype(
        np.float32
    )
    sess = ort.InferenceSession(str(grbal_file), providers=["CPUExecutionProvider"])
    dn, d = sess.run(["delta_norm", "delta"], {"x": x})
    with torch.no_grad():
        tdn, td = run.model(torch.as_tensor(x))
    np.testing.assert_allclose(dn, tdn.numpy(), atol=1e-5)
    np.testing.assert_allclose(d, td.numpy(), atol=1e-5)
    back = read_model_file(grbal_file)
    np.testing.assert_allclose(d, dn * back.delta_std + back.delta_mean, atol=1e-5)


def test_contract_reader_gives_back_the_run(grbal_file: Path) -> None:
    """read_model_file returns the run's config as metadata and its weights, bit for bit."""
    run = load_run(grbal_file.parent / "run")
    f = read_model_file(grbal_file)
    c = run.config
    assert (f.meta.algorithm, f.meta.hidden, f.meta.M, f.meta.K) == ("grbal", c.hidden, c.M, c.K)
    assert f.meta.inner_lr == c.inner_lr and f.meta.seed == c.seed
    assert f.meta.train_config == c.to_json() and f.meta.training_data == run.data_summary
    params = run.model.layer_params()
    for i, (w, b) in enumerate(zip(f.weights, f.biases, strict=True)):
        np.testing.assert_array_equal(w, params[f"layers.{i}.weight"].detach().numpy())
        np.testing.assert_array_equal(b, params[f"layers.{i}.bias"].detach().numpy())


def test_same_seed_same_weights_other_seed_differs(
    synthetic_dataset: Path, tmp_path: Path, grbal_file: Path
) -> None:
    """Same seed and data give identical exported weights; another seed gives other weights."""

    def weights(path: Path) -> dict[str, np.ndarray]:
        return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}

    again = weights(_train_export(synthetic_dataset, tmp_path / "a", "grbal", 0))
    first = weights(grbal_file)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    other = weights(_train_export(synthetic_dataset, tmp_path / "b", "grbal", 1))
    assert not np.array_equal(first["layers.0.weight"], other["layers.0.weight"])
