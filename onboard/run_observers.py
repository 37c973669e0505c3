"""What watches a ``roach run`` besides its tick log: the pose and path in Foxglove's
schemas in the same log, the service manager's watchdog, the terminal status line and
the live view, each a ``Controller.observers`` entry.

None of them is needed to drive: without ``NOTIFY_SOCKET`` the notifier does nothing,
the status line draws only on a terminal, and the live view (``--live``, the ``live``
extra) is imported only when asked for.
"""

from __future__ import annotations

import sys

from onboard.logging_mcap import TickLogWriter
from onboard.loop import Controller
from onboard.notify import Notifier
from onboard.pose_log import PoseLogger
from onboard.status_line import StatusLine


class RunObservers:
    """Attaches the observers to ``ctl``; ``started()`` once driving, ``close()`` at the end."""

    def __init__(
        self,
        ctl: Controller,
        *,
        log: TickLogWriter | None = None,
        quiet: bool = False,
        live_port: int | None = None,
        live_host: str = "127.0.0.1",
    ) -> None:
        self.notifier = Notifier.from_env()
        ctl.observers.append(lambda _rec: self.notifier.watchdog())
        if log is not None:
            ctl.observers.append(PoseLogger(ctl, log))
        self.status: StatusLine | None = None
        if not quiet and sys.stderr.isatty():
            self.status = StatusLine(sys.stderr)
            ctl.observers.append(self.status)
        self.live = None
        if live_port is not None:
            from onboard.live import LiveView  # the `live` extra, only when asked for

            self.live = LiveView(ctl, host=live_host, port=live_port)
            ctl.observers.append(self.live.publish)

    def started(self) -> None:
        self.notifier.ready("driving")

    def close(self, status: str = "") -> None:
        self.notifier.stopping(status)
        self.notifier.close()
        if self.status is not None:
            self.status.close()
        if self.live is not None:
            self.live.close()
