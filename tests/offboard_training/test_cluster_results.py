"""The results sweep as separate training runs (the unit a cluster task runs): one row per
size with both algorithms' figures, whichever order the runs finish in."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from conftest import write_synthetic_dataset

from offboard_training.dataset import load_dataset
from offboard_training.results import run_sweep


@pytest.mark.timeout(300)
def test_results_sweep_rows_from_separate_runs(tmp_path: Path) -> None:
    """Two sizes, a few seconds each: a row per size in the given order, GrBAL's and MB's
    validation figures and the unseen-set error all finite, run folders per (algo, size)."""
    data = write_synthetic_dataset(tmp_path / "data", episodes=8, steps=60)
    eps, _ = load_dataset([data])
    sets = {"training terrains": eps[:2], "unseen": eps[2:4]}
    sizes = ((8, 8), (16,))
    rows = run_sweep(data, tmp_path / "w", 0.02, 0, sets, progress=False, sizes=sizes)
    assert [r.hidden for r in rows] == list(sizes)
    for r in rows:
        assert math.isfinite(r.unseen_after) and r.minutes > 0
        for algo in (r.grbal, r.mb):
            assert all(math.isfinite(algo[k]) for k in ("val_mse", "val_before", "val_after"))
    for name in ("grbal_8x8", "mb_8x8", "grbal_16", "mb_16"):
        assert (tmp_path / "w" / "sweep" / name / "summary.json").is_file()
    assert (tmp_path / "w" / "sweep" / "grbal_8x8" / "model.onnx").is_file()
