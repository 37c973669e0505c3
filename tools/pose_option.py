"""The ``--pose SOURCE`` option of ``roach run``, ``collect --port``, ``hil`` and
``calibrate`` (docs/pose.md): checked at parse time, one line, exit code 2."""

from __future__ import annotations

import argparse
import dataclasses

from firmware_bridge.calibration import RobotFile, load_robot_file
from firmware_bridge.pose.source import PoseAlignment, PoseConfig, open_pose_source, parse_pose_spec
from firmware_bridge.serial_robot import SerialRobot
from onboard.config import ControllerConfig
from robot_contract.errors import ConfigError, LinkError


def _pose(text: str) -> str:
    try:
        parse_pose_spec(text, "")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).strip()) from None
    return text


def add_pose_argument(parser: argparse._ActionsContainer) -> None:
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


def open_serial_robot(
    port: str, baudrate: int, pose: str | None, cfg: PoseConfig | None = None
) -> SerialRobot:
    """The robot on ``port`` with its pose from ``pose`` (``--pose``; None: ``cfg``'s
    source, or the serial POSE frames). ConfigError/LinkError, one line, if the port or
    the pose source cannot be opened; nothing is left open then."""
    cfg = cfg or PoseConfig()
    if pose is not None:
        cfg = dataclasses.replace(cfg, source=pose)
    source = open_pose_source(cfg)
    try:
        return SerialRobot(port, baudrate=baudrate, pose_source=source,
                           alignment=PoseAlignment(cfg))  # fmt: skip
    except LinkError:
        if source is not None:
            source.close()
        raise


def add_robot_argument(parser: argparse._ActionsContainer) -> None:
    parser.add_argument(
        "--robot",
        metavar="TOML",
        help="the robot file `roach calibrate` wrote: encoder signs and counts, gyro bias, "
        "battery scale, tracker yaw offset (default: the nominal robot)",
    )


def with_robot_file(cfg: ControllerConfig, path: str | None) -> tuple[ControllerConfig, RobotFile]:
    """The robot file (nominal without ``path``) and ``cfg`` with its tracker yaw offset
    (unless the config sets one itself)."""
    robot = load_robot_file(path) if path else RobotFile()
    if robot.yaw_offset_rad and not cfg.pose.yaw_offset_rad:
        cfg = dataclasses.replace(
            cfg, pose=dataclasses.replace(cfg.pose, yaw_offset_rad=robot.yaw_offset_rad)
        )
    return cfg, robot
