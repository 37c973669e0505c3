"""``roach calibrate --port DEV [--pose SOURCE] --out robot.toml``: measures a new robot
(onboard/calibrate.py) and writes its robot file (firmware_bridge/calibration.py), which
``roach run --robot`` and ``roach collect --port --robot`` then use. The board must run
the realtime clock (a robot, or ``roach sim --clock realtime``). Motors stop on every exit.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from firmware_bridge.calibration import write_robot_file
from firmware_bridge.pose.source import PoseConfig
from onboard.calibrate import CalibrateSettings, Calibrator
from robot_contract.errors import ConfigError
from tools.argtypes import float_in, int_in
from tools.pose_option import add_pose_argument, open_serial_robot

HELP = "measure a new robot over the link and write its robot file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", required=True, help="device path or the path `roach sim` prints")
    parser.add_argument("--out", required=True, type=Path, help="robot file (TOML) to write")
    parser.add_argument("--baud", type=int_in(9600, 4_000_000), default=1_000_000)
    add_pose_argument(parser)
    parser.add_argument(
        "--battery-v",
        type=float_in(1, 30),
        help="battery voltage measured with a meter now, V (for the battery scale)",
    )
    parser.add_argument(
        "--no-pose", action="store_true", help="skip the tracker yaw step (legs on a stand)"
    )


def run(args: argparse.Namespace) -> int:
    if not args.out.parent.is_dir():
        raise ConfigError(f"--out {args.out}: folder {args.out.parent} does not exist")
    # The yaw step needs the tracker's own frame: no alignment, no offset.
    raw = PoseConfig(source=args.pose or "serial", align="none")
    robot = open_serial_robot(args.port, args.baud, None, raw)
    with robot:
        hello = robot.hello(timeout_s=1.0)
        if str(hello.get("name", "")).endswith("lockstep"):
            raise ConfigError(
                f"{args.port}: the board runs the lockstep clock; calibration measures in real "
                "time (roach sim --clock realtime)"
            )
        cal = Calibrator(robot, CalibrateSettings(battery_v=args.battery_v), not args.no_pose)
        result = cal.run()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    header = f"roach calibrate, {stamp}, port {args.port}, pose {raw.source}\n" + "\n".join(
        result.lines
    )
    write_robot_file(args.out, result.robot, header)
    print("\n".join(result.lines))
    print(f"robot file: {args.out}")
    return 0 if result.ok else 1
