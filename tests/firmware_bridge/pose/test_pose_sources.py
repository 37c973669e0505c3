"""The network pose sources on real sockets, and the motion-capture source on the
``motioncapture`` package's mock backend."""

from __future__ import annotations

import importlib.util
import socket
import time

import pytest

from firmware_bridge.pose import datagram
from firmware_bridge.pose.source import PoseAlignment, PoseConfig, open_pose_source
from firmware_bridge.pose.udp import UdpPosePublisher, UdpPoseSource
from firmware_bridge.records import Pose
from robot_contract.errors import ConfigError


def _source() -> UdpPoseSource:
    """A started UDP source on a free port the system picks."""
    src = UdpPoseSource("127.0.0.1", 0, PoseAlignment(PoseConfig(source="udp:9")))
    src.start()
    return src


def _send(sock: socket.socket, port: int, data: bytes) -> None:
    sock.sendto(data, ("127.0.0.1", port))


def _wait(cond: object, timeout_s: float = 2.0) -> None:
    end = time.monotonic() + timeout_s
    while not cond() and time.monotonic() < end:  # type: ignore[operator]
        time.sleep(0.002)


def test_udp_source_receives_aligns_and_stamps() -> None:
    """Datagrams sent to the source's socket become aligned, stamped poses; the tracker
    timestamp is kept; the UNIX-time flag gives a latency from the sender's clock."""
    src = _source()
    pub = UdpPosePublisher("127.0.0.1", src.port)
    try:
        before = time.monotonic()
        pub.publish(Pose(1.0, 2.0, 0.02, 0.0, 0.0, 0.5, 0), timestamp_us=1_000)
        _wait(lambda: src.latest() is not None)
        first = src.latest()
        assert first is not None and first.received_monotonic_s >= before
        assert (first.value.x, first.value.y, first.value.yaw) == pytest.approx((0, 0, 0))
        assert first.value.timestamp_us == 1_000 and first.latency_s == 0.0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            stamp = int((time.time() - 0.05) * 1e6)  # captured 50 ms ago
            _send(s, src.port, datagram.encode(5, stamp, (1.0, 2.0, 0.02), rpy=(0, 0, 0.5),
                                               unix_time=True))  # fmt: skip
            _wait(lambda: src.received == 2)
        p = src.latest()
        assert p is not None and p.latency_s is not None and 0.05 <= p.latency_s < 1.0
    finally:
        pub.close()
        src.close()


def test_udp_source_counts_and_drops_bad_duplicate_and_old_datagrams() -> None:
    """Malformed, repeated-sequence and repeated-timestamp datagrams never replace the
    pose held (which keeps its arrival time, so it ages into the stale-pose rule); the
    counts and the last reason are in ``status()``."""
    src = _source()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            _send(s, src.port, datagram.encode(10, 100, (0, 0, 0), rpy=(0, 0, 0)))
            _wait(lambda: src.received == 1)
            held = src.latest()
            _send(s, src.port, b"RPOS\x01 short")
            _send(s, src.port, datagram.encode(10, 200, (1, 0, 0), rpy=(0, 0, 0)))  # same seq
            _send(s, src.port, datagram.encode(9, 300, (1, 0, 0), rpy=(0, 0, 0)))  # older seq
            _send(s, src.port, datagram.encode(11, 100, (1, 0, 0), rpy=(0, 0, 0)))  # same time
            _wait(lambda: sum(src.rejected.values()) == 4)
        assert src.rejected == {"malformed": 1, "out_of_order": 2, "not_newer": 1}
        assert src.latest() is held
        assert "1 poses received, 4 refused (last: tracker timestamp 100 us" in src.status()
    finally:
        src.close()


def test_udp_port_in_use_is_a_one_line_error() -> None:
    """A port another program holds: ConfigError naming the source and the reason."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"udp:127.0.0.1:{port}: cannot listen"):
            open_pose_source(PoseConfig(source=f"udp:127.0.0.1:{port}"))


HAVE_MOCAP = importlib.util.find_spec("motioncapture") is not None


@pytest.mark.skipif(
    not HAVE_MOCAP,
    reason="the motioncapture package is not installed (the `mocap` extra; it has no wheel "
    "for this platform: docs/pose.md)",
)
def test_motioncapture_mock_backend_gives_the_body_pose() -> None:
    """The library's mock system streams the planted body: its position and its yaw
    (quaternion w, x, y, z = cos 0.3, 0, 0, sin 0.3 is a yaw of 0.6 rad) arrive as poses."""
    import math

    q = f"{math.cos(0.3)},0,0,{math.sin(0.3)}"
    cfg = PoseConfig(
        source=f"motioncapture:mock@localhost:rb1?rigid_bodies=rb1(0.5,-0.25,0.03,{q})",
        align="none",
    )
    src = open_pose_source(cfg)
    assert src is not None
    try:
        assert src.wait_for_pose(0.0, 3.0)
        _wait(lambda: src.received >= 3)
        p = src.latest()
        assert p is not None and src.received >= 3
        assert (p.value.x, p.value.y, p.value.z) == pytest.approx((0.5, -0.25, 0.03), abs=1e-6)
        assert p.value.yaw == pytest.approx(0.6, abs=1e-6) and p.latency_s is None
    finally:
        src.close()


@pytest.mark.skipif(not HAVE_MOCAP, reason="the motioncapture package is not installed")
def test_motioncapture_missing_body_is_counted_not_posed() -> None:
    """A body name the system does not track gives no pose, and the status says which
    bodies it does see."""
    cfg = PoseConfig(source="motioncapture:mock@localhost:roach9?rigid_bodies=rb1(0,0,0,1,0,0,0)")
    src = open_pose_source(cfg)
    assert src is not None
    try:
        _wait(lambda: src.rejected.get("body_missing", 0) >= 2)
        assert src.latest() is None and "no body 'roach9' (seen: rb1)" in src.status()
    finally:
        src.close()
