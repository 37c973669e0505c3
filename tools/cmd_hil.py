"""``roach hil``: hardware-in-the-loop checks of a robot on a serial port.

Runs the checks a technician wants before a robot is trusted with the controller: the
link answers, telemetry arrives at the asked rate with increasing sample numbers, the
pose stream is live, the legs follow a setpoint (robot on a stand, legs free), the
command watchdog stops the motors, the emergency stop latches and clears, and an
out-of-range setpoint is refused. Works the same against the fake (``roach sim --clock
realtime``). Prints one line per check and exits 1 if any failed; the motors are
stopped on every exit path.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

from firmware_bridge.messages import (
    FLAG_ESTOPPED,
    FLAG_MOTORS_ON,
    FLAG_WATCHDOG_TRIPPED,
    SetLegVelocity,
)
from firmware_bridge.records import ENCODER_COUNTS_PER_REV
from firmware_bridge.serial_robot import SerialRobot
from robot_contract.errors import ConfigError, ProtocolError

HELP = "hardware-in-the-loop checks against a robot on a port"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", required=True, help="device path or pyserial URL")
    parser.add_argument("--baud", type=int, default=1_000_000, help="baud rate (default 1000000)")
    parser.add_argument(
        "--rate-hz", type=float, default=100.0, help="telemetry rate to ask for (default 100)"
    )
    parser.add_argument(
        "--leg-rev-s", type=float, default=4.0, help="setpoint of the drive check (default 4)"
    )
    parser.add_argument(
        "--timeout-ms", type=int, default=250, help="command timeout to arm (default 250)"
    )


@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str


class Checks:
    """The checks, in the order they run; each returns (ok, detail)."""

    def __init__(self, robot: SerialRobot, args: argparse.Namespace) -> None:
        self.robot, self.args = robot, args

    def link(self) -> tuple[bool, str]:
        info = self.robot.hello(timeout_s=2.0)
        return True, f"firmware {info['firmware']} protocol {info['protocol_version']} " + (
            f"name {info['name']!r}"
        )

    def telemetry(self) -> tuple[bool, str]:
        self.robot.start_telemetry(self.args.rate_hz)
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
        ok = rate >= 0.8 * self.args.rate_hz and increasing
        return (
            ok,
            f"{rate} samples/s (asked {self.args.rate_hz:g}), indices increasing={increasing}",
        )

    def pose(self) -> tuple[bool, str]:
        pose = self.robot.latest_pose()
        if pose is None:
            return False, "no pose received"
        age = time.monotonic() - pose.received_monotonic_s
        return age < 0.25, f"latest pose {age * 1e3:.0f} ms old"

    def drive(self) -> tuple[bool, str]:
        target = self.args.leg_rev_s
        self.robot.set_command_timeout(self.args.timeout_ms)
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
        self.robot.set_command_timeout(self.args.timeout_ms)
        self.robot.start_motors()
        self._drive_for(0.3, self.args.leg_rev_s)
        time.sleep(self.args.timeout_ms / 1000.0 + 0.3)  # no commands: the board must act
        tel = self.robot.latest_telemetry()
        if tel is None:
            return False, "no telemetry"
        tripped = bool(tel.status_flags & FLAG_WATCHDOG_TRIPPED)
        motors_off = not tel.status_flags & FLAG_MOTORS_ON
        return tripped and motors_off, f"tripped={tripped} motors_off={motors_off}"

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


def run(args: argparse.Namespace) -> int:
    if args.rate_hz <= 0 or args.rate_hz > 1000:
        raise ConfigError(f"--rate-hz {args.rate_hz:g} out of range; valid: (0, 1000]")
    if not 2.0 <= args.leg_rev_s <= 9.0:
        raise ConfigError(f"--leg-rev-s {args.leg_rev_s:g} out of range; valid: [2, 9]")
    results: list[CheckResult] = []
    robot = SerialRobot(args.port, baudrate=args.baud)
    with robot:
        checks = Checks(robot, args)
        for name, fn in checks.all():
            try:
                ok, detail = fn()
            except ProtocolError as exc:
                ok, detail = False, str(exc)
            finally:
                robot.stop()
            results.append(CheckResult(name, ok, detail))
            print(f"{'PASS' if ok else 'FAIL'} {name:<10} {detail}", flush=True)
            if name == "link" and not ok:
                break
    failed = [r.name for r in results if not r.ok]
    print(
        f"{len(results) - len(failed)} of {len(results)} checks passed"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0
