"""A damaged training run (model.pt): `roach export` fails with one line naming the file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

from offboard_training.train import load_run
from robot_contract.errors import ModelFileError
from tools.cli import main


def _write_bad_run(run: Path, kind: str) -> Path:
    run.mkdir()
    path = run / "model.pt"
    if kind == "garbage":
        path.write_bytes(b"PK\x03\x04 this is not a torch archive" * 10)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "disallowed_global":  # weights_only refuses it, with a multi-line message
        torch.save({"config": argparse.Namespace(a=1)}, path)
    elif kind == "missing_keys":
        torch.save({"state_dict": {}}, path)
    else:  # bad_config: every key present, the config is not a TrainConfig
        blob = {k: json.dumps({"bogus": 1}) for k in ("config", "data_summary", "summary")}
        torch.save({**blob, "state_dict": {}, "normalizer": {}, "code_version": "x"}, path)
    return path


@pytest.mark.parametrize(
    "kind", ["garbage", "empty", "disallowed_global", "missing_keys", "bad_config"]
)
def test_corrupt_run_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """load_run raises a one-line ModelFileError naming model.pt; the CLI exits 2 with it."""
    path = _write_bad_run(tmp_path / "run", kind)
    with pytest.raises(ModelFileError) as info:
        load_run(tmp_path / "run")
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message and "\x1b" not in message
    out = tmp_path / "x.onnx"
    assert main(["export", str(tmp_path / "run"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("roach export: error:") and "\n" not in err, err
    assert str(path) in err and not out.exists()
