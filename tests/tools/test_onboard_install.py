"""The robot's install (the `onboard` extra alone): the robot's commands run, every other
command ends in one line naming the extra to install (tests/tools/onboard_only.py hides
the other extras' packages; `make test-hardware` builds a real such venv), and `roach
run` imports no compiler or training package."""

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


NOT_ONBOARD = ("numba", "llvmlite", "torch", "scipy", "mujoco", "matplotlib")
"""Packages a control tick does not need (Numba and its LLVM alone map about 100 MB)."""
RUN_THEN_LIST = (
    "import sys; from tools.cli import main; code = main(sys.argv[1:]);"
    f"print('imported:', [m for m in {NOT_ONBOARD!r} if m in sys.modules]); sys.exit(code)"
)
"""`roach ARGS` in this process, then the names of NOT_ONBOARD it imported."""


def test_run_imports_no_jit_compiler_or_training_package(tmp_path) -> None:
    """A short lockstep `roach run` with the shipped model (the real command, in a fresh
    interpreter) leaves none of NOT_ONBOARD in sys.modules."""
    with fake_robot("--clock", "lockstep") as (_s, pty):
        res = subprocess.run(
            [sys.executable, "-c", RUN_THEN_LIST, "run", "--port", pty, "--lockstep",
             "--model", str(SHIPPED_GRBAL), "--steps", "5", "--log", str(tmp_path / "r.mcap"),
             "--quiet"],
            cwd=REPO, capture_output=True, text=True, timeout=120, env=ENV,
        )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "roach run: 5 ticks" in res.stdout and "imported: []" in res.stdout, res.stdout


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
