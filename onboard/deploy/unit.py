"""The systemd unit that runs ``roach run`` on the robot (docs/deploy.md).

``Type=notify``: the service is up once ``roach run`` says ``READY=1`` (motors started),
and ``WatchdogSec=`` is fed from the control loop (onboard/notify.py), so a loop that
hangs is killed and, with ``Restart=on-failure``, started again. It runs as a dedicated
user in the ``dialout`` group (the serial device) and imports the code through the
``current`` link.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

UNIT_NAME = "roach-run.service"


@dataclass(frozen=True)
class UnitSettings:
    root: str
    """The deployment folder on the robot (holds ``current``)."""
    python: str
    """The robot's Python with the ``onboard`` extra installed."""
    port: str = "/dev/ttyAMA0"
    user: str = "roach"
    model: str = "models/grbal.onnx"
    """Relative to the bundle."""
    config: str | None = "config/run.toml"
    watchdog_s: int = 2
    """Several control periods, far above a tick: only a hung loop misses it."""


def unit_text(s: UnitSettings) -> str:
    cur = f"{s.root.rstrip('/')}/current"
    args = [s.python, "-m", "tools.cli", "run", "--port", s.port, "--model", f"{cur}/{s.model}"]
    if s.config:
        args += ["--config", f"{cur}/{s.config}"]
    args += ["--quiet"]  # logs: runs/run-<time>.mcap in the state directory
    device = s.port.removeprefix("/dev/").replace("/", "-")
    return f"""\
[Unit]
Description=roach onboard controller (GrBAL) on {s.port}
After=dev-{device}.device
Wants=dev-{device}.device

[Service]
Type=notify
NotifyAccess=main
ExecStart={shlex.join(args)}
WatchdogSec={s.watchdog_s}
Restart=on-failure
RestartSec=2
TimeoutStopSec=5
User={s.user}
Group={s.user}
SupplementaryGroups=dialout
StateDirectory=roach
WorkingDirectory=/var/lib/roach
Environment=PYTHONPATH={cur}/code
Environment=PYTHONDONTWRITEBYTECODE=1
Environment=PYTHONUNBUFFERED=1

[Install]
WantedBy=multi-user.target
"""
