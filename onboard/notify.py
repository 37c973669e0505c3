"""The service manager's notification protocol (``sd_notify``), for ``Type=notify`` units.

systemd passes ``NOTIFY_SOCKET`` (a path, or ``@name`` for an abstract socket) and, with
``WatchdogSec=``, ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``) to the service. The service
sends newline-separated ``KEY=VALUE`` datagrams to that socket: ``READY=1`` once the robot
is driving, ``WATCHDOG=1`` at least every ``WATCHDOG_USEC``, ``STOPPING=1`` on the way
out, ``STATUS=...`` for ``systemctl status``. ``roach run`` feeds the watchdog from the
control loop (one ping per tick, at most one per half watchdog period), so a hung loop
stops the pings and systemd restarts the service (docs/deploy.md). Without
``NOTIFY_SOCKET`` every call does nothing. Sending never raises and never blocks.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Mapping


class Notifier:
    """Datagrams to the service manager; a no-op without a socket."""

    def __init__(self, address: str | None, watchdog_usec: int = 0) -> None:
        self.address = address
        self.watchdog_s = watchdog_usec / 1e6
        self.sent = 0
        self._sock: socket.socket | None = None
        self._last_ping = -float("inf")
        if address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)
            self._target = "\0" + address[1:] if address.startswith("@") else address

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Notifier:
        """From ``NOTIFY_SOCKET`` / ``WATCHDOG_USEC`` / ``WATCHDOG_PID`` (a watchdog meant
        for another process is ignored)."""
        env = os.environ if env is None else env
        usec = 0
        with contextlib.suppress(ValueError):
            usec = int(env.get("WATCHDOG_USEC", "0"))
        pid = env.get("WATCHDOG_PID")
        if pid and pid != str(os.getpid()):
            usec = 0
        return cls(env.get("NOTIFY_SOCKET") or None, usec)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, text: str) -> bool:
        """Sends one datagram; False if there is no socket or it could not be sent."""
        if self._sock is None:
            return False
        try:
            self._sock.sendto(text.encode(), self._target)
        except OSError:
            return False
        self.sent += 1
        return True

    def ready(self, status: str = "") -> None:
        self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def watchdog(self) -> None:
        """``WATCHDOG=1``, at most once per half watchdog period (every call if none)."""
        now = time.monotonic()
        if self._sock is not None and now - self._last_ping >= self.watchdog_s / 2:
            self._last_ping = now
            self.notify("WATCHDOG=1")

    def stopping(self, status: str = "") -> None:
        self.notify("STOPPING=1" + (f"\nSTATUS={status}" if status else ""))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
