"""The UDP pose datagram (firmware_bridge/pose/datagram.py): round trips and refusals."""

from __future__ import annotations

import math
import struct

import pytest

from firmware_bridge.pose import datagram
from firmware_bridge.pose.datagram import rpy_to_quaternion


def test_quaternion_round_trip_gives_back_the_angles() -> None:
    """A pose sent as a quaternion decodes to the same position, roll, pitch and yaw."""
    rpy = (0.1, -0.2, 2.5)
    data = datagram.encode(7, 123_456, (1.0, -2.0, 0.03), quaternion=rpy_to_quaternion(*rpy))
    assert len(data) == 76
    d = datagram.decode(data)
    assert (d.seq, d.timestamp_us, d.x, d.y, d.z) == (7, 123_456, 1.0, -2.0, 0.03)
    assert (d.roll, d.pitch, d.yaw) == pytest.approx(rpy, abs=1e-12)
    assert not d.unix_time


def test_rpy_form_and_unix_flag() -> None:
    """The roll/pitch/yaw form is taken as it is; the UNIX-time flag survives."""
    d = datagram.decode(datagram.encode(1, 5, (0, 0, 0), rpy=(0.3, 0.2, -1.0), unix_time=True))
    assert (d.roll, d.pitch, d.yaw, d.unix_time) == (0.3, 0.2, -1.0, True)


def test_byte_layout_matches_the_documented_offsets() -> None:
    """Offsets of docs/pose.md: seq at 8, timestamp at 12, x at 20, qw at 68."""
    data = datagram.encode(0x01020304, 99, (1.5, 0, 0), quaternion=(0, 0, 0, 1))
    assert data[:4] == b"RPOS" and data[4] == 1 and data[5] == datagram.FLAG_QUATERNION
    assert struct.unpack_from("<I", data, 8)[0] == 0x01020304
    assert struct.unpack_from("<Q", data, 12)[0] == 99
    assert struct.unpack_from("<d", data, 20)[0] == 1.5
    assert struct.unpack_from("<d", data, 68)[0] == 1.0


def _with(data: bytes, offset: int, fmt: str, value: object) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, offset, value)
    return bytes(b)


GOOD = datagram.encode(3, 10, (0, 0, 0), quaternion=(0, 0, 0, 1))


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"hello", "no 'RPOS' magic"),
        (_with(GOOD, 4, "<B", 2), "version 2"),
        (GOOD[:-1], "75 bytes"),
        (_with(GOOD, 5, "<B", 0x81), "flags 0x81"),
        (_with(GOOD, 20, "<d", math.nan), "not finite"),
        (_with(GOOD, 68, "<d", 0.5), "quaternion norm 0.5"),
        (datagram.DATAGRAM.pack(b"RPOS", 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1.0), "4th value"),
    ],
)
def test_bad_datagrams_are_refused_in_one_line(data: bytes, words: str) -> None:
    """Each malformed datagram raises PoseDatagramError with one line naming what is wrong."""
    with pytest.raises(datagram.PoseDatagramError) as info:
        datagram.decode(data)
    assert words in str(info.value) and "\n" not in str(info.value)
