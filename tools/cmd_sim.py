"""``roach sim``: the software-in-the-loop fake robot behind a pseudo-terminal.

Prints the pseudo-terminal's path as the first line on stdout; point ``roach run
--port`` (or any pyserial program) at it. On SIGINT or SIGTERM it exits cleanly and
prints one line ``stats {json}`` with the injected faults and the board's counters.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING

from firmware_bridge.fake.board_faults import make_firmware, split_faults
from firmware_bridge.fake.faults import parse_faults
from robot_contract.errors import ConfigError
from tools.argtypes import SEED, float_in

if TYPE_CHECKING:
    from firmware_bridge.fake.c_firmware import CFirmware
    from firmware_bridge.fake.firmware import FakeFirmware, Simulation
    from firmware_bridge.pose.udp import UdpPosePublisher

HELP = "software-in-the-loop fake robot behind a pseudo-terminal"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--clock",
        choices=("realtime", "lockstep"),
        default="realtime",
        help="realtime: simulation follows the wall clock; lockstep: each set-leg-velocity "
        "command advances 0.1 s and is answered by telemetry + pose (docs/protocol.md)",
    )
    parser.add_argument(
        "--board",
        choices=("python", "c"),
        default="python",
        help="the board logic: python (the fake's state machine) or c (the C firmware of "
        "firmware_bridge/board at its 1 kHz tick; docs/firmware.md)",
    )
    parser.add_argument("--link", metavar="PATH", help="also make a symlink to the pty here")
    parser.add_argument(
        "--pose-out",
        metavar="udp:HOST:PORT",
        help="publish the pose as a tracker would, as UDP pose datagrams to HOST:PORT, "
        "and send no POSE frames on the serial line (docs/pose.md)",
    )
    parser.add_argument(
        "--condition", default="", help="simulator condition string, e.g. 'terrain=turf'"
    )
    parser.add_argument("--condition-file", metavar="TOML", help="condition from a file")
    parser.add_argument("--seed", type=SEED, default=0, help="simulation and fault seed")
    parser.add_argument(
        "--miscal",
        default="",
        help="planted miscalibration, e.g. 'encoder_left=-1,gyro_bias_z=0.05' (rad/s); "
        "motor gains and the tracker's yaw are conditions (gain_left=, yaw_offset_deg=)",
    )
    parser.add_argument(
        "--tip-at",
        type=float_in(0, 1e6),
        metavar="S",
        help="roll the body onto its back at simulated second S (a robot that flipped)",
    )
    parser.add_argument(
        "--faults",
        default="",
        help="link: e.g. 'corrupt=0.01,drop=0.05,delay_ms=30,jitter_ms=20,disconnect_at=5:1'; "
        "broken board: watchdog=off, stuck_encoder=left|right, reversed_motor=left|right, "
        "telemetry_rate=half, crc=wrong (docs/protocol.md)",
    )


def _check_link(link: str) -> None:
    """Refuses a --link path the symlink cannot be made at, before the pty opens."""
    if os.path.lexists(link) and not os.path.islink(link):
        raise ConfigError(f"--link {link!r} exists and is not a symlink; not replacing it")
    parent = os.path.dirname(os.path.abspath(link))
    if not os.path.isdir(parent):
        raise ConfigError(f"--link {link!r}: directory {parent!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"--link {link!r}: directory {parent!r} is not writable")


def _pose_out(text: str) -> UdpPosePublisher:
    """The publisher of ``--pose-out udp:HOST:PORT``; ConfigError (one line) otherwise."""
    from firmware_bridge.pose.udp import UdpPosePublisher

    kind, _, rest = text.partition(":")
    host, _, port = rest.rpartition(":")
    if kind != "udp" or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"--pose-out {text!r}: write udp:HOST:PORT (port 1..65535)")
    return UdpPosePublisher(host, int(port))


def run(args: argparse.Namespace) -> int:
    board_faults, link_faults = split_faults(args.faults)
    faults = parse_faults(link_faults)  # before the slow simulator import: fail fast
    if args.condition and args.condition_file:
        raise ConfigError("give --condition or --condition-file, not both")
    if args.link:
        _check_link(args.link)
    pose_out = _pose_out(args.pose_out) if args.pose_out else None
    if pose_out is not None and args.board == "c":
        raise ConfigError("--pose-out works with the Python board only; leave out --board c")
    from firmware_bridge.fake.server import PtyServer
    from firmware_bridge.sim.conditions import load_condition_file, parse_condition
    from firmware_bridge.sim.robot import SimRobot

    condition = (
        load_condition_file(args.condition_file)
        if args.condition_file
        else parse_condition(args.condition)
    )
    sim = SimRobot(condition, seed=args.seed)
    board_sim: Simulation = sim
    if args.tip_at is not None:
        from firmware_bridge.fake.mishaps import TippingSimulation

        if args.board == "c":
            raise ConfigError("--tip-at works with the Python board only; leave out --board c")
        board_sim = TippingSimulation(sim, args.tip_at)
    if args.miscal:
        from firmware_bridge.fake.mishaps import MiscalibratedSimulation, parse_miscalibration

        if args.board == "c":
            raise ConfigError("--miscal works with the Python board only; leave out --board c")
        board_sim = MiscalibratedSimulation(board_sim, parse_miscalibration(args.miscal))
    firmware: FakeFirmware | CFirmware
    if args.board == "c":
        from firmware_bridge.fake.c_firmware import CFirmware

        if board_faults.any:
            raise ConfigError(
                "--faults: the broken-board faults (watchdog=off, stuck encoder, ...) break "
                "the Python board; give them without --board c"
            )
        firmware = CFirmware(sim, lockstep=args.clock == "lockstep")
    else:
        firmware = make_firmware(
            board_sim,
            board_faults,
            lockstep=args.clock == "lockstep",
            pose_out=None if pose_out is None else pose_out.publish,
        )
    server = PtyServer(firmware, faults=faults, link=args.link, seed=args.seed)

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        server.stop()

    previous = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if server.path is not None:  # not when the pty could not be set up
            stats = server.stats()
            if pose_out is not None:
                stats["pose_out"] = {"sent": pose_out.sent, "send_errors": pose_out.send_errors}
                pose_out.close()
            print("stats " + json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    from tools.cli import main

    sys.exit(main(["sim", *sys.argv[1:]]))
