"""Starting and stopping a `roach sim` subprocess for the end-to-end tests."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

from firmware_bridge.fake import process

REPO = Path(__file__).resolve().parents[2]


def start_fake(*args: str) -> tuple[subprocess.Popen[str], str]:
    """Starts `roach sim ARGS`; returns the process and the pty path it printed."""
    return process.start_fake(*args, cwd=str(REPO))


def stop_fake(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> dict:
    """Signals the fake, waits for it, and returns its exit `stats` JSON."""
    out, err = process.stop_fake(proc, sig)
    assert proc.returncode == 0, f"roach sim exited {proc.returncode}: {err}"
    lines = [ln for ln in out.splitlines() if ln.startswith("stats ")]
    assert lines, f"no stats line in {out!r}"
    return json.loads(lines[-1][len("stats ") :])
