"""The UDP pose datagram, version 1 (docs/pose.md names every byte).

One datagram carries one pose of one tracked body, little-endian, 76 bytes:

| offset | type | field |
|---|---|---|
| 0 | 4 bytes | magic ``RPOS`` |
| 4 | u8 | version, 1 |
| 5 | u8 | flags: bit 0 orientation is a quaternion (else roll, pitch, yaw), bit 1 the
  timestamp is UNIX time (the sender's clock is synchronised with the robot's) |
| 6 | u16 | reserved, 0 |
| 8 | u32 | sequence number, +1 per datagram (wraps) |
| 12 | u64 | tracker timestamp, microseconds of the tracker's clock |
| 20 | 3 x f64 | x, y, z, metres |
| 44 | 4 x f64 | quaternion qx, qy, qz, qw; or roll, pitch, yaw (rad, z-y-x) and 0 |

``decode`` refuses anything else with a ``PoseDatagramError`` whose message is one line;
the receiver counts it and goes on. Pure functions: no sockets, no clock.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from robot_contract.errors import ProtocolError

MAGIC = b"RPOS"
VERSION = 1
FLAG_QUATERNION = 0x01
FLAG_UNIX_TIME = 0x02
KNOWN_FLAGS = FLAG_QUATERNION | FLAG_UNIX_TIME
DATAGRAM = struct.Struct("<4sBBHIQ7d")
assert DATAGRAM.size == 76
QUATERNION_NORM_TOLERANCE = 0.01
"""A quaternion whose norm is further than this from 1 is refused (not normalised)."""


class PoseDatagramError(ProtocolError):
    """A datagram that is not a valid version-1 pose."""


@dataclass(frozen=True, slots=True)
class PoseDatagram:
    """One decoded datagram: the body pose in the tracker's frame."""

    seq: int
    timestamp_us: int
    """The tracker's clock, microseconds (UNIX time iff ``unix_time``)."""
    x: float
    y: float
    z: float
    roll: float
    pitch: float
    yaw: float
    unix_time: bool = False


def encode(
    seq: int,
    timestamp_us: int,
    position: tuple[float, float, float],
    *,
    quaternion: tuple[float, float, float, float] | None = None,
    rpy: tuple[float, float, float] | None = None,
    unix_time: bool = False,
) -> bytes:
    """The datagram of one pose; give ``quaternion`` (x, y, z, w) or ``rpy`` (rad)."""
    if (quaternion is None) == (rpy is None):
        raise ValueError("give exactly one of quaternion= or rpy=")
    flags = FLAG_UNIX_TIME * unix_time
    if quaternion is not None:
        flags |= FLAG_QUATERNION
        rot = tuple(quaternion)
    else:
        assert rpy is not None
        rot = (*rpy, 0.0)
    return DATAGRAM.pack(
        MAGIC, VERSION, flags, 0, seq & 0xFFFFFFFF, timestamp_us & (2**64 - 1), *position, *rot
    )


def decode(data: bytes) -> PoseDatagram:
    """The pose in ``data``; PoseDatagramError (one line) if it is not a valid datagram."""
    if len(data) < 5 or data[:4] != MAGIC:
        raise PoseDatagramError(f"not a pose datagram ({len(data)} bytes, no 'RPOS' magic)")
    if data[4] != VERSION:
        raise PoseDatagramError(f"pose datagram version {data[4]}; this receiver reads {VERSION}")
    if len(data) != DATAGRAM.size:
        raise PoseDatagramError(
            f"pose datagram of {len(data)} bytes; version {VERSION} has {DATAGRAM.size}"
        )
    _magic, _v, flags, reserved, seq, t_us, x, y, z, a, b, c, d = DATAGRAM.unpack(data)
    if flags & ~KNOWN_FLAGS or reserved:
        raise PoseDatagramError(
            f"pose datagram flags 0x{flags:02x}, reserved {reserved}: "
            f"valid flags 0x01 (quaternion) and 0x02 (UNIX time), reserved 0"
        )
    if not all(math.isfinite(v) for v in (x, y, z, a, b, c, d)):
        raise PoseDatagramError(f"pose datagram {seq}: a position or orientation is not finite")
    if flags & FLAG_QUATERNION:
        norm = math.sqrt(a * a + b * b + c * c + d * d)
        if abs(norm - 1.0) > QUATERNION_NORM_TOLERANCE:
            raise PoseDatagramError(
                f"pose datagram {seq}: quaternion norm {norm:.4g}; valid within "
                f"{QUATERNION_NORM_TOLERANCE} of 1"
            )
        roll, pitch, yaw = quaternion_to_rpy(a / norm, b / norm, c / norm, d / norm)
    else:
        if d != 0.0:
            raise PoseDatagramError(
                f"pose datagram {seq}: roll/pitch/yaw form needs the 4th value 0, got {d:g}"
            )
        roll, pitch, yaw = a, b, c
    return PoseDatagram(seq, t_us, x, y, z, roll, pitch, yaw, bool(flags & FLAG_UNIX_TIME))


def rpy_to_quaternion(roll: float, pitch: float, yaw: float) -> tuple[float, float, float, float]:
    """(x, y, z, w) of the rotation yaw about z, then pitch about y, then roll about x."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return (
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
        cr * cp * cy + sr * sp * sy,
    )


def quaternion_to_rpy(qx: float, qy: float, qz: float, qw: float) -> tuple[float, float, float]:
    """Roll, pitch, yaw (rad, z-y-x) of a unit quaternion (x, y, z, w)."""
    roll = math.atan2(2 * (qw * qx + qy * qz), 1 - 2 * (qx * qx + qy * qy))
    pitch = math.asin(max(-1.0, min(1.0, 2 * (qw * qy - qz * qx))))
    yaw = math.atan2(2 * (qw * qz + qx * qy), 1 - 2 * (qy * qy + qz * qz))
    return roll, pitch, yaw
