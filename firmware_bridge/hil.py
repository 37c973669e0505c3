"""Hardware-in-the-loop checks of a robot on a serial port (``roach hil``).

The checks a technician wants before a robot is trusted with the controller: the link
answers, telemetry arrives at the asked rate with increasing sample numbers, the pose
stream is live, the legs follow a setpoint (robot on a stand, legs free), the command
watchdog stops the motors, the emergency stop latches and clears, and an out-of-range
setpoint is refused. They work the same against the fake (``roach sim --clock
realtime``). ``run_checks`` runs them in order and stops the motors after each.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from firmware_bridge.messages import (
    FLAG_ESTOPPED,
    FLAG_MOTORS_ON,
    FLAG_WATCHDOG_TRIPPED,
    SetLegVelocity,
)
from firmware_bridge.records import ENCODER_COUNTS_PER_REV
from firmware_bridge.serial_robot import SerialRobot
from robot_contract.errors import ProtocolError


@dataclass(frozen=True)
class HilSettings:
    """What the checks ask of the robot."""

    rate_hz: float = 100.0
    """Telemetry rate to ask for; the telemetry check wants at least 80% of it."""
    leg_rev_s: float = 4.0
    """Setpoint of the drive and watchdog checks (rev/s); the drive check wants both legs
    within 25% of it."""
    timeout_ms: int = 250
    """Command timeout to arm for the drive and watchdog checks."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    """One line: what was measured."""


class Checks:
    """The checks, in the order they run; each returns (ok, detail)."""

    def __init__(self, robot: SerialRobot, settings: HilSettings) -> None:
        self.robot, self.settings = robot, settings

    def link(self) -> tuple[bool, str]:
        info = self.robot.hello(timeout_s=2.0)
        return True, f"firmware {info['firmware']} protocol {info['protocol_version']} " + (
            f"name {info['name']!r}"
        )

    def telemetry(self) -> tuple[bool, str]:
        self.robot.start_telemetry(self.settings.rate_hz)
        time.sleep(0.2)
        first = self.robot.latest_telemetry()
        n0 = self.robot.counters()["telemetry"]
        time.sleep(1.0)
        last = self.robot.latest_telemetry()
        n1 = self.robot.counters()["telemetry"]
        if first is None or last is None:
            return False, "no telemetry received"
        rate = n1 - n0
        increasing = last.value.sample_index > first.value.sample_index
        ok = rate >= 0.8 * self.settings.rate_hz and increasing
        return (
            ok,
            f"{rate} samples/s (asked {self.settings.rate_hz:g}), indices increasing={increasing}",
        )

    def pose(self) -> tuple[bool, str]:
        pose = self.robot.latest_pose()
        if pose is None:
            return False, "no pose received"
        age = time.monotonic() - pose.received_monotonic_s
        return age < 0.25, f"latest pose {age * 1e3:.0f} ms old"

    def drive(self) -> tuple[bool, str]:
        target = self.settings.leg_rev_s
        self.robot.set_command_timeout(self.settings.timeout_ms)
        self.robot.start_motors()
        self._drive_for(0.5, target)  # spin up
        t0 = self.robot.latest_telemetry()
        self._drive_for(1.0, target)
        t1 = self.robot.latest_telemetry()
        self.robot.stop()
        if t0 is None or t1 is None:
            return False, "no telemetry while driving"
        dt = ((t1.value.timestamp_us - t0.value.timestamp_us) % (1 << 32)) * 1e-6
        if dt <= 0:
            return False, "telemetry clock did not advance"
        rates = [
            (b - a) / ENCODER_COUNTS_PER_REV / dt
            for a, b in (
                (t0.value.left_pos, t1.value.left_pos),
                (t0.value.right_pos, t1.value.right_pos),
            )
        ]
        ok = all(abs(r - target) <= 0.25 * target for r in rates)
        return ok, f"leg rates L {rates[0]:.2f} R {rates[1]:.2f} rev/s for setpoint {target:g}"

    def watchdog(self) -> tuple[bool, str]:
        self.robot.set_command_timeout(self.settings.timeout_ms)
        self.robot.start_motors()
        self._drive_for(0.3, self.settings.leg_rev_s)
        time.sleep(self.settings.timeout_ms / 1000.0 + 0.3)  # no commands: the board must act
        tel = self.robot.latest_telemetry()
        if tel is None:
            return False, "no telemetry"
        tripped = bool(tel.status_flags & FLAG_WATCHDOG_TRIPPED)
        motors_off = not tel.status_flags & FLAG_MOTORS_ON
        # The board's own record: the trip is timeout_ms after the last command, at most
        # one 1 ms tick later (docs/protocol.md, "Board behaviour").
        st = self.robot.status()
        after_ms = ((st.watchdog_trip_us - st.last_command_us) % (1 << 32)) / 1000.0
        in_bound = st.timeout_ms <= after_ms <= st.timeout_ms + 1.0
        ok = tripped and motors_off and in_bound
        return ok, (
            f"tripped={tripped} motors_off={motors_off}, trip {after_ms:g} ms after the last "
            f"command (timeout {st.timeout_ms} ms, bound +1 ms)"
        )

    def estop(self) -> tuple[bool, str]:
        self.robot.emergency_stop()
        refused = False
        try:
            self.robot.start_motors()
        except ProtocolError:
            refused = True
        time.sleep(0.1)
        tel = self.robot.latest_telemetry()
        latched = tel is not None and bool(tel.status_flags & FLAG_ESTOPPED)
        self.robot.clear_emergency_stop()
        time.sleep(0.1)
        tel = self.robot.latest_telemetry()
        cleared = tel is not None and not tel.status_flags & FLAG_ESTOPPED
        ok = refused and latched and cleared
        return ok, f"start refused={refused} latched={latched} cleared={cleared}"

    def range_check(self) -> tuple[bool, str]:
        try:
            self.robot.request(SetLegVelocity.from_rev_s(30.0, 30.0))
        except ProtocolError as exc:
            self.robot.stop()
            return True, f"30 rev/s refused ({exc})"
        self.robot.stop()
        return False, "30 rev/s setpoint was accepted"

    def _drive_for(self, seconds: float, rev_s: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.robot.set_leg_velocity(rev_s, rev_s)
            time.sleep(0.05)

    def all(self) -> list[tuple[str, Callable[[], tuple[bool, str]]]]:
        return [
            ("link", self.link),
            ("telemetry", self.telemetry),
            ("pose", self.pose),
            ("drive", self.drive),
            ("watchdog", self.watchdog),
            ("estop", self.estop),
            ("range", self.range_check),
        ]


def run_checks(robot: SerialRobot, settings: HilSettings) -> Iterator[CheckResult]:
    """Each check in the order of ``Checks.all``, the motors stopped after each; a
    ProtocolError fails its check, and a failed link check ends the run."""
    for name, fn in Checks(robot, settings).all():
        try:
            ok, detail = fn()
        except ProtocolError as exc:
            ok, detail = False, str(exc)
        finally:
            robot.stop()
        yield CheckResult(name, ok, detail)
        if name == "link" and not ok:
            return
