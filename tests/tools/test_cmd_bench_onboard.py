"""`roach bench onboard` runs end to end on a tiny budget and prints its tables."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from robot_contract.errors import ConfigError
from tools import cmd_bench_onboard


def test_bench_onboard_prints_a_row_per_setting(capsys: pytest.CaptureFixture[str]) -> None:
    """Two hidden sizes x one N x one thread count give two table rows and exit code 0."""
    args = argparse.Namespace(
        hidden=["16,16", "24,24"], candidates=[50], repeats=2, threads=[1], horizon=3
    )
    assert cmd_bench_onboard.run_benchmark(args) == 0
    out = capsys.readouterr().out
    assert "16x16" in out and "24x24" in out and "adapt p50" in out
    assert out.splitlines()[0].startswith("onboard bench: H=3, M=16, planner=random")


def test_bench_quality_mode_prints_a_row_per_setting(
    random_model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--quality runs closed-loop episodes per planner setting and prints one row each."""
    parser = argparse.ArgumentParser()
    cmd_bench_onboard.add_arguments(parser)
    argv = ["--quality", "--model", str(random_model_file), "--settings", "random:40", "cem:2x20"]
    opts = parser.parse_args([*argv, "--tasks", "left", "--episodes", "1", "--steps", "5"])
    assert cmd_bench_onboard.run_benchmark(opts) == 0
    out = capsys.readouterr().out
    assert out.startswith("planner quality, model ") and "left dist m" in out
    assert "random:40 |" in out and "cem:2x20 |" in out and out.rstrip().endswith("along it")


@pytest.mark.parametrize("mode", ["quality", "closed_loop"])
def test_bench_comparisons_need_a_model(mode: str) -> None:
    """--quality or --closed-loop without --model is a one-line ConfigError."""
    with pytest.raises(ConfigError, match="needs --model"):
        cmd_bench_onboard.run_benchmark(argparse.Namespace(**{mode: True, "model": None}))
