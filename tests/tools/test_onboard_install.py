"""The robot's install (the `onboard` extra alone): the robot's commands run, every other
command ends in one line naming the extra to install (tests/tools/onboard_only.py hides
the other extras' packages; `make test-hardware` builds a real such venv)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from cli_helpers import ENV, REPO, SHIPPED_GRBAL, fake_robot

ONBOARD_ONLY = [sys.executable, str(REPO / "tests" / "tools" / "onboard_only.py")]


def _robot_roach(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ONBOARD_ONLY, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, env=ENV
    )


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (("sim",), "sim"),
        (("sim-check",), "sim"),
        (("demo",), "sim"),
        (("soak",), "sim"),
        (("collect", "--out", "/tmp/roach-never"), "train"),
        (("train-all",), "train"),
        (("results",), "train"),
    ],
)
def test_commands_of_other_extras_are_one_line(args: tuple[str, ...], extra: str) -> None:
    """Exit 2 and one line naming the extra and how to install it: no traceback."""
    res = _robot_roach(*args)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert f"needs the '{extra}' extra" in lines[0] and f"pip install -e '.[{extra}]'" in lines[0]


def test_run_works_on_the_robot_install(tmp_path) -> None:
    """`roach run` with the UDP pose, on the onboard packages only, drives the fake with
    the shipped model and its default adaptation, and nothing goes wrong."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with fake_robot("--clock", "lockstep", "--pose-out", f"udp:127.0.0.1:{port}") as (_s, pty):
        res = _robot_roach(
            "run", "--port", pty, "--model", str(SHIPPED_GRBAL), "--steps", "10",
            "--lockstep", "--pose", f"udp:127.0.0.1:{port}", "--log", str(tmp_path / "r.mcap"),
            "--quiet",
        )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "roach run: 10 ticks" in res.stdout and "events: none" in res.stdout


def test_collect_and_hil_work_on_the_robot_install(tmp_path) -> None:
    """`roach collect --port` and `roach hil` on the onboard packages only."""
    with fake_robot("--clock", "lockstep") as (_s, pty):
        res = _robot_roach("collect", "--port", pty, "--out", str(tmp_path), "--lockstep",
                           "--minutes", "0.05", "--no-progress")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "30 ticks" in res.stdout and len(list(tmp_path.glob("collect-*.mcap"))) == 1
    with fake_robot("--clock", "realtime") as (_s, pty):
        res = _robot_roach("hil", "--port", pty, "--no-closed-loop")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "8 of 8 checks passed" in res.stdout
