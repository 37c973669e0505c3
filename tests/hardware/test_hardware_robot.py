"""Hardware-in-the-loop tests: a real robot on a serial port, legs free on a stand.

Run with ``make test-hardware PORT=/dev/ttyAMA0`` (or ``pytest -m hardware --port DEV``).
The same tests pass against ``roach sim --clock realtime --link /tmp/roach`` with
``PORT=/tmp/roach``, which is how they are checked without hardware.
"""

from __future__ import annotations

import pytest

from firmware_bridge.hil import Checks, HilSettings
from firmware_bridge.serial_robot import SerialRobot

pytestmark = [pytest.mark.hardware, pytest.mark.timeout(60)]

CHECKS = (
    "handshake", "telemetry", "pose", "setpoint", "encoder", "command_timeout", "estop", "range",
)  # fmt: skip


@pytest.fixture
def checks(hardware_port):
    robot = SerialRobot(hardware_port)
    try:
        c = Checks(robot, HilSettings(rate_hz=100.0, leg_rev_s=4.0, timeout_ms=250))
        c.handshake()
        yield c
    finally:
        robot.stop()
        robot.close()


@pytest.mark.parametrize("name", CHECKS)
def test_hil_check(checks, name):
    """Each hil check passes on the robot (the motors are stopped after each)."""
    fn = dict(checks.all())[name]
    if name not in ("handshake", "telemetry", "range"):
        checks.telemetry()  # these read the telemetry stream
    result = fn()
    assert result.ok, result.detail
