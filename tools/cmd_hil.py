"""``roach hil``: hardware-in-the-loop checks of a robot on a serial port.

Runs the checks of firmware_bridge/hil.py (link, telemetry rate, pose, drive on a stand,
watchdog, emergency stop, range) against the robot on ``--port``; works the same against
the fake (``roach sim --clock realtime``). Prints one line per check and exits 1 if any
failed; the motors are stopped on every exit path.
"""

from __future__ import annotations

import argparse

from firmware_bridge.hil import CheckResult, HilSettings, run_checks
from firmware_bridge.serial_robot import SerialRobot
from robot_contract.errors import ConfigError
from tools.argtypes import float_in, int_in

HELP = "hardware-in-the-loop checks against a robot on a port"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", required=True, help="device path or pyserial URL")
    parser.add_argument(
        "--baud",
        type=int_in(9600, 4_000_000),
        default=1_000_000,
        help="baud rate (default 1000000)",
    )
    parser.add_argument(
        "--rate-hz",
        type=float_in(0, 1000, open_low=True),
        default=100.0,
        help="telemetry rate to ask for (default 100)",
    )
    parser.add_argument(
        "--leg-rev-s",
        type=float_in(2, 9),
        default=4.0,
        help="setpoint of the drive check (default 4)",
    )
    parser.add_argument(
        "--timeout-ms",
        type=int_in(20, 10_000),
        default=250,
        help="command timeout to arm (default 250)",
    )


def run(args: argparse.Namespace) -> int:
    if not 0 < args.rate_hz <= 1000:
        raise ConfigError(f"--rate-hz {args.rate_hz:g} out of range; valid: (0, 1000]")
    if not 2.0 <= args.leg_rev_s <= 9.0:
        raise ConfigError(f"--leg-rev-s {args.leg_rev_s:g} out of range; valid: [2, 9]")
    settings = HilSettings(
        rate_hz=args.rate_hz, leg_rev_s=args.leg_rev_s, timeout_ms=args.timeout_ms
    )
    results: list[CheckResult] = []
    robot = SerialRobot(args.port, baudrate=args.baud)
    with robot:
        for r in run_checks(robot, settings):
            results.append(r)
            print(f"{'PASS' if r.ok else 'FAIL'} {r.name:<10} {r.detail}", flush=True)
    failed = [r.name for r in results if not r.ok]
    print(
        f"{len(results) - len(failed)} of {len(results)} checks passed"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0
