"""`roach demo`: the shipped models on the fake robot, end to end, on a short episode."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from onboard.logging_mcap import read_log

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(180)


def test_demo_runs_both_models_and_writes_readable_logs(tmp_path):
    """From another folder, the demo runs GrBAL and MB, and both logs hold every tick."""
    proc = subprocess.run(
        [sys.executable, "-m", "tools.cli", "demo", "--steps", "20", "--out", "out"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("grbal", "mb"):
        log = read_log(tmp_path / "out" / f"{name}.mcap")
        assert log.finished and len(log.ticks) == 20
        assert all(t["command"]["kind"] == "plan" for t in log.ticks)
    summary = proc.stdout.split("== summary")[1]
    assert "GrBAL" in summary and "MB" in summary
    assert (tmp_path / "out" / "trajectories.png").stat().st_size > 10_000


def test_demo_bad_condition_is_one_line_error(tmp_path):
    """A bad condition is refused before anything starts: one line naming the key, exit 2."""
    proc = subprocess.run(
        [sys.executable, "-m", "tools.cli", "demo", "--condition", "payload_g=-5"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "payload_g" in lines[0]
