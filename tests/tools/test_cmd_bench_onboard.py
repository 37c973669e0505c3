"""The onboard benchmark runs end to end on a tiny budget and prints its table."""

from __future__ import annotations

import argparse

import pytest

from onboard.blas import get_blas_threads, set_blas_threads
from tools import bench_onboard_planners, cmd_bench_onboard


def test_bench_onboard_prints_a_row_per_setting(capsys: pytest.CaptureFixture[str]) -> None:
    """Two hidden sizes x one N x one thread count give two table rows and exit code 0."""
    args = argparse.Namespace(
        hidden=["16,16", "24,24"], candidates=[50], repeats=2, threads=[1], horizon=3
    )
    assert cmd_bench_onboard.run_benchmark(args) == 0
    out = capsys.readouterr().out
    assert "16x16" in out and "24x24" in out and "adapt p50" in out


def test_blas_thread_count_round_trips() -> None:
    """set_blas_threads changes what get_blas_threads reports (numpy's bundled OpenBLAS)."""
    before = get_blas_threads()
    if before is None:
        pytest.skip("numpy is not linked against OpenBLAS here")
    try:
        assert set_blas_threads(1)
        assert get_blas_threads() == 1
    finally:
        set_blas_threads(before)
    with pytest.raises(ValueError):
        set_blas_threads(0)


def test_bench_quality_mode_runs_closed_loop(capsys: pytest.CaptureFixture[str]) -> None:
    """--quality runs closed-loop episodes per planner setting and prints one row each."""
    model = cmd_bench_onboard._random_model((16, 16))
    parser = argparse.ArgumentParser()
    cmd_bench_onboard.add_arguments(parser)
    argv = ["--settings", "random:40", "cem:2x20", "--tasks", "left"]
    opts = parser.parse_args([*argv, "--episodes", "1", "--steps", "5"])
    assert bench_onboard_planners.quality(model, opts) == 0
    out = capsys.readouterr().out
    assert "random:40" in out and "cem:2x20" in out


def test_bench_quality_needs_a_model() -> None:
    """--quality without --model is a one-line ConfigError."""
    from robot_contract.errors import ConfigError

    with pytest.raises(ConfigError):
        cmd_bench_onboard.run_benchmark(argparse.Namespace(quality=True, model=None))
