"""Frame alignment of tracker poses (firmware_bridge/pose/source.py) and ``--pose`` parsing."""

from __future__ import annotations

import math

import pytest

from firmware_bridge.pose.source import PoseAlignment, PoseConfig, parse_pose_spec
from firmware_bridge.records import Pose
from robot_contract.errors import ConfigError


def test_start_alignment_puts_the_first_pose_at_the_origin_heading_zero() -> None:
    """After alignment at start the first pose is (0, 0, yaw 0) and a step along the
    tracker's start heading is a step along +x."""
    al = PoseAlignment(PoseConfig(source="udp:9000"))
    assert al.at_start
    first = al.apply(Pose(2.0, 1.0, 0.02, 0.0, 0.0, math.pi / 2, 0))
    assert (first.x, first.y, first.yaw) == pytest.approx((0.0, 0.0, 0.0), abs=1e-12)
    ahead = al.apply(Pose(2.0, 1.5, 0.02, 0.0, 0.0, math.pi / 2 + 0.1, 1))
    assert (ahead.x, ahead.y, ahead.yaw) == pytest.approx((0.5, 0.0, 0.1), abs=1e-12)
    assert ahead.z == 0.02


def test_yaw_and_z_offsets_are_subtracted_and_yaw_wraps() -> None:
    """yaw_offset_rad and z_offset_m are taken off; yaw stays in (-pi, pi]."""
    cfg = PoseConfig(align="none", yaw_offset_rad=-0.5, z_offset_m=0.1)
    p = PoseAlignment(cfg).apply(Pose(1.0, 2.0, 0.12, 0.0, 0.0, 3.0, 0))
    assert p.yaw == pytest.approx(3.5 - 2 * math.pi) and p.z == pytest.approx(0.02)
    assert (p.x, p.y) == (1.0, 2.0)


def test_y_up_tracker_poses_become_z_up() -> None:
    """OptiTrack's y-up frame: height is y, the ground is x and -z; a body turned about
    the vertical axis keeps that turn as its yaw."""
    cfg = PoseConfig(align="none", up_axis="y")
    # Body turned 0.4 rad about the vertical (y) axis of a y-up frame: Ry(0.4) there is the
    # z-y-x rotation roll 0, pitch 0.4, yaw 0 of the y-up frame's own axes.
    p = PoseAlignment(cfg).apply(Pose(1.0, 0.05, -2.0, 0.0, 0.4, 0.0, 0))
    assert (p.x, p.y, p.z) == pytest.approx((1.0, 2.0, 0.05))
    assert (p.roll, p.pitch, p.yaw) == pytest.approx((0.0, 0.0, 0.4), abs=1e-12)


def test_serial_source_is_not_aligned_by_default() -> None:
    """auto: the board's own poses stay as they are (identity), network ones align."""
    assert PoseAlignment(PoseConfig()).identity
    assert PoseConfig(source="motioncapture:vicon@h:roach1").aligns_at_start


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("udp", "port ''"),
        ("udp:host:70000", "1..65535"),
        ("motioncapture:vicon", "motioncapture:TYPE@HOST:OBJECT"),
        ("motioncapture:kinect@host:roach1", "unknown motion-capture type 'kinect'"),
        ("gps", "unknown pose source"),
    ],
)
def test_bad_pose_specs_are_one_line_errors(text: str, words: str) -> None:
    """Each bad --pose string names what is wrong and what is valid."""
    with pytest.raises(ConfigError) as info:
        parse_pose_spec(text)
    assert words in str(info.value)


def test_pose_specs_parse() -> None:
    """udp with and without host; motioncapture with extra connection options."""
    assert parse_pose_spec("udp:9000").host == "0.0.0.0"
    s = parse_pose_spec("udp:127.0.0.1:9000")
    assert (s.kind, s.host, s.port) == ("udp", "127.0.0.1", 9000)
    m = parse_pose_spec("motioncapture:mock@localhost:rb1?rigid_bodies=rb1(0,0,0,1,0,0,0)")
    assert (m.mocap_type, m.host, m.body) == ("mock", "localhost", "rb1")
    assert dict(m.options) == {"rigid_bodies": "rb1(0,0,0,1,0,0,0)"}
