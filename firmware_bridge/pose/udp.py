"""The UDP pose stream: a receiver (the ``udp:`` source) and a sender (``roach sim
--pose-out``, and what a tracker bridge does). Format: firmware_bridge/pose/datagram.py.

The receiver's thread owns the socket. A datagram that does not decode, or whose
sequence number is not after the last one (a duplicate, or one overtaken on the
network), is counted by kind and dropped, never raised: the loop sees only good poses,
and a stream of bad ones shows as a stale pose plus the counts in the log and in the
"no pose" error.

Latency: with the UNIX-time flag, arrival (``time.time()``) minus the tracker's
timestamp; otherwise the arrival-minus-timestamp offset above the smallest offset seen
so far (the tracker's clock is unknown, so the fastest datagram counts as 0 latency).
"""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time

from firmware_bridge.pose import datagram
from firmware_bridge.pose.source import PoseAlignment, PoseSource
from firmware_bridge.records import Pose
from robot_contract.errors import ConfigError

RECV_TIMEOUT_S = 0.1
"""The receiver thread's socket timeout: how quickly ``close`` ends it."""


class UdpPoseSource(PoseSource):
    """Receives pose datagrams on ``host:port``."""

    name = "udp"

    def __init__(self, host: str, port: int, alignment: PoseAlignment) -> None:
        super().__init__(alignment)
        self.host, self.port = host, port
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._last_seq: int | None = None
        self._min_offset_s = math.inf
        self.senders: set[str] = set()

    def describe(self) -> str:
        return f"udp:{self.host}:{self.port}"

    def start(self) -> None:
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((self.host, self.port))
        except OSError as exc:
            with contextlib.suppress(NameError):
                sock.close()
            raise ConfigError(
                f"--pose {self.describe()}: cannot listen: {exc.strerror or exc}"
            ) from None
        sock.settimeout(RECV_TIMEOUT_S)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name="pose-udp", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()

    def _run(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                data, addr = self._sock.recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            self.feed(data, time.monotonic(), time.time(), f"{addr[0]}:{addr[1]}")

    def feed(self, data: bytes, mono_s: float, wall_s: float, sender: str = "") -> None:
        """One datagram as it arrived (the receiver thread calls this; tests may too)."""
        try:
            d = datagram.decode(data)
        except datagram.PoseDatagramError as exc:
            self._reject("malformed", str(exc))
            return
        if self._last_seq is not None:
            ahead = (d.seq - self._last_seq) & 0xFFFFFFFF
            if ahead == 0 or ahead >= 1 << 31:
                self._reject("out_of_order", f"sequence {d.seq} not after {self._last_seq}")
                return
        self._last_seq = d.seq
        self.senders.add(sender)
        if d.unix_time:
            latency: float | None = wall_s - d.timestamp_us * 1e-6
        else:
            offset = mono_s - d.timestamp_us * 1e-6
            self._min_offset_s = min(self._min_offset_s, offset)
            latency = offset - self._min_offset_s
        self._publish(Pose(d.x, d.y, d.z, d.roll, d.pitch, d.yaw, d.timestamp_us), mono_s, latency)


class UdpPosePublisher:
    """Sends poses as datagrams to ``host:port`` (roach sim --pose-out). Never raises on
    send: a tracker does not stop because nobody listens."""

    def __init__(self, host: str, port: int, yaw_offset_rad: float = 0.0) -> None:
        self.addr = (host, port)
        self.yaw_offset_rad = yaw_offset_rad
        """Added to every yaw: a tracker whose body frame is turned against the robot's."""
        self.seq = 0
        self.sent = 0
        self.send_errors = 0
        try:
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        except OSError as exc:
            raise ConfigError(f"--pose-out: cannot open a UDP socket: {exc}") from None

    def publish(self, pose: Pose, timestamp_us: int | None = None) -> None:
        """Sends ``pose``, stamped ``timestamp_us`` (default its own u32 stamp)."""
        yaw = pose.yaw + self.yaw_offset_rad
        data = datagram.encode(
            self.seq,
            pose.timestamp_us if timestamp_us is None else timestamp_us,
            (pose.x, pose.y, pose.z),
            quaternion=datagram.rpy_to_quaternion(pose.roll, pose.pitch, yaw),
        )
        self.seq = (self.seq + 1) & 0xFFFFFFFF
        try:
            self._sock.sendto(data, self.addr)
            self.sent += 1
        except OSError:
            self.send_errors += 1

    def close(self) -> None:
        self._sock.close()
