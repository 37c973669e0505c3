"""``roach hil``: the hardware-in-the-loop suite against a robot on a serial port.

Runs the checks of firmware_bridge/hil.py (handshake, telemetry rate and sequence,
pose, setpoint round trip, encoder direction and counts per revolution, command
timeout, emergency-stop latch, range) and then a short closed-loop run of the shipped
model (onboard/hil_closed_loop.py) against the robot on ``--port``; works the same
against the fake (``roach sim --clock realtime``, broken boards with ``--faults``).
Prints a report to paste into a lab notebook (each figure with its bound, PASS or
FAIL per check), ``--json OUT`` writes it for machines; exits 1 if any check failed.
The motors are stopped on every exit path.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from firmware_bridge.hil import Check, CheckResult, HilSettings, run_checks
from robot_contract.errors import ConfigError
from tools.argtypes import float_in, int_in
from tools.pose_option import add_pose_argument, open_serial_robot

HELP = "hardware-in-the-loop checks against a robot on a port"
SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "models" / "grbal.onnx"


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
    parser.add_argument(
        "--model",
        default=str(SHIPPED_MODEL),
        help="model of the closed-loop check (default: the shipped models/grbal.onnx)",
    )
    parser.add_argument(
        "--no-closed-loop", action="store_true", help="skip the closed-loop run of the model"
    )
    parser.add_argument("--json", metavar="OUT", help="also write the report as JSON here")
    add_pose_argument(parser)


def run(args: argparse.Namespace) -> int:
    if not 0 < args.rate_hz <= 1000:
        raise ConfigError(f"--rate-hz {args.rate_hz:g} out of range; valid: (0, 1000]")
    if not 2.0 <= args.leg_rev_s <= 9.0:
        raise ConfigError(f"--leg-rev-s {args.leg_rev_s:g} out of range; valid: [2, 9]")
    if not 10 <= args.timeout_ms <= 10_000:
        raise ConfigError(f"--timeout-ms {args.timeout_ms} out of range; valid: [10, 10000]")
    extra: list[tuple[str, Check]] = []
    robot = open_serial_robot(args.port, args.baud, args.pose)
    if not args.no_closed_loop:
        from onboard.config import ControllerConfig
        from onboard.hil_closed_loop import closed_loop_check
        from onboard.loop import load_controller_model

        load_controller_model(args.model, ControllerConfig())  # a bad model fails first
        extra.append(("closed_loop", lambda: closed_loop_check(robot, args.model)))
    settings = HilSettings(
        rate_hz=args.rate_hz, leg_rev_s=args.leg_rev_s, timeout_ms=args.timeout_ms
    )
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    print(
        f"roach hil report, {started}, port {args.port}: telemetry {settings.rate_hz:g} Hz, "
        f"setpoint {settings.leg_rev_s:g} rev/s, command timeout {settings.timeout_ms} ms",
        flush=True,
    )
    results: list[CheckResult] = []
    with robot:
        for r in run_checks(robot, settings, extra):
            results.append(r)
            print(f"{'PASS' if r.ok else 'FAIL'} {r.name:<15} {r.detail}", flush=True)
    failed = [r.name for r in results if not r.ok]
    planned = 8 + len(extra)
    print(
        f"{len(results) - len(failed)} of {planned} checks passed"
        + (f"; failed: {', '.join(failed)}" if failed else "")
        + (f"; {planned - len(results)} not run" if len(results) < planned else "")
    )
    if args.json:
        report = {
            "started": started,
            "port": args.port,
            "settings": settings.__dict__,
            "passed": not failed and len(results) == planned,
            "checks": [r.as_dict() for r in results],
        }
        try:
            Path(args.json).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"--json {args.json}: cannot write ({exc.strerror or exc})") from None
    return 1 if failed else 0
