"""`roach run` under a service manager: READY, the watchdog fed from the control loop and
STOPPING arrive on the notify socket, a real AF_UNIX datagram socket the test reads."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from pathlib import Path

from cli_helpers import ENV, REPO, fake_robot, roach_cmd

from onboard.notify import Notifier


def _socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0)
    return sock


class _Reader(threading.Thread):
    """Reads the socket as the service manager does, all the time (its queue holds only
    a few datagrams)."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(daemon=True)
        self.sock, self.got, self.done = sock, [], threading.Event()
        sock.settimeout(0.05)

    def run(self) -> None:
        while not self.done.is_set():
            try:
                self.got.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue


def _drain(sock: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except BlockingIOError:
            return out


def test_run_notifies_ready_watchdog_and_stopping(random_model_file: Path, tmp_path: Path) -> None:
    """READY=1 once the motors run, WATCHDOG=1 from the ticks (at most one per half
    watchdog period), STOPPING=1 at the end; nothing else on the socket."""
    reader = _Reader(_socket(tmp_path / "notify"))
    reader.start()
    env = {**ENV, "NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "60000"}
    with fake_robot("--clock", "lockstep", "--seed", "0") as (_sim, pty):
        res = subprocess.run(
            roach_cmd("run", "--port", pty, "--model", str(random_model_file), "--steps", "40",
                      "--log", str(tmp_path / "run.mcap")),
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert res.returncode == 0, res.stderr
    reader.done.set()
    reader.join()
    got = reader.got
    print(f"{len(got)} datagrams: {got[0]!r} .. {got[-1]!r}")
    assert got[0].startswith("READY=1") and got[-1].startswith("STOPPING=1")
    pings = got[1:-1]
    assert pings and set(pings) == {"WATCHDOG=1"}
    assert len(pings) <= 40  # one per tick at most


def test_notifier_rules(tmp_path: Path) -> None:
    """No socket: nothing sent. A watchdog meant for another pid is ignored. Pings are
    limited to one per half watchdog period. An abstract socket (@name) works."""
    assert not Notifier.from_env({}).enabled
    assert Notifier.from_env({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "5", "WATCHDOG_PID": "1"}
                             ).watchdog_s == 0  # fmt: skip
    sock = _socket(tmp_path / "n")
    n = Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "n"), "WATCHDOG_USEC": "10000000",
                           "WATCHDOG_PID": str(os.getpid())})  # fmt: skip
    for _ in range(5):
        n.watchdog()
    n.ready("up")
    assert _drain(sock) == ["WATCHDOG=1", "READY=1\nSTATUS=up"]
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"roach-test-{os.getpid()}"
    abstract.bind("\0" + name)
    abstract.settimeout(2)
    Notifier(f"@{name}").stopping()
    assert abstract.recv(100) == b"STOPPING=1"
