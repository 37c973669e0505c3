"""The hil check runner (firmware_bridge/hil.py) on a scripted robot; the checks against
the fake robot, sound and broken, run end to end in tests/tools/test_cmd_hil.py."""

from __future__ import annotations

from typing import Any, cast

from firmware_bridge.hil import CheckResult, Checks, Figure, HilSettings, run_checks
from firmware_bridge.serial_robot import SerialRobot
from robot_contract.errors import LinkError


class SilentRobot:
    """Answers no HELLO; counts the stops it is asked for."""

    def __init__(self) -> None:
        self.stops = 0

    def hello(self, timeout_s: float = 1.0) -> dict[str, Any]:
        raise LinkError(f"no HELLO reply within {timeout_s:g} s")

    def counters(self) -> dict[str, int]:
        return {"bad_crc": 0}

    def stop(self) -> None:
        self.stops += 1


def test_a_failed_handshake_ends_the_run_with_the_motors_stopped() -> None:
    """A LinkError fails the handshake, the motors are stopped, no other check runs."""
    robot = SilentRobot()
    results = list(run_checks(cast(SerialRobot, robot), HilSettings()))
    assert [(r.name, r.ok) for r in results] == [("handshake", False)]
    assert "no HELLO reply" in results[0].detail and robot.stops == 1


def test_checks_run_in_the_documented_order() -> None:
    """handshake, telemetry, pose, setpoint, encoder, command_timeout, estop, range."""
    names = [name for name, _ in Checks(cast(SerialRobot, SilentRobot()), HilSettings()).all()]
    assert names == [
        "handshake", "telemetry", "pose", "setpoint", "encoder", "command_timeout", "estop",
        "range",
    ]  # fmt: skip


def test_a_check_fails_on_any_broken_figure_and_names_it_first() -> None:
    """One figure out of its bound fails the check; the line starts with that figure."""
    good = Figure("a", 1.0, "= 1", True)
    bad = Figure("telemetry rate", 50.0, "90..110 Hz", False, "Hz")
    r = CheckResult.of("telemetry", [good, bad])
    assert not r.ok and r.detail.startswith("telemetry rate 50 Hz (BROKEN, bound 90..110 Hz)")
    assert CheckResult.of("x", [good]).ok and not CheckResult.of("x", [good], "no reply").ok
