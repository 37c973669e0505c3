"""Starting and stopping a `roach sim` subprocess for the end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def start_fake(*args: str) -> tuple[subprocess.Popen[str], str]:
    """Starts `roach sim ARGS`; returns the process and the pty path it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.cli", "sim", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    path = proc.stdout.readline().strip()
    if not path:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise AssertionError(f"roach sim printed no path; stderr: {err}")
    return proc, path


def stop_fake(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> dict:
    """Signals the fake, waits for it, and returns its exit `stats` JSON."""
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, f"roach sim exited {proc.returncode}: {err}"
    lines = [ln for ln in out.splitlines() if ln.startswith("stats ")]
    assert lines, f"no stats line in {out!r}"
    return json.loads(lines[-1][len("stats ") :])
