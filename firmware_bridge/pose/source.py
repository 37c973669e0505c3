"""Where the robot's pose comes from: one interface, three kinds of source.

``--pose SOURCE`` (``[pose] source`` in the config) names one:

- ``serial``: the motor board's POSE frames on the serial link (the fake robot's default);
- ``udp:[HOST:]PORT``: the UDP pose datagram of firmware_bridge/pose/datagram.py, sent by
  any tracker bridge (ROS 2 node, a script beside the tracker's SDK, ``roach sim
  --pose-out``); HOST is the address to listen on (default 0.0.0.0);
- ``motioncapture:TYPE@HOST:OBJECT[?key=value&...]``: a motion-capture system through the
  ``motioncapture`` package (the ``mocap`` extra; imported only when chosen).

Every source turns what it receives into a ``Stamped[Pose]``: the pose in the path's
frame (``PoseAlignment``), stamped with this computer's monotonic arrival time, so the
loop's stale-pose rule (onboard/safety.py) is the same for all of them; a repeated
tracker timestamp is not a new pose and so ages. ``latency_s`` is the tracker's
capture-to-arrival time where the source can tell it.
"""

from __future__ import annotations

import abc
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from firmware_bridge.records import Pose
from firmware_bridge.robot import Stamped
from robot_contract.errors import ConfigError

KINDS = ("serial", "udp", "motioncapture")
MOCAP_TYPES = (
    "vicon",
    "optitrack",
    "optitrack_closed_source",
    "qualisys",
    "vrpn",
    "nokov",
    "fzmotion",
    "motionanalysis",
    "mock",
)
"""The ``motioncapture`` package's system types (``mock`` is its test backend)."""
ALIGNS = ("auto", "start", "none")
UP_AXES = ("z", "y")


@dataclass(frozen=True)
class PoseSpec:
    """A parsed ``--pose`` string."""

    kind: str
    host: str = ""
    port: int = 0
    mocap_type: str = ""
    body: str = ""
    options: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        if self.kind == "udp":
            return f"udp:{self.host}:{self.port}"
        if self.kind == "motioncapture":
            return f"motioncapture:{self.mocap_type}@{self.host}:{self.body}"
        return self.kind


def parse_pose_spec(text: str, where: str = "--pose") -> PoseSpec:
    """The source ``text`` names; ConfigError (one line) saying what would be valid."""
    valid = "serial, udp:[HOST:]PORT, motioncapture:TYPE@HOST:OBJECT"
    kind, _, rest = text.strip().partition(":")
    if kind == "serial" and not rest:
        return PoseSpec("serial")
    if kind == "udp":
        host, _, port_text = rest.rpartition(":")
        return PoseSpec("udp", host or "0.0.0.0", _port(port_text, text, where))
    if kind == "motioncapture":
        head, _, query = rest.partition("?")
        mtype, at, target = head.partition("@")
        host, _, body = target.rpartition(":")
        if not at or not mtype or not body:
            raise ConfigError(f"{where} {text!r}: write motioncapture:TYPE@HOST:OBJECT")
        if mtype not in MOCAP_TYPES:
            raise ConfigError(
                f"{where} {text!r}: unknown motion-capture type {mtype!r}; "
                f"valid: {', '.join(MOCAP_TYPES)}"
            )
        options = tuple(parse_qsl(query, keep_blank_values=True, strict_parsing=False))
        return PoseSpec("motioncapture", host, mocap_type=mtype, body=body, options=options)
    raise ConfigError(f"{where} {text!r}: unknown pose source; valid: {valid}")


