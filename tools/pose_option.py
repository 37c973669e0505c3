"""The ``--pose SOURCE`` option of ``roach run``, ``collect --port``, ``hil`` and
``calibrate`` (docs/pose.md): checked at parse time, one line, exit code 2."""

from __future__ import annotations

import argparse

from firmware_bridge.pose.source import parse_pose_spec
from robot_contract.errors import ConfigError


def _pose(text: str) -> str:
    try:
        parse_pose_spec(text, "")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).strip()) from None
    return text


def add_pose_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pose",
        type=_pose,
        metavar="SOURCE",
        help="where the pose comes from: serial (the board's POSE frames; default), "
        "udp:[HOST:]PORT (the UDP pose stream) or motioncapture:TYPE@HOST:OBJECT "
        "(the `mocap` extra); docs/pose.md",
    )


def pose_override(args: argparse.Namespace) -> str | None:
    """The ``pose__source`` override of ``--pose`` (None: the config's)."""
    return getattr(args, "pose", None)
