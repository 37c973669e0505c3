"""Starting and stopping the software fake robot (``roach sim``) as a subprocess.

The demo, the benchmarks and the tests all drive the fake through its pseudo-terminal
the way ``roach run`` drives a robot; this is the one place that starts it, reads the
pty path it prints first, and stops it.

The fake is started as the installed command line, ``python -m tools.cli sim ARGS``
(``SIM_COMMAND``), in a child process: this module runs that program but imports nothing
from ``tools``, so the import order (firmware_bridge below tools) holds. ``cwd`` must
be a folder from which the ``tools`` package imports (the repository root, or anywhere
once the project is installed).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import IO

from robot_contract.errors import LinkError

STOP_TIMEOUT_S = 15.0
"""Seconds ``stop_fake`` waits for the fake to exit before killing it."""

SIM_COMMAND: tuple[str, ...] = ("-m", "tools.cli", "sim")
"""Arguments after the interpreter that run ``roach sim``."""


def start_fake(
    *args: str, stderr: int | IO[str] | None = subprocess.PIPE, cwd: str | None = None
) -> tuple[subprocess.Popen[str], str]:
    """Starts ``roach sim ARGS``; returns the process and the pty path it printed.

    LinkError (one line, with the fake's last stderr line when it was captured) if it
    exits or prints nothing instead of its path.
    """
    proc = subprocess.Popen(
        [sys.executable, *SIM_COMMAND, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    path = proc.stdout.readline().strip()
    if not path:
        _, err = stop_fake(proc)
        last = (err or "").strip().splitlines()[-1:]
        raise LinkError(f"the fake robot did not start: {last[0] if last else 'no output'}")
    return proc, path


def stop_fake(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> tuple[str, str]:
    """Signals the fake (if still running) and waits for it, killing it after
    ``STOP_TIMEOUT_S``; returns what it printed on stdout and stderr since the path."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return out or "", err or ""


@contextlib.contextmanager
def running_fake(
    *args: str, stderr: int | IO[str] | None = subprocess.PIPE, cwd: str | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``roach sim ARGS`` running for the duration; yields the process and its pty path."""
    proc, path = start_fake(*args, stderr=stderr, cwd=cwd)
    try:
        yield proc, path
    finally:
        stop_fake(proc)
