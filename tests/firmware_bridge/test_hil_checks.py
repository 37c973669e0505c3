"""The hil check runner (firmware_bridge/hil.py) on a scripted robot; the checks against
the fake robot run end to end in tests/tools/test_cmd_hil.py."""

from __future__ import annotations

from typing import Any, cast

from firmware_bridge.hil import Checks, HilSettings, run_checks
from firmware_bridge.serial_robot import SerialRobot
from robot_contract.errors import ProtocolError


class SilentRobot:
    """Answers no HELLO; counts the stops it is asked for."""

    def __init__(self) -> None:
        self.stops = 0

    def hello(self, timeout_s: float = 1.0) -> dict[str, Any]:
        raise ProtocolError(f"no HELLO reply within {timeout_s:g} s")

    def stop(self) -> None:
        self.stops += 1


def test_a_failed_link_check_ends_the_run_with_the_motors_stopped() -> None:
    """A ProtocolError fails the link check, the motors are stopped, no other check runs."""
    robot = SilentRobot()
    results = list(run_checks(cast(SerialRobot, robot), HilSettings()))
    assert [(r.name, r.ok) for r in results] == [("link", False)]
    assert "no HELLO reply" in results[0].detail and robot.stops == 1


def test_checks_run_in_the_documented_order() -> None:
    """link, telemetry, pose, drive, watchdog, estop, range."""
    names = [name for name, _ in Checks(cast(SerialRobot, SilentRobot()), HilSettings()).all()]
    assert names == ["link", "telemetry", "pose", "drive", "watchdog", "estop", "range"]
