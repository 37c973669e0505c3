"""Bad hyperparameters and malformed datasets: one-line errors and CLI exit code 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from offboard_training.config import TrainConfig, parse_hidden
from offboard_training.dataset import load_dataset
from offboard_training.errors import DatasetError
from robot_contract.errors import ConfigError
from tools.cli import main


@pytest.mark.parametrize(
    "kwargs",
    [
        {"M": 0},
        {"K": -3},
        {"inner_lr": -0.1},
        {"inner_lr": float("nan")},
        {"outer_lr": 0.0},
        {"algo": "ppo"},
        {"hidden": ()},
        {"val_fraction": 1.0},
        {"weight_decay": -1.0},
        {"meta_batch": 0},
        {"lr_decay": 0.0},
        {"lr_decay": 1.5},
        {"z_input_std_floor": 0.0},
        {"inner_steps": 0},
        {"inner_steps": 65},
    ],
)
def test_bad_hyperparameters_raise_config_error(kwargs: dict) -> None:
    """Each invalid TrainConfig field raises ConfigError with a one-line message naming it."""
    with pytest.raises(ConfigError) as info:
        TrainConfig(**kwargs)
    message = str(info.value)
    assert "\n" not in message and next(iter(kwargs)) in message


@pytest.mark.parametrize("text", ["", "256,", "a,b", "0,256", "-1", "256;256"])
def test_bad_hidden_string(text: str) -> None:
    """A malformed --hidden string raises ConfigError; a good one parses."""
    with pytest.raises(ConfigError):
        parse_hidden(text)
    assert parse_hidden("128, 64") == (128, 64)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_malformed_datasets_raise_dataset_error(synthetic_dataset: Path, tmp_path: Path) -> None:
    """Missing folder/manifest/episode, bad JSON, wrong shapes, NaN, pickled objects:
    each a one-line DatasetError."""
    cases = []
    cases.append(tmp_path / "nothing")
    d = _copy(synthetic_dataset, tmp_path / "no_manifest")
    (d / "manifest.json").unlink()
    cases.append(d)
    d = _copy(synthetic_dataset, tmp_path / "bad_json")
    (d / "manifest.json").write_text("{not json")
    cases.append(d)
    d = _copy(synthetic_dataset, tmp_path / "missing_episode")
    (d / "ep_00003.npz").unlink()
    cases.append(d)
    d = _copy(synthetic_dataset, tmp_path / "wrong_shape")
    np.savez(d / "ep_00001.npz", states=np.zeros((5, 23)), actions=np.zeros((4, 2)),
             condition=np.array("terrain=carpet"), seed=np.array(1))  # fmt: skip
    cases.append(d)
    d = _copy(synthetic_dataset, tmp_path / "nan")
    states = np.zeros((5, 24))
    states[2, 3] = np.nan
    np.savez(d / "ep_00001.npz", states=states, actions=np.zeros((4, 2)),
             condition=np.array("terrain=carpet"), seed=np.array(1))  # fmt: skip
    cases.append(d)
    d = _copy(synthetic_dataset, tmp_path / "pickled")
    np.savez(d / "ep_00002.npz", states=np.array([{"a": 1}], dtype=object),
             actions=np.zeros((4, 2)), condition=np.array("c"), seed=np.array(1))  # fmt: skip
    cases.append(d)
    d = _copy(synthetic_dataset, tmp_path / "bad_names")
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["state_names"] = manifest["state_names"][::-1]
    (d / "manifest.json").write_text(json.dumps(manifest))
    cases.append(d)
    for folder in cases:
        with pytest.raises(DatasetError) as info:
            load_dataset([folder])
        assert "\n" not in str(info.value), folder


def test_cli_errors_are_one_line_exit_2(
    synthetic_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`roach train` with a missing dataset or bad hyperparameters exits 2 with one stderr line."""
    base = ["train", "--algo", "grbal", "--out", str(tmp_path / "run"), "--no-progress"]
    for extra in (
        ["--data", str(tmp_path / "missing")],
        ["--data", str(synthetic_dataset), "--M", "0"],
        ["--data", str(synthetic_dataset), "--inner-lr", "-1"],
        ["--data", str(synthetic_dataset), "--hidden", "64,x"],
        ["--data", str(synthetic_dataset), "--algo", "sac"],
        ["--data", str(synthetic_dataset), "--M", "40", "--K", "40"],
    ):
        assert main(base + extra) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("roach train: error:") and "\n" not in err, err
    assert main(["export", str(tmp_path / "no_run"), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "\n" not in capsys.readouterr().err.strip()
