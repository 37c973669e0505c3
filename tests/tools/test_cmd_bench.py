"""`roach bench WHAT --quick` prints its numbers (nothing is asserted on time)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.cli import main


def test_roach_bench_codec_prints(capsys: pytest.CaptureFixture[str]) -> None:
    """`roach bench codec --quick` prints frames/s, MB/s and the link ratio."""
    assert main(["bench", "codec", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "frames/s" in out and "MB/s" in out and "x link" in out


def test_roach_bench_sim_prints_the_real_time_factor(capsys: pytest.CaptureFixture[str]) -> None:
    """`roach bench sim --quick` prints the condition, the step cost and the factor."""
    assert main(["bench", "sim", "--quick"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("condition: (nominal carpet); 5 x 2 s")
    assert lines[1].startswith("one 10 Hz control step: best ")
    assert lines[2].startswith("real-time factor: best ")


@pytest.mark.timeout(60)
def test_roach_bench_link_prints_the_period_rate(capsys: pytest.CaptureFixture[str]) -> None:
    """`roach bench link --quick` runs 50 lockstep periods through the fake and says so."""
    assert main(["bench", "link", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "50 periods" in out and "control periods/s" in out


def test_plain_flop_counts_the_paper_step() -> None:
    """The paper configuration's plain algorithm is 5.5 GFLOP per step, counted from the
    shapes: 2000 x 5 forward passes of 24-500-500-24 plus the M=23 adaptation step."""
    from tools.bench_step import plain_flop

    adapt, plan = plain_flop([24, 500, 500, 24], 2000, 5, 23)
    assert plan == 2.0 * 2000 * 5 * (24 * 500 + 500 * 500 + 500 * 24)
    assert adapt == 2.0 * 23 * (4 * (24 * 500 + 500 * 500 + 500 * 24) - 24 * 500)
    assert (adapt + plan) / 1e9 == pytest.approx(5.5, abs=0.05)


def test_roach_bench_two_names_is_a_one_line_error() -> None:
    """`roach bench codec --only link` names two benchmarks: exit 2, one line saying so."""
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-m", "tools.cli", "bench", "codec", "--only", "link"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2
    assert "name one benchmark" in res.stderr and len(res.stderr.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_roach_bench_step_json_holds_every_key(tmp_path: pytest.TempPathFactory) -> None:
    """`roach bench --quick --json OUT`: every key of the issue per configuration and
    thread count, and the start-up figures at the top level (values not judged)."""
    import json
    from pathlib import Path

    from tools.bench_step import CONFIGS, KEYS

    out = Path(str(tmp_path)) / "bench.json"
    assert main(["bench", "--quick", "--threads", "1", "2", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    for config in CONFIGS:
        for threads in ("1", "2"):
            row = data[config][threads]
            assert all(k in row and row[k] > 0 for k in KEYS), (config, threads)
    assert data["rss_peak_mb"] > 0
    assert 0 < data["rss_anon_peak_mb"] < data["rss_peak_mb"] and data["rss_file_peak_mb"] > 0
    assert data["first_command_warm_s"] > 0 and data["first_command_cold_s"] > 0


@pytest.mark.parametrize("hidden", [(16,), (32, 32)])
def test_onnxruntime_fed_plan_predicts_the_rollouts_states(
    hidden: tuple[int, ...], tmp_path: Path
) -> None:
    """The onnxruntime reference with the weights fed as inputs predicts what the
    controller's rollout predicts for the same candidates (float32 rounding apart)."""
    import numpy as np
    from cli_helpers import write_random_model

    from onboard.model import load_model
    from onboard.rollout import Rollout, fold_normalisation
    from tools.bench_reference import onnxruntime_fed_plan

    model = load_model(write_random_model(tmp_path / "m.onnx", hidden=hidden, seed=3))
    n, h = 40, 4
    state = np.random.default_rng(3).normal(0, 1, 24).astype(np.float32)
    got = np.asarray(onnxruntime_fed_plan(model, state, n, h, 1)())
    actions = np.random.default_rng(0).uniform(2.0, 9.0, (n, 2 * h)).astype(np.float32)
    rollout = Rollout(model, n, h)
    want = rollout.predict(fold_normalisation(model, model.theta), state, actions.reshape(n, h, 2))
    assert got.shape == want.shape == (n, h + 1, 24)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
