"""End to end on the real simulator: collect -> train MB and GrBAL -> export -> load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from offboard_training.dataset import load_dataset
from offboard_training.results import EVAL_SETS
from offboard_training.train import load_run
from robot_contract.model_file import METADATA_KEYS
from tools.cli import main

TINY = ["--hidden", "16,16", "--M", "4", "--K", "4", "--epochs", "2", "--steps-per-epoch", "3",
        "--meta-batch", "4", "--batch-size", "32", "--no-progress"]  # fmt: skip


def test_collect_train_export_end_to_end(tmp_path: Path) -> None:
    """A tiny real collection trains both algorithms and exports files that pass
    onnx.checker, carry every metadata key and match PyTorch to 1e-5 in onnxruntime."""
    data = tmp_path / "data"
    argv = ["collect", "--out", str(data), "--episodes", "3", "--seed", "5", "--workers", "2"]
    assert main([*argv, "--no-progress"]) == 0
    episodes, summary = load_dataset([data])
    assert summary["episodes"] == 3 and summary["transitions"] == 3 * 110
    for ep in episodes:
        assert ep.states.shape == (111, 24) and ep.actions.shape == (110, 2)
        assert ep.actions.min() >= 2.0 and ep.actions.max() <= 9.0
        # actions are held for 1..5 steps: runs of equal actions never exceed 5
        changes = np.flatnonzero(np.any(np.diff(ep.actions, axis=0) != 0, axis=1))
        assert np.diff(np.concatenate([[-1], changes, [109]])).max() <= 5
    for algo in ("mb", "grbal"):
        run = tmp_path / algo
        argv = ["train", "--algo", algo, "--data", str(data), "--out", str(run), *TINY]
        assert main(argv) == 0
        for name in ("config.json", "metrics.jsonl", "loss.png", "model.pt", "summary.json"):
            assert (run / name).is_file(), name
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert [r["epoch"] for r in rows] == [1, 2]
        out = tmp_path / f"{algo}.onnx"
        assert main(["export", str(run), "--out", str(out)]) == 0
        model = onnx.load(str(out))
        onnx.checker.check_model(model, full_check=True)
        meta = {p.key: p.value for p in model.metadata_props}
        assert set(METADATA_KEYS) <= set(meta) and meta["roach.algorithm"] == algo
        assert json.loads(meta["roach.training_data"])["episodes"] == 3
        trained = load_run(run)
        x = np.concatenate([ep.inputs() for ep in episodes]).astype(np.float32)
        sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        dn, d = sess.run(["delta_norm", "delta"], {"x": x})
        with torch.no_grad():
            tdn, td = trained.model(torch.as_tensor(x))
        assert np.abs(dn - tdn.numpy()).max() <= 1e-5
        assert np.abs(d - td.numpy()).max() <= 1e-5

    # the results command evaluates both files on fresh episodes of every evaluation set
    # and puts a closed-loop run of them first, naming the run it came from
    run = tmp_path / "eval.json"
    models = ["--model", str(tmp_path / "grbal.onnx"), "--model", str(tmp_path / "mb.onnx")]
    argv = ["eval", "--suite", "smoke", *models, "--episodes", "1", "--steps", "20"]
    assert main([*argv, "--json", str(run), "--quiet"]) == 0
    doc = tmp_path / "results.md"
    argv = ["results", "--out", str(doc), "--models", str(tmp_path), "--work", str(tmp_path / "w")]
    argv += ["--closed-loop", str(run)]
    assert main([*argv, "--eval-episodes", "1", "--sweep-minutes", "0", "--no-progress"]) == 0
    table = json.loads((tmp_path / "w" / "table.json").read_text())
    assert len(table) == len(EVAL_SETS)
    assert all(row["grbal"]["windows"] > 0 for row in table.values())
    text = doc.read_text()
    assert "| missing_leg=RF" in text
    assert f"--sweep-minutes 0 --seed 0 --closed-loop {run}` (code " in text  # as run
    assert "## Closed loop: the suite" in text
    assert "GrBAL's file has no per-parameter scales" in text  # trained without --learn-step


def test_collection_is_reproducible_across_worker_counts(tmp_path: Path) -> None:
    """Same seed -> identical episodes, whether collected by one worker or two."""
    from offboard_training.collect import CollectConfig, collect

    collect(CollectConfig(episodes=2, seed=9, workers=1), tmp_path / "a", progress=False)
    collect(CollectConfig(episodes=2, seed=9, workers=2), tmp_path / "b", progress=False)
    a, _ = load_dataset([tmp_path / "a"])
    b, _ = load_dataset([tmp_path / "b"])
    for ea, eb in zip(a, b, strict=True):
        assert ea.condition == eb.condition and ea.seed == eb.seed
        np.testing.assert_array_equal(ea.states, eb.states)
        np.testing.assert_array_equal(ea.actions, eb.actions)
