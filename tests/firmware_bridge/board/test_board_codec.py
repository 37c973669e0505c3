"""The C protocol core against the Python codec, both ways (Hypothesis)."""

from __future__ import annotations

import ctypes
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.cobs import cobs_decode, cobs_encode
from firmware_bridge.crc import crc16
from firmware_bridge.frame import (
    COUNTER_NAMES,
    MAX_ENCODED_LEN,
    MAX_PAYLOAD,
    Frame,
    FrameDecoder,
    encode_frame,
)
from firmware_bridge.messages import COMMAND_TYPES, REPLY_TYPES

payloads = st.binary(max_size=MAX_PAYLOAD)
BUDGET = settings(max_examples=150, deadline=None)


def c_encode(lib: ctypes.CDLL, msg_type: int, seq: int, payload: bytes) -> bytes:
    out = ctypes.create_string_buffer(MAX_ENCODED_LEN + 1)
    n = lib.frame_encode(msg_type, seq, payload, len(payload), out)
    return out.raw[:n]


def c_decode(lib: ctypes.CDLL, stream: bytes, known: int) -> tuple[list[Frame], dict[str, int]]:
    """Frames and counters of a fresh C decoder fed ``stream`` (known: 0 all, 1 replies,
    2 commands)."""
    lib.sim_decoder_reset(known)
    cap = 4 * len(stream) + 16
    out = ctypes.create_string_buffer(cap)
    n = lib.sim_decoder_feed(stream, len(stream), out, cap)
    raw, frames, i = out.raw[:n], [], 0
    while i < n:
        length = raw[i + 3]
        frames.append(Frame(raw[i], raw[i + 1] | raw[i + 2] << 8, raw[i + 4 : i + 4 + length]))
        i += 4 + length
    counters = (ctypes.c_uint32 * len(COUNTER_NAMES))()
    lib.sim_decoder_counters(counters)
    return frames, dict(zip(COUNTER_NAMES, counters, strict=True))


@BUDGET
@given(data=st.binary(max_size=600))
def test_crc_and_cobs_match_python(board_lib, data):
    """CRC-16/CCITT-FALSE and COBS of the C core give the Python codec's bytes, and the C
    COBS decoder inverts both encoders."""
    assert board_lib.crc16_ccitt_false(data, len(data)) == crc16(data)
    out = ctypes.create_string_buffer(len(data) + len(data) // 254 + 2)
    n = board_lib.cobs_encode(data, len(data), out)
    assert out.raw[:n] == cobs_encode(data)
    back = ctypes.create_string_buffer(max(1, n))
    m = board_lib.cobs_decode(out.raw[:n], n, back)
    assert back.raw[:m] == data == cobs_decode(out.raw[:n])


@BUDGET
@given(msg_type=st.integers(0, 255), seq=st.integers(0, 0xFFFF), payload=payloads)
def test_every_frame_one_side_encodes_the_other_decodes(board_lib, msg_type, seq, payload):
    """C and Python encode a frame to the same bytes, and each decoder returns it intact."""
    wire = c_encode(board_lib, msg_type, seq, payload)
    assert wire == encode_frame(msg_type, seq, payload)
    assert FrameDecoder().feed(wire) == [Frame(msg_type, seq, payload)]
    frames, _ = c_decode(board_lib, encode_frame(msg_type, seq, payload), 0)
    assert frames == [Frame(msg_type, seq, payload)]


def _frame(draw_seq: int, msg_type: int, payload: bytes) -> bytes:
    return encode_frame(msg_type, draw_seq, payload)


@st.composite
def streams(draw) -> bytes:
    """Byte streams of valid frames (with sequence gaps and restarts), mutated frames,
    oversize runs, runts, other versions, idle fill and random bytes."""
    parts, seq = [], draw(st.integers(0, 0xFFFF))
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["frame", "frame", "mutate", "garbage", "long", "zeros"]))
        seq = (seq + draw(st.sampled_from([1, 1, 1, 2, 7, 40000, 65535]))) & 0xFFFF
        t = draw(st.sampled_from([*sorted(COMMAND_TYPES), *sorted(REPLY_TYPES), 0x7F, 0xFE]))
        wire = bytearray(_frame(seq, t, draw(st.binary(max_size=60))))
        if kind == "mutate":
            i = draw(st.integers(0, len(wire) - 1))
            wire[i] = draw(st.integers(0, 255))
            if draw(st.booleans()):
                del wire[draw(st.integers(0, len(wire) - 1))]
        elif kind == "garbage":
            wire = bytearray(draw(st.binary(max_size=40)))
        elif kind == "long":
            wire = bytearray([draw(st.integers(1, 255))] * draw(st.integers(240, 300)) + [0])
        elif kind == "zeros":
            wire = bytearray(b"\x00" * draw(st.integers(1, 3)))
        parts.append(bytes(wire))
    if draw(st.booleans()):  # another protocol version, CRC valid
        raw = bytes([2, 0x10, 0, 0, 1, 2, 3, 4])
        c = crc16(raw)
        parts.append(cobs_encode(raw + bytes([c & 0xFF, c >> 8])) + b"\x00")
    if draw(st.booleans()):  # a runt: valid COBS, under 6 bytes
        parts.append(cobs_encode(b"\x01\x10\x05") + b"\x00")
    return b"".join(parts)


@settings(max_examples=200, deadline=None)
@given(stream=streams(), cuts=st.lists(st.integers(0, 4000), max_size=8), known=st.integers(0, 2))
def test_both_decoders_see_the_same_frames_and_counters(board_lib, stream, cuts, known):
    """Any byte stream gives the same frames and the same ten counters in the C decoder
    (fed byte by byte) and the Python one (fed in arbitrary chunks)."""
    types = {0: None, 1: REPLY_TYPES, 2: COMMAND_TYPES}[known]
    py = FrameDecoder(types)
    frames, edges = [], sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    for a, b in pairwise(edges):
        frames += py.feed(stream[a:b])
    c_frames, c_counters = c_decode(board_lib, stream, known)
    assert c_frames == frames
    assert c_counters == py.counters()
