"""A real Ray head on 127.0.0.1 for the cluster tests: ``ray start --head``, 2 CPUs, its own
temp folder, token authentication; stopped by ending exactly the processes it started.

Ray would advertise the machine's outward address even when told 127.0.0.1; with
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (single-node mode) every process listens on and
talks to the loopback address only.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).with_name("ray")
MARK = "ROACH_TEST_RAY_HEAD"
"""Environment variable every process of a test cluster carries (its temp folder)."""


@dataclass
class RayHead:
    address: str
    """``127.0.0.1:PORT``, what ``--cluster`` takes."""
    env: dict[str, str]
    """The environment a driver needs to join (the token, loopback-only mode)."""
    temp_dir: Path

    def processes(self) -> list[int]:
        """Pids of every process of this cluster: all inherit ``MARK`` from ``ray start``
        (their command lines do not all name the cluster: workers retitle themselves)."""
        return pids_with_env(f"{MARK}={self.temp_dir}")

    def roach(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tools.cli", *args],
            cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "tools.cli", *args],
            cwd=REPO, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def stop(self) -> None:
        """SIGTERM to each of its processes, SIGKILL to those left after 5 s."""
        for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            for pid in self.processes():
                _signal(pid, sig)
            deadline = time.monotonic() + wait_s
            while self.processes() and time.monotonic() < deadline:
                time.sleep(0.2)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def pids_with_env(assignment: str) -> list[int]:
    """Pids whose environment holds ``NAME=VALUE`` exactly (this process excluded)."""
    want = assignment.encode()
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if want in environ:
            out.append(int(entry.name))
    return out


def title(pid: int) -> str:
    """The command line of ``pid`` as one string ('' once it is gone); a Ray worker's is
    ``ray::<function>`` while it runs a task, ``ray::IDLE`` between tasks."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_head(cpus: int = 2) -> RayHead:
    # Short path: Ray's Unix sockets live under it (the socket path limit is 107 bytes).
    temp_dir = Path(tempfile.mkdtemp(prefix="roach-ray-", dir="/tmp"))
    env = {
        **os.environ,
        MARK: str(temp_dir),
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "RAY_USAGE_STATS_ENABLED": "0",
        # Workers at the tests' priority, as the local pool's (Ray's default is nice 15).
        "RAY_worker_niceness": "0",
    }
    port = _free_port()
    head = RayHead(f"127.0.0.1:{port}", env, temp_dir)
    try:
        subprocess.run(
            [str(RAY), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
             f"--num-cpus={cpus}", "--include-dashboard=false", "--disable-usage-stats",
             f"--temp-dir={temp_dir}"],
            env=env, check=True, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
    except BaseException:
        head.stop()
        raise
    return head
