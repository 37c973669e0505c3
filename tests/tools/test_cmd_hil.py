"""`roach hil` against the software fake robot on a real pseudo-terminal: it passes on
a sound board and fails, with a line naming the broken property, on each broken one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_bridge.fake.process import running_fake

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)

CHECKS = [
    "handshake", "telemetry", "pose", "setpoint", "encoder", "command_timeout", "estop",
    "range",
]  # fmt: skip


def _roach(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _check_lines(stdout: str) -> dict[str, str]:
    lines = [ln for ln in stdout.splitlines() if ln.startswith(("PASS", "FAIL"))]
    return {ln.split()[1]: ln for ln in lines}


def test_hil_passes_every_check_on_the_realtime_fake(tmp_path: Path) -> None:
    """Every check, the closed-loop run of the shipped model included, passes against
    `roach sim --clock realtime`; the JSON report holds each figure with its bound."""
    link, out = tmp_path / "robot", tmp_path / "hil.json"
    with running_fake("--clock", "realtime", "--link", str(link), cwd=str(REPO)):
        proc = _roach("hil", "--port", str(link), "--json", str(out))
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = _check_lines(proc.stdout)
    assert list(lines) == [*CHECKS, "closed_loop"]
    assert all(ln.startswith("PASS") for ln in lines.values())
    assert proc.stdout.splitlines()[0].startswith("roach hil report, ")
    assert "9 of 9 checks passed" in proc.stdout
    report = json.loads(out.read_text())
    assert report["passed"] and [c["name"] for c in report["checks"]] == [*CHECKS, "closed_loop"]
    rate = report["checks"][1]["figures"][0]
    assert rate["name"] == "telemetry rate" and rate["ok"] and rate["bound"] == "90..110 Hz"


@pytest.mark.parametrize(
    ("fault", "check", "says"),
    [
        ("watchdog=off", "command_timeout", "motors still on after"),
        ("stuck_encoder=left", "encoder", "left encoder counts/rev 0 (BROKEN"),
        ("reversed_motor=right", "encoder", "right leg direction backward (BROKEN"),
        ("telemetry_rate=half", "telemetry", "Hz (BROKEN, bound 90..110 Hz)"),
        ("crc=wrong", "handshake", "frames failing the CRC"),
    ],
)
def test_hil_fails_a_broken_board_naming_the_property(
    fault: str, check: str, says: str, tmp_path: Path
) -> None:
    """`roach sim --faults FAULT` breaks one property: that check fails, exit code 1, its
    line starts with the broken figure; every other check that runs passes."""
    link = tmp_path / "robot"
    with running_fake("--clock", "realtime", "--link", str(link), "--faults", fault,
                      cwd=str(REPO)):  # fmt: skip
        proc = _roach("hil", "--port", str(link), "--no-closed-loop")
    print(proc.stdout)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = _check_lines(proc.stdout)
    assert lines[check].startswith(f"FAIL {check}"), lines[check]
    assert (
        says in lines[check]
        and "BROKEN" in lines[check].split(";")[0 if check != "handshake" else 1]
    )
    assert [n for n, ln in lines.items() if ln.startswith("FAIL")] == [check]
    assert f"failed: {check}" in proc.stdout


def test_hil_missing_port_is_one_line_error_exit_2(tmp_path: Path) -> None:
    """A port that does not exist gives one error line naming it and exit code 2."""
    proc = _roach("hil", "--port", str(tmp_path / "nope"), "--no-closed-loop")
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "nope" in err[0]


def test_hil_bad_setpoint_is_config_error() -> None:
    """An out-of-range --leg-rev-s is refused before the port is opened."""
    proc = _roach("hil", "--port", "/dev/null", "--leg-rev-s", "30")
    assert proc.returncode == 2 and "--leg-rev-s" in proc.stderr


def test_unknown_fault_lists_every_valid_key() -> None:
    """`roach sim --faults` with an unknown key: one line naming it and every valid key,
    the link faults and the broken-board faults."""
    proc = _roach("sim", "--faults", "watchdog=of")
    assert proc.returncode == 2
    assert "valid values of watchdog: off" in proc.stderr
    proc = _roach("sim", "--faults", "stuck=left")
    assert proc.returncode == 2 and "'stuck=left'" in proc.stderr
    assert "drop=" in proc.stderr and "reversed_motor=" in proc.stderr
