"""Property tests of the COBS/CRC frame codec and the message codecs."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_bridge.cobs import cobs_decode, cobs_encode
from firmware_bridge.crc import crc16, crc16_reference
from firmware_bridge.frame import (
    CRC_LEN,
    HEADER_LEN,
    MAX_ENCODED_LEN,
    MAX_PAYLOAD,
    Frame,
    FrameDecoder,
    encode_frame,
)
from firmware_bridge.messages import (
    MESSAGE_TYPES,
    Ack,
    ClearEmergencyStop,
    EmergencyStop,
    GetStatus,
    Hello,
    HelloReply,
    Message,
    Nack,
    PoseMsg,
    SetCommandTimeout,
    SetDuty,
    SetLegVelocity,
    SetPidGains,
    StartMotors,
    StartTelemetry,
    Status,
    StopMotors,
    StopTelemetry,
    TelemetryMsg,
    ZeroEncoders,
    decode_message,
    encode_message,
)
from firmware_bridge.records import Pose, Telemetry
from robot_contract.errors import ProtocolError

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
i16 = st.integers(-(1 << 15), (1 << 15) - 1)
i32 = st.integers(-(1 << 31), (1 << 31) - 1)
f32 = st.floats(width=32, allow_nan=False)

telemetry = st.builds(Telemetry, u32, u32, i32, i32, i32, i32, *([i16] * 11))
pose = st.builds(Pose, f32, f32, f32, f32, f32, f32, u32)
name16 = st.binary(max_size=16).map(lambda b: b.rstrip(b"\x00"))

messages: st.SearchStrategy[Message] = st.one_of(
    st.sampled_from(
        [
            Hello(),
            GetStatus(),
            StartMotors(),
            StopMotors(),
            ZeroEncoders(),
            StopTelemetry(),
            EmergencyStop(),
            ClearEmergencyStop(),
        ]
    ),
    st.builds(SetLegVelocity, i16, i16),
    st.builds(SetDuty, i16, i16),
    st.builds(SetPidGains, *([i16] * 10)),
    st.builds(SetCommandTimeout, u16),
    st.builds(StartTelemetry, u16),
    st.builds(Ack, u16, u8),
    st.builds(Nack, u16, u8, u8),
    st.builds(HelloReply, u16, u8, u8, u8, u8, u32, name16),
    st.builds(Status, u16, u8, u32, u32, u32, u16, u16, u32, u32, u32, u32, u16),
    st.builds(TelemetryMsg, u8, telemetry),
    st.builds(PoseMsg, pose),
)


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def _feed_all(dec: FrameDecoder, chunks: list[bytes]) -> list[Frame]:
    out: list[Frame] = []
    for c in chunks:
        out.extend(dec.feed(c))
    return out


def _crc_bitwise(data: bytes) -> int:
    """CRC-16/CCITT-FALSE bit by bit, independent of firmware_bridge.crc (test oracle)."""
    crc = 0xFFFF
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def _unstuff(block: bytes) -> bytes | None:
    """COBS-decodes one run between delimiters byte by byte; None if malformed (oracle)."""
    out = bytearray()
    i = 0
    while i < len(block):
        code = block[i]
        if code == 0 or i + code > len(block):
            return None
        out += block[i + 1 : i + code]
        i += code
        if code != 0xFF and i < len(block):
            out.append(0)
    return bytes(out) if block else None


def _reference_frames(stream: bytes) -> list[Frame]:
    """Frames a straightforward receiver accepts from ``stream``: the decoder's oracle.

    Split on 0x00 (the bytes after the last delimiter are no frame yet), drop runs longer
    than MAX_ENCODED_LEN, un-stuff, then keep a frame only if the last two raw bytes are
    the little-endian bitwise CRC of the rest and the version byte is 1.
    """
    frames = []
    for part in stream.split(b"\x00")[:-1]:
        if not part or len(part) > MAX_ENCODED_LEN:
            continue
        raw = _unstuff(part)
        if raw is None or len(raw) < HEADER_LEN + CRC_LEN:
            continue
        if _crc_bitwise(raw[:-CRC_LEN]) != int.from_bytes(raw[-CRC_LEN:], "little"):
            continue
        if raw[0] != 1:
            continue
        frames.append(Frame(raw[1], int.from_bytes(raw[2:4], "little"), raw[4:-CRC_LEN]))
    return frames


def _random_frames(bodies: list[bytes]) -> bytes:
    """Well-stuffed, delimited frames of version 1 whose last two bytes are random.

    Everything but the CRC is plausible, so only the CRC check can reject them.
    """
    return b"".join(cobs_encode(b"\x01" + body) + b"\x00" for body in bodies)


def test_crc_check_value_and_table():
    """The CRC is CRC-16/CCITT-FALSE (check 0x29B1) and the firmware table agrees."""
    assert crc16(b"123456789") == 0x29B1
    assert crc16_reference(b"123456789") == 0x29B1
    assert crc16_reference(bytes(range(256))) == crc16(bytes(range(256)))


@given(
    st.one_of(
        st.binary(max_size=1000),
        st.lists(
            st.binary(min_size=250, max_size=600).map(lambda b: b.replace(b"\x00", b"\x07"))
        ).map(b"\x00".join),
    )
)
def test_cobs_roundtrip(data):
    """COBS output has no zero byte and decodes back to the input."""
    enc = cobs_encode(data)
    assert b"\x00" not in enc
    assert cobs_decode(enc) == data
    assert len(enc) <= len(data) + 1 + len(data) // 254


@given(st.lists(messages, max_size=30), st.lists(st.integers(0, 10_000), max_size=40), u16)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_messages_survive_encode_chunk_decode(msgs, cuts, seq0):
    """Any message sequence survives encode -> arbitrary chunking -> decode unchanged."""
    wire = b"".join(encode_message(m, (seq0 + i) & 0xFFFF) for i, m in enumerate(msgs))
    dec = FrameDecoder(frozenset(MESSAGE_TYPES))
    frames = _feed_all(dec, _chunks(wire, cuts))
    assert [decode_message(f) for f in frames] == msgs
    assert [f.seq for f in frames] == [(seq0 + i) & 0xFFFF for i in range(len(msgs))]
    assert dec.errors == 0 and dec.seq_gaps == 0 and dec.unknown_type == 0


# Garbage of three kinds: random bytes; delimited, well-stuffed version-1 frames with a
# random CRC (only the CRC check can refuse them); and both interleaved.
random_frames = st.lists(st.binary(min_size=5, max_size=60), max_size=20).map(_random_frames)
garbage_bytes = st.one_of(
    st.binary(max_size=3000),
    random_frames,
    st.lists(st.one_of(st.binary(max_size=100), random_frames), max_size=8).map(b"".join),
)


@given(garbage_bytes, st.lists(st.integers(0, 10_000), max_size=20))
def test_random_bytes_never_raise(garbage, cuts):
    """Garbage never raises and yields exactly the frames the bitwise-CRC oracle accepts."""
    dec = FrameDecoder()
    assert _feed_all(dec, _chunks(garbage, cuts)) == _reference_frames(garbage)


@given(
    st.lists(messages, min_size=1, max_size=6),
    st.integers(0, 10_000),
    st.integers(1, 0xFFFF),
)
def test_burst_errors_never_pass(msgs, pos, pattern):
    """Any error burst of up to 16 bits inside one frame is refused, never yielded."""
    k = pos % len(msgs)
    clean = _unstuff(encode_message(msgs[k], k)[:-1])
    assert clean is not None
    raw = bytearray(clean)
    at = pos % (len(raw) - 1)
    raw[at] ^= pattern >> 8
    raw[at + 1] ^= pattern & 0xFF
    wire = [encode_message(m, i) for i, m in enumerate(msgs)]
    wire[k] = cobs_encode(bytes(raw)) + b"\x00"
    dec = FrameDecoder()
    frames = dec.feed(b"".join(wire))
    assert [f.seq for f in frames] == [i for i in range(len(msgs)) if i != k]
    assert dec.bad_crc == 1


@given(
    garbage_bytes.map(lambda b: b[:600]),
    st.lists(messages, min_size=1, max_size=8),
    st.lists(st.integers(0, 10_000), max_size=20),
)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_resync_after_garbage(garbage, msgs, cuts):
    """After garbage the decoder yields every frame after the first delimiter, in order."""
    stream = garbage + b"".join(encode_message(m, i) for i, m in enumerate(msgs))
    dec = FrameDecoder()
    frames = _feed_all(dec, _chunks(stream, cuts))
    # The first frame is lost only if the garbage runs into it (no trailing delimiter).
    lost = 1 if garbage and not garbage.endswith(b"\x00") else 0
    tail = [decode_message(f) for f in frames[len(frames) - (len(msgs) - lost) :]]
    assert tail == msgs[lost:]
    assert frames == _reference_frames(stream)


@given(
    st.lists(messages, min_size=1, max_size=12),
    st.lists(st.tuples(st.integers(0, 10_000), u8), min_size=1, max_size=10),
    st.lists(messages, min_size=1, max_size=5),
    st.lists(st.integers(0, 10_000), max_size=20),
)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_mutated_stream_then_intact_frames(msgs, mutations, after, cuts):
    """Mutated streams yield only frames the bitwise-CRC oracle accepts; intact ones follow."""
    sent = [encode_message(m, i) for i, m in enumerate(msgs)]
    stream = bytearray(b"".join(sent))
    for pos, value in mutations:
        stream[pos % len(stream)] = value
    intact = b"".join(encode_message(m, 1000 + i) for i, m in enumerate(after))
    # A delimiter first, as a sender does after a disturbance, so no intact frame is lost.
    wire = bytes(stream) + b"\x00" + intact
    dec = FrameDecoder()
    frames = _feed_all(dec, _chunks(wire, cuts))
    assert frames == _reference_frames(wire)
    # Each yielded frame is one that was sent, or a corrupted one whose CRC the oracle
    # above confirmed from the received bytes (a 16-bit CRC passes about 1 in 65536).
    originals = set(_reference_frames(b"".join(sent) + intact))
    assert sum(f not in originals for f in frames) <= 1
    assert [decode_message(f) for f in frames[len(frames) - len(after) :]] == after


def test_oversize_run_is_counted_and_skipped():
    """A run longer than the maximum frame is counted once and the next frame decodes."""
    dec = FrameDecoder()
    good = encode_message(Hello(), 7)
    frames = []
    for _ in range(10):
        frames += dec.feed(b"\x01" * 100)
    frames += dec.feed(b"\x00" + good)
    assert dec.oversize == 1
    assert frames == [Frame(Hello.TYPE, 7, b"")]
    frames = dec.feed(b"\x05" * (MAX_ENCODED_LEN + 5) + b"\x00" + good)
    assert dec.oversize == 2 and len(frames) == 1


def test_counters_classify_errors():
    """Bad CRC, COBS errors, runts, unknown types and sequence gaps land in their counters."""
    dec = FrameDecoder(frozenset(MESSAGE_TYPES))
    good = bytearray(encode_message(StartTelemetry(100), 1))
    bad = bytearray(good)
    bad[3] ^= 0x40 if bad[3] != 0x40 else 0x41
    dec.feed(bytes(bad))
    dec.feed(b"\x09\x01\x00")  # code byte pointing past the end
    dec.feed(b"\x03\x01\x01\x00")  # decodes to 2 bytes
    assert dec.feed(encode_frame(0x7E, 2)) == [Frame(0x7E, 2, b"")]
    dec.feed(bytes(good))  # seq 1 after 2: backward jump, a gap but no missed frames
    dec.feed(encode_message(Hello(), 5))  # 3 and 4 missing
    c = dec.counters()
    assert (c["bad_crc"], c["cobs_errors"], c["runts"], c["unknown_type"]) == (1, 1, 1, 1)
    assert (c["seq_gaps"], c["frames_missed"], c["frames_ok"]) == (2, 3, 3)


def test_decode_message_rejects_bad_length_and_type():
    """A known type with the wrong payload length, or an unknown type, is a ProtocolError."""
    with pytest.raises(ProtocolError, match="expected 4"):
        decode_message(Frame(SetLegVelocity.TYPE, 0, b"\x01\x02\x03"))
    with pytest.raises(ProtocolError, match="unknown message type 0x7e"):
        decode_message(Frame(0x7E, 0, b""))


def test_leg_velocity_scale_and_limits():
    """Setpoints travel in milli-rev/s; non-finite or non-i16 values are refused."""
    m = SetLegVelocity.from_rev_s(2.5, 8.9994)
    assert (m.left_mrev_s, m.right_mrev_s) == (2500, 8999)
    assert m.left_rev_s == 2.5
    for bad in (float("nan"), 40.0):
        with pytest.raises(ProtocolError, match="left setpoint"):
            SetLegVelocity.from_rev_s(bad, 3.0)


def test_max_payload_frame():
    """The largest payload fits in MAX_ENCODED_LEN and decodes."""
    wire = encode_frame(0x7F, 1, bytes(range(1, 256))[:MAX_PAYLOAD])
    assert len(wire) - 1 <= MAX_ENCODED_LEN
    assert FrameDecoder().feed(wire)[0].payload == bytes(range(1, 256))[:MAX_PAYLOAD]
    assert HEADER_LEN == 4
