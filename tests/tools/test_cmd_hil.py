"""`roach hil` against the software fake robot on a real pseudo-terminal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from firmware_bridge.fake.process import running_fake

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(90)


def _roach(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_hil_passes_every_check_on_the_realtime_fake(tmp_path):
    """Every hil check (link .. range) passes against `roach sim --clock realtime`."""
    link = tmp_path / "robot"
    with running_fake("--clock", "realtime", "--link", str(link), cwd=str(REPO)):
        proc = _roach("hil", "--port", str(link))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(("PASS", "FAIL"))]
    assert [ln.split()[1] for ln in lines] == [
        "link", "telemetry", "pose", "drive", "watchdog", "estop", "range",
    ]  # fmt: skip
    assert all(ln.startswith("PASS") for ln in lines)


def test_hil_missing_port_is_one_line_error_exit_2(tmp_path):
    """A port that does not exist gives one error line naming it and exit code 2."""
    proc = _roach("hil", "--port", str(tmp_path / "nope"))
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "nope" in err[0]


def test_hil_bad_setpoint_is_config_error():
    """An out-of-range --leg-rev-s is refused before the port is opened."""
    proc = _roach("hil", "--port", "/dev/null", "--leg-rev-s", "30")
    assert proc.returncode == 2 and "--leg-rev-s" in proc.stderr
