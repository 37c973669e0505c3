"""Helpers for the command-line tests: a `roach sim` subprocess, `roach` runs, model files.

A plain module (not conftest.py) so the test files can import it by a unique name."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "onboard"))  # for onboard_fixtures

from onboard_fixtures import write_random_model as write_random_model  # noqa: E402

from firmware_bridge.fake.process import running_fake  # noqa: E402

SHIPPED_GRBAL = REPO / "models" / "grbal.onnx"
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def roach_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "tools.cli", *args]


def run_roach(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Runs `roach ARGS` to completion from the repository root."""
    return subprocess.run(
        roach_cmd(*args), cwd=REPO, capture_output=True, text=True, timeout=timeout, env=ENV
    )


@contextlib.contextmanager
def fake_robot(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`roach sim ARGS` running for the duration; yields the process and its pty path."""
    with running_fake(*args, cwd=str(REPO)) as (proc, path):
        yield proc, path
