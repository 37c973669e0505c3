"""The pose and the target path in the run log, in Foxglove's well-known schemas, so a
logged run opens in Foxglove's 3D panel as the live view shows it (docs/log-format.md).

``/roach/pose`` is a ``foxglove.PoseInFrame`` per tick with a pose, ``/roach/path`` a
``foxglove.PosesInFrame`` of the task's path once it is placed (at the first state);
both JSON, frame ``world``, positions in metres.
"""

from __future__ import annotations

import math
import time
from typing import Any

from firmware_bridge.pose.datagram import rpy_to_quaternion as quaternion
from onboard.logging_mcap import TickLogWriter
from onboard.loop import Controller
from onboard.tick_record import TickRecord

TOPIC_POSE = "/roach/pose"
TOPIC_PATH = "/roach/path"
FRAME = "world"


def _stamp(t_ns: int) -> dict[str, int]:
    return {"sec": t_ns // 1_000_000_000, "nsec": t_ns % 1_000_000_000}


def _pose(x: float, y: float, z: float, q: tuple[float, float, float, float]) -> dict[str, Any]:
    return {
        "position": {"x": x, "y": y, "z": z},
        "orientation": {"x": q[0], "y": q[1], "z": q[2], "w": q[3]},
    }


def pose_message(x: float, y: float, z: float, roll: float, pitch: float, yaw: float,
                 t_ns: int) -> dict[str, Any]:  # fmt: skip
    """A foxglove.PoseInFrame as JSON."""
    q = quaternion(roll, pitch, yaw)
    return {"timestamp": _stamp(t_ns), "frame_id": FRAME, "pose": _pose(x, y, z, q)}


def path_message(xy: list[tuple[float, float]], t_ns: int) -> dict[str, Any]:
    """A foxglove.PosesInFrame of points on the ground as JSON."""
    unit = (0.0, 0.0, 0.0, 1.0)
    return {
        "timestamp": _stamp(t_ns),
        "frame_id": FRAME,
        "poses": [_pose(x, y, 0.0, unit) for x, y in xy],
    }


class PoseLogger:
    """A tick observer writing the pose each tick and the path once, to the run log."""

    def __init__(self, ctl: Controller, log: TickLogWriter) -> None:
        self.ctl, self.log = ctl, log
        self._path_written = False

    def __call__(self, rec: TickRecord) -> None:
        if rec.pose is None:
            return
        p, t_ns = rec.pose.value, time.time_ns()
        if not all(math.isfinite(v) for v in (p.x, p.y, p.z, p.roll, p.pitch, p.yaw)):
            return
        self.log.write(TOPIC_POSE, pose_message(p.x, p.y, p.z, p.roll, p.pitch, p.yaw, t_ns))
        task = self.ctl.objective.task
        if not self._path_written and task is not None:
            self._path_written = True
            xy = [(float(a), float(b)) for a, b in task.points]
            self.log.write(TOPIC_PATH, path_message(xy, t_ns))