def _port(text: str, spec: str, where: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise ConfigError(f"{where} {spec!r}: port {text!r}; valid: udp:[HOST:]PORT, 1..65535")
    return port


def _rng(lo: float, hi: float, doc: str) -> dict[str, Any]:
    return {"range": (lo, hi), "doc": doc}


@dataclass(frozen=True)
class PoseConfig:
    """Where the pose comes from and how its frame is aligned (the ``[pose]`` table)."""

    source: str = field(default="serial", metadata={"doc": "serial, udp:..., motioncapture:..."})
    """The pose source (``--pose``), see the module docstring and docs/pose.md."""
    align: str = field(default="auto", metadata={"choices": ALIGNS, "doc": "frame alignment"})
    """start: the first pose becomes the origin, heading 0 (the frame the simulator and the
    path use); none: the tracker's frame as it is; auto: none for serial, else start."""
    up_axis: str = field(default="z", metadata={"choices": UP_AXES, "doc": "tracker's up axis"})
    """z (Vicon, Qualisys, the fake) or y (OptiTrack's default): y-up poses are turned z-up."""
    yaw_offset_rad: float = field(default=0.0, metadata=_rng(-math.pi, math.pi, "rad"))
    """The tracker's heading of the body minus the robot's direction of travel (``roach
    calibrate`` measures it): subtracted from every yaw."""
    z_offset_m: float = field(default=0.0, metadata=_rng(-10.0, 10.0, "m"))
    """Subtracted from every z (markers above the body's reference point)."""

    def __post_init__(self) -> None:
        try:
            parse_pose_spec(self.source, "source")
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    @property
    def spec(self) -> PoseSpec:
        return parse_pose_spec(self.source)

    @property
    def aligns_at_start(self) -> bool:
        return self.align == "start" or (self.align == "auto" and self.spec.kind != "serial")


class PoseAlignment:
    """Turns tracker poses into the path's frame: up axis, yaw offset, z offset, and (if
    ``at_start``) the first pose as origin with heading 0. Thread-safe."""

    def __init__(self, cfg: PoseConfig) -> None:
        self.cfg = cfg
        self.at_start = cfg.aligns_at_start
        self.origin: tuple[float, float, float] | None = None
        """(x, y, yaw) of the first pose in the tracker's frame, once aligned at start."""
        self._lock = threading.Lock()

    @property
    def identity(self) -> bool:
        c = self.cfg
        return not self.at_start and c.up_axis == "z" and not c.yaw_offset_rad and not c.z_offset_m

    def reset(self) -> None:
        """Align again at the next pose (a new episode)."""
        with self._lock:
            self.origin = None

    def apply(self, p: Pose) -> Pose:
        x, y, z, roll, pitch, yaw = p.x, p.y, p.z, p.roll, p.pitch, p.yaw
        if self.cfg.up_axis == "y":
            x, y, z, roll, pitch, yaw = _y_up_to_z_up(x, y, z, roll, pitch, yaw)
        yaw = yaw - self.cfg.yaw_offset_rad
        z -= self.cfg.z_offset_m
        if self.at_start:
            with self._lock:
                if self.origin is None:
                    self.origin = (x, y, yaw)
                x0, y0, yaw0 = self.origin
            c, s = math.cos(yaw0), math.sin(yaw0)
            x, y = c * (x - x0) + s * (y - y0), -s * (x - x0) + c * (y - y0)
            yaw -= yaw0
        yaw = math.atan2(math.sin(yaw), math.cos(yaw))
        return Pose(x, y, z, roll, pitch, yaw, p.timestamp_us)


def _y_up_to_z_up(
    x: float, y: float, z: float, roll: float, pitch: float, yaw: float
) -> tuple[float, float, float, float, float, float]:
    """A y-up right-handed frame (x, y up, z) -> z-up: (x, -z, y), the rotation likewise."""
    r = _rotation(roll, pitch, yaw)
    # C maps y-up coordinates to z-up ones; the body rotation becomes C R C^T.
    c = ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0), (0.0, 1.0, 0.0))
    cr = [[sum(c[i][k] * r[k][j] for k in range(3)) for j in range(3)] for i in range(3)]
    m = [[sum(cr[i][k] * c[j][k] for k in range(3)) for j in range(3)] for i in range(3)]
    pitch2 = math.asin(max(-1.0, min(1.0, -m[2][0])))
    return x, -z, y, math.atan2(m[2][1], m[2][2]), pitch2, math.atan2(m[1][0], m[0][0])


def _rotation(roll: float, pitch: float, yaw: float) -> list[list[float]]:
    """R = Rz(yaw) Ry(pitch) Rx(roll), rows."""
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    return [
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ]


class PoseSource(abc.ABC):
    """A stream of poses received by a thread of its own (not the serial link's).

    ``start`` opens it (ConfigError, one line, if it cannot be: a port in use, a package
    missing); ``latest`` is the newest aligned pose or None; ``close`` never raises.
    """

    name = "?"

    def __init__(self, alignment: PoseAlignment) -> None:
        self.alignment = alignment
        self._latest: Stamped[Pose] | None = None
        self._last_tracker_us: int | None = None
        self.received = 0
        self.rejected: dict[str, int] = {}
        self.last_reject: str | None = None
        self._cond = threading.Condition()

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def latest(self) -> Stamped[Pose] | None:
        return self._latest

    def wait_for_pose(self, after_monotonic_s: float, timeout_s: float) -> bool:
        """Blocks until a pose that arrived after ``after_monotonic_s`` is in (True)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._latest is None or self._latest.received_monotonic_s <= after_monotonic_s:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def status(self) -> str:
        """One line for error messages: what arrived and why datagrams were refused."""
        parts = [f"{self.received} poses received"]
        if self.rejected:
            n = sum(self.rejected.values())
            parts.append(f"{n} refused (last: {self.last_reject})")
        return f"{self.describe()}: " + ", ".join(parts)

    def describe(self) -> str:
        return self.name

    def counters(self) -> dict[str, Any]:
        return {"received": self.received, "rejected": dict(self.rejected)}

    def _reject(self, kind: str, detail: str) -> None:
        self.rejected[kind] = self.rejected.get(kind, 0) + 1
        self.last_reject = detail

    def _publish(self, raw: Pose, received_s: float, latency_s: float | None) -> None:
        """A new pose from the tracker: aligned and stamped, unless its timestamp repeats
        or goes back (then it is not newer than the one held, which keeps ageing)."""
        t = raw.timestamp_us
        if self._last_tracker_us is not None and t <= self._last_tracker_us:
            self._reject("not_newer", f"tracker timestamp {t} us not after {self._last_tracker_us}")
            return
        self._last_tracker_us = t
        pose = self.alignment.apply(Pose(raw.x, raw.y, raw.z, raw.roll, raw.pitch, raw.yaw,
                                         t & 0xFFFFFFFF))  # fmt: skip
        with self._cond:
            self._latest = Stamped(pose, received_s, latency_s=latency_s)
            self.received += 1
            self._cond.notify_all()


def open_pose_source(cfg: PoseConfig) -> PoseSource | None:
    """The started source ``cfg`` names; None for ``serial`` (the link's own POSE frames).
    ConfigError (one line) if it cannot be opened."""
    spec = cfg.spec
    alignment = PoseAlignment(cfg)
    source: PoseSource
    if spec.kind == "serial":
        return None
    if spec.kind == "udp":
        from firmware_bridge.pose.udp import UdpPoseSource

        source = UdpPoseSource(spec.host, spec.port, alignment)
    else:
        from firmware_bridge.pose.mocap import MotionCaptureSource

        source = MotionCaptureSource(spec, alignment)
    source.start()
    return source
