"""Fault specification parsing and the per-direction fault channel."""

from __future__ import annotations

import random

import pytest

from firmware_bridge.fake.faults import FaultSpec, FaultyChannel, parse_faults
from firmware_bridge.frame import FrameDecoder
from firmware_bridge.messages import Hello, StartTelemetry, encode_message
from robot_contract.errors import ConfigError
from tools.cli import main


def test_parse_faults_full_string():
    """The README's fault example string parses to the documented fields."""
    spec = parse_faults("corrupt=0.01,drop=0.05,delay_ms=30,jitter_ms=20,disconnect_at=5:1")
    assert spec == FaultSpec(0.01, 0.05, 30.0, 20.0, ((5.0, 1.0),))
    assert parse_faults("") == FaultSpec()
    assert parse_faults("disconnect_at=9:2, disconnect_at=3:1").disconnects == ((3, 1), (9, 2))


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("corupt=0.01", "corupt"),
        ("drop=1.5", "drop"),
        ("delay_ms=abc", "delay_ms"),
        ("disconnect_at=5", "disconnect_at"),
        ("disconnect_at=x:1", "disconnect_at"),
        ("jitter_ms", "jitter_ms"),
        ("after_frames=2.5", "after_frames"),
        ("after_frames=-1", "after_frames"),
    ],
)
def test_bad_fault_strings_name_the_key(text, key):
    """A bad --faults item raises a one-line ConfigError naming the key."""
    with pytest.raises(ConfigError, match=key) as info:
        parse_faults(text)
    assert "\n" not in str(info.value)


def test_cli_rejects_bad_faults_with_exit_2(capsys):
    """`roach sim --faults bogus=1` exits 2 with one error line naming the key."""
    assert main(["sim", "--faults", "bogus=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bogus" in err[0] and "drop=" in err[0]


@pytest.mark.parametrize(
    ("link", "says"),
    [("/nonexistent/dir/x", "does not exist"), ("/proc/x", "/proc/x")],
)
def test_cli_rejects_unusable_link_with_exit_2(capsys, link, says):
    """`roach sim --link` where no symlink can be made exits 2 with one line naming --link."""
    assert main(["sim", "--link", link]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "--link" in err[0] and says in err[0]
    assert captured.out == ""  # no pty path and no stats line


def _frames(n: int) -> bytes:
    return b"".join(encode_message(StartTelemetry(i % 1000 + 1), i) for i in range(n))


def test_after_frames_spares_the_first_frames():
    """`after_frames=N`: the first N frames pass untouched even at drop=1, then every
    frame is dropped; the count covers all frames."""
    assert parse_faults("drop=1,after_frames=5").after_frames == 5
    ch = FaultyChannel(parse_faults("drop=1,after_frames=5"), random.Random(0))
    ch.push(_frames(12), 0.0)
    out = ch.pop_due(0.0)
    assert (ch.frames, ch.dropped, out.count(b"\x00")) == (12, 7, 5)
    assert [f.seq for f in FrameDecoder().feed(out)] == [0, 1, 2, 3, 4]


def test_channel_rates_and_detection():
    """Drops and corruptions occur at their rates, and a decoder sees each corruption
    as exactly one bad frame and each lost frame in its sequence gaps."""
    ch = FaultyChannel(FaultSpec(corrupt=0.02, drop=0.05), random.Random(1))
    n = 20_000
    data = _frames(n)
    for i in range(0, len(data), 333):
        ch.push(data[i : i + 333], 0.0)
    out = ch.pop_due(0.0)
    assert ch.frames == n
    assert abs(ch.dropped - 0.05 * n) < 5 * (n * 0.05 * 0.95) ** 0.5
    assert abs(ch.corrupted - 0.02 * n) < 5 * (n * 0.02 * 0.98) ** 0.5
    assert out.count(b"\x00") == n - ch.dropped  # corruption never makes a delimiter
    dec = FrameDecoder()
    frames = dec.feed(out)
    assert dec.errors == ch.corrupted
    assert len(frames) == n - ch.dropped - ch.corrupted
    assert dec.frames_missed <= ch.dropped + ch.corrupted <= dec.frames_missed + 2


def test_channel_delay_jitter_keeps_order():
    """Frames are held for delay..delay+jitter and leave in the order they came."""
    ch = FaultyChannel(FaultSpec(delay_ms=30, jitter_ms=20), random.Random(2))
    wire = [encode_message(Hello(), i) for i in range(200)]
    for i, w in enumerate(wire):
        ch.push(w, i * 0.001)
    assert ch.pop_due(0.0299) == b""
    got = ch.pop_due(0.2 + 0.05)
    assert got == b"".join(wire)


def test_channel_passthrough_without_faults():
    """With no frame faults, bytes pass through unchanged, partial frames included."""
    ch = FaultyChannel(FaultSpec(), random.Random(0))
    ch.push(b"\x01\x02", 1.0)
    ch.push(b"\x00\x05", 1.0)
    assert ch.pop_due(1.0) == b"\x01\x02\x00\x05"
