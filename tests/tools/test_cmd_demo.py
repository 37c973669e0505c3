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


def test_condition_in_words_and_its_onset() -> None:
    """The plot's title names the condition in words; the marker goes at its onset."""
    from tools.cmd_demo import condition_onset_s, describe_condition

    assert describe_condition("gain_left=0.5@3") == "left motor at 50% torque from 3 s"
    assert describe_condition("missing_leg=RF+LM@4,terrain=ice") == (
        "right front and left middle legs missing from 4 s, on ice"
    )
    assert describe_condition("slope_deg=-10") == "downhill 10 deg"
    assert describe_condition("") == "nominal conditions"
    assert condition_onset_s("terrain=turf,gain_left=0.5@3") == 3.0
    assert condition_onset_s("terrain=turf") is None


def test_summary_columns_line_up() -> None:
    """Every column of the summary is as wide as its widest cell, header included."""
    from tools.cmd_demo import SUMMARY_COLUMNS, format_table

    rows = [["GrBAL", "0.074", "0.170", "9.03", "21.72", "0"],
            ["MB", "0.418", "1.021", "17.59", "6.41", "12"]]  # fmt: skip
    lines = format_table(SUMMARY_COLUMNS, rows).splitlines()
    assert len({len(ln) for ln in lines}) == 1
    for h in SUMMARY_COLUMNS[1:]:  # numbers end where their header ends
        end = lines[0].index(h) + len(h)
        assert all(ln[end - 1] != " " and (end == len(ln) or ln[end] == " ") for ln in lines)
