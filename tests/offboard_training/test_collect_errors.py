"""Collection failures: a bad MPC model or a failing worker is one line, never a hang."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from offboard_training.collect import CollectConfig, check_model, collect, run_in_workers
from offboard_training.config import TrainConfig
from offboard_training.dataset import load_dataset
from offboard_training.errors import DatasetError
from offboard_training.export import export_run
from offboard_training.train import train
from robot_contract.errors import ConfigError, ModelFileError
from tools.cli import main


def _bad_model(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.onnx"
    if kind == "garbage":
        path.write_bytes(b"\x08\x07not an onnx file\xff" * 20)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "no_metadata":  # valid ONNX, not a model per docs/model-format.md
        graph = helper.make_graph(
            [helper.make_node("Identity", ["x"], ["delta"])],
            "identity",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 24])],
            [helper.make_tensor_value_info("delta", TensorProto.FLOAT, ["batch", 24])],
        )
        onnx.save(helper.make_model(graph), str(path))
    return path  # "missing": no file at all


@pytest.mark.timeout(60)
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("kind", ["missing", "garbage", "empty", "no_metadata"])
def test_bad_mpc_model_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, workers: int
) -> None:
    """`roach collect --policy mpc` with a bad model exits 2 with one line naming the file
    (the robot's own loader refuses it before any worker starts)."""
    model = _bad_model(tmp_path, kind)
    out = tmp_path / "data"
    argv = ["collect", "--out", str(out), "--episodes", "2", "--policy", "mpc"]
    argv += ["--model", str(model), "--workers", str(workers), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("roach collect: error:") and "\n" not in err, err
    assert str(model) in err
    assert not out.exists()  # checked before anything is written


@pytest.mark.timeout(60)
def test_worker_start_failure_is_raised_not_respawned(tmp_path: Path) -> None:
    """A worker whose initialisation fails ends the pool with the worker's one-line error."""
    model = _bad_model(tmp_path, "garbage")
    config = CollectConfig(episodes=2, workers=2, policy="mpc", model=str(model))
    jobs = [(0, 1, str(tmp_path)), (1, 2, str(tmp_path))]
    with pytest.raises(ModelFileError) as info:
        list(run_in_workers(config, jobs, tmp_path))
    assert str(model) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.timeout(60)
def test_worker_episode_failure_ends_collection(tmp_path: Path) -> None:
    """A RoachError raised inside a worker's episode comes out of collect() as itself."""
    with pytest.raises(ConfigError) as info:
        collect(CollectConfig(episodes=3, workers=2, condition="bogus=1"), tmp_path, False)
    assert "bogus" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.timeout(60)
def test_worker_library_error_becomes_one_line_dataset_error(tmp_path: Path) -> None:
    """Any other exception in a worker comes out as a one-line DatasetError naming the folder."""
    config = CollectConfig(episodes=1, workers=2, condition="terrain=carpet")
    jobs = [(0, 1, str(tmp_path / "no" / "such" / "dir"))]
    with pytest.raises(DatasetError) as info:
        list(run_in_workers(config, jobs, tmp_path))
    message = str(info.value)
    assert message.startswith(str(tmp_path)) and "FileNotFoundError" in message, message
    assert "\n" not in message


@pytest.mark.timeout(60)
def test_exported_model_passes_the_check_and_collects(
    synthetic_dataset: Path, tmp_path: Path
) -> None:
    """A file written by export_run passes check_model and drives one MPC episode."""
    episodes, summary = load_dataset([synthetic_dataset])
    tiny = TrainConfig(hidden=(16,), M=4, K=4, epochs=1, steps_per_epoch=2, meta_batch=4)
    train(tiny, episodes, summary, tmp_path / "run", progress=False)
    model = export_run(tmp_path / "run", tmp_path / "m.onnx").path
    assert check_model(model).meta.algorithm == "grbal"
    config = CollectConfig(episodes=1, workers=1, policy="mpc", model=str(model))
    info = collect(config, tmp_path / "data", progress=False)
    _episodes, collected = load_dataset([tmp_path / "data"])
    assert info["transitions"] > 0 and collected["policies"] == {"mpc": 1}
