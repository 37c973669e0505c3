"""The ``motioncapture:`` pose source: Vicon, OptiTrack, Qualisys, VRPN and others through
the ``motioncapture`` package (the ``mocap`` extra), imported only here and only when
this source is chosen. docs/pose.md says how to build it where no wheel exists (a Pi).

The package gives each frame's rigid bodies but no capture timestamp, so the tracker
timestamp is this computer's monotonic arrival time and ``latency_s`` is unknown (None).
A body the system lost (occluded, out of the volume) is absent from the frame: the pose
held then ages until the stale-pose rule stops the robot.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from firmware_bridge.pose.datagram import quaternion_to_rpy
from firmware_bridge.pose.source import PoseAlignment, PoseSource, PoseSpec
from firmware_bridge.records import Pose
from robot_contract.errors import ConfigError

EXTRA_HINT = "pip install -e '.[mocap]' (no aarch64 wheel: docs/pose.md, build from source)"


class MotionCaptureSource(PoseSource):
    """One rigid body of a motion-capture system."""

    name = "motioncapture"

    def __init__(self, spec: PoseSpec, alignment: PoseAlignment) -> None:
        super().__init__(alignment)
        self.spec = spec
        self._mc: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.frames = 0
        self.last_error: str | None = None

    def describe(self) -> str:
        return str(self.spec)

    def start(self) -> None:
        try:
            import motioncapture
        except ImportError:
            raise ConfigError(
                f"--pose {self.describe()} needs the 'motioncapture' package: {EXTRA_HINT}"
            ) from None
        params = {"hostname": self.spec.host, **dict(self.spec.options)}
        try:
            self._mc = motioncapture.connect(self.spec.mocap_type, params)
        except Exception as exc:  # the C++ library raises RuntimeError and others
            msg = " ".join(str(exc).split()) or type(exc).__name__
            raise ConfigError(f"--pose {self.describe()}: cannot connect: {msg}") from None
        self._thread = threading.Thread(target=self._run, name="pose-mocap", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._mc.waitForNextFrame()
                bodies = self._mc.rigidBodies
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._reject("error", self.last_error)
                time.sleep(0.05)
                continue
            now = time.monotonic()
            self.frames += 1
            body = bodies.get(self.spec.body)
            if body is None:
                names = ", ".join(sorted(bodies)) or "none"
                self._reject("body_missing", f"no body {self.spec.body!r} (seen: {names})")
                continue
            q = body.rotation
            roll, pitch, yaw = quaternion_to_rpy(q.x, q.y, q.z, q.w)
            x, y, z = (float(v) for v in body.position)
            self._publish(Pose(x, y, z, roll, pitch, yaw, int(now * 1e6)), now, None)
