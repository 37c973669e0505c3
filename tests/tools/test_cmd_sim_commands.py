"""`roach sim-check` and `roach sim-plot` end to end on a tiny budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.cli import main


def test_sim_check_reports_motion(capsys: pytest.CaptureFixture[str]):
    """sim-check prints displacement, yaw change and speed for a turning command."""
    assert main(["sim-check", "--left", "4", "--right", "7", "--seconds", "1"]) == 0
    out = capsys.readouterr().out
    assert "displacement: forward +" in out
    assert "yaw change:   +" in out  # right faster turns left
    assert "x real time" in out


def test_sim_check_condition_file_and_duty(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """sim-check takes a TOML condition file and an open-loop duty command."""
    path = tmp_path / "c.toml"
    path.write_text('terrain = "ice"\nmissing_leg = "RF@0.2"\n')
    assert main(["sim-check", "--condition-file", str(path), "--duty", "2000", "2000",
                 "--seconds", "0.5"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "terrain=ice,missing_leg=RF@0.2" in out and "open-loop duty 2000/2000" in out


def test_sim_check_bad_seconds_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]):
    """An out-of-range --seconds is a one-line error with exit code 2."""
    assert main(["sim-check", "--seconds", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--seconds" in err[0]


def test_sim_plot_writes_a_png(tmp_path: Path):
    """sim-plot writes a PNG of the condition families."""
    out = tmp_path / "img" / "conditions.png"
    assert main(["sim-plot", "--out", str(out), "--seconds", "0.2", "--seeds", "1"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (
            ["sim-check", "--duty", "99999", "0"],
            "--duty 99999 0 is out of range; valid: -4000..4000",
        ),
        (
            ["sim-plot", "--duty", "0", "-4001"],
            "--duty 0 -4001 is out of range; valid: -4000..4000",
        ),
        (["sim-plot", "--out", "/proc/x.png"], "--out '/proc/x.png'"),
        (["sim-plot", "--out", "plot.txt"], "unknown image type '.txt'; valid: "),
    ],
)
def test_bad_duty_and_out_are_one_line_exit_2(capsys: pytest.CaptureFixture[str], argv, says):
    """A --duty out of range, or an unwritable or non-image --out: one line, exit 2, at once."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0]
