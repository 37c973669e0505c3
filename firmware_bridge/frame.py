"""Frames on the wire: header, payload and CRC, COBS-stuffed, ended by 0x00.

Byte layout (docs/protocol.md, section "Frame"), before COBS stuffing::

    offset 0  u8   protocol version (PROTOCOL_VERSION)
    offset 1  u8   message type
    offset 2  u16  sequence number, per direction, +1 per frame, wraps at 65536
    offset 4  ...  payload, 0..MAX_PAYLOAD bytes
    end-2     u16  CRC-16/CCITT-FALSE over every byte before it

All multi-byte fields are little-endian. On the wire: ``cobs(raw) + b"\\x00"``.

``FrameDecoder`` is push-style: feed it byte chunks of any size and it returns the
complete, CRC-checked frames they finish. It never raises on bad input; it counts
what it dropped and starts over at the next 0x00.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from firmware_bridge.cobs import cobs_decode, cobs_encode
from firmware_bridge.crc import crc16

PROTOCOL_VERSION = 1
HEADER = struct.Struct("<BBH")
CRC = struct.Struct("<H")
HEADER_LEN = HEADER.size  # 4
CRC_LEN = CRC.size  # 2
MAX_PAYLOAD = 240
MAX_RAW_LEN = HEADER_LEN + MAX_PAYLOAD + CRC_LEN  # 246
MAX_ENCODED_LEN = MAX_RAW_LEN + 1  # COBS adds one byte per 254 (none below 254), plus one
DELIMITER = b"\x00"


class Frame(NamedTuple):
    """One CRC-checked frame: message type, sequence number and raw payload bytes."""

    type: int
    seq: int
    payload: bytes


def encode_frame(msg_type: int, seq: int, payload: bytes = b"") -> bytes:
    """Wire bytes of one frame, including the trailing 0x00 delimiter."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds MAX_PAYLOAD={MAX_PAYLOAD}")
    raw = HEADER.pack(PROTOCOL_VERSION, msg_type, seq & 0xFFFF) + payload
    raw += CRC.pack(crc16(raw))
    return cobs_encode(raw) + DELIMITER


COUNTER_NAMES: tuple[str, ...] = (
    "bytes_in",  # every byte fed
    "frames_ok",  # frames returned
    "bad_crc",  # COBS-valid frames whose CRC did not match
    "cobs_errors",  # byte runs between delimiters that are not valid COBS
    "runts",  # valid COBS but shorter than header + CRC
    "oversize",  # runs longer than MAX_ENCODED_LEN (dropped without decoding)
    "bad_version",  # CRC-valid frames of another protocol version (dropped)
    "unknown_type",  # CRC-valid frames whose type is not in known_types (still returned)
    "seq_gaps",  # times the sequence number did not follow the previous frame's
    "frames_missed",  # frames the sequence gaps imply were lost
    "seq_backwards",  # gaps that went backwards (a repeated, reordered or restarted peer)
)


class FrameDecoder:
    """Push-style frame decoder with counters; no port access, never raises.

    ``known_types``: message types this side understands; frames of other types are
    still returned (so a receiver can refuse them) but counted in ``unknown_type``.
    """

    def __init__(self, known_types: frozenset[int] | None = None) -> None:
        self._known = known_types
        self._buf = b""
        self._discarding = False  # inside an oversize run: drop until the next 0x00
        self._last_seq: int | None = None
        self.bytes_in = 0
        self.frames_ok = 0
        self.bad_crc = 0
        self.cobs_errors = 0
        self.runts = 0
        self.oversize = 0
        self.bad_version = 0
        self.unknown_type = 0
        self.seq_gaps = 0
        self.frames_missed = 0
        self.seq_backwards = 0

    def counters(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTER_NAMES}

    @property
    def errors(self) -> int:
        """Byte runs that did not make a frame (bad CRC, COBS, runt, oversize, version)."""
        return self.bad_crc + self.cobs_errors + self.runts + self.oversize + self.bad_version

    def reset_sequence(self) -> None:
        """Forget the last sequence number (after a reconnect the peer may restart)."""
        self._last_seq = None

    def feed(self, chunk: bytes) -> list[Frame]:
        """Consumes ``chunk`` (any length) and returns the frames it completes, in order."""
        self.bytes_in += len(chunk)
        if DELIMITER not in chunk:
            self._append_partial(chunk)
            return []
        parts = (self._buf + chunk).split(DELIMITER)
        self._buf = b""
        tail = parts.pop()
        frames: list[Frame] = []
        if self._discarding:
            # The first part ends the oversize run counted when it started.
            parts[0] = b""
            self._discarding = False
        for part in parts:
            if not part:
                continue  # back-to-back delimiters are idle fill
            frame = self._decode(part)
            if frame is not None:
                frames.append(frame)
        self._append_partial(tail)
        return frames

    def _append_partial(self, data: bytes) -> None:
        if self._discarding:
            return
        buf = self._buf + data if self._buf else data
        if len(buf) > MAX_ENCODED_LEN:
            self.oversize += 1
            self._discarding = True
            self._buf = b""
        else:
            self._buf = buf

    def _decode(self, part: bytes) -> Frame | None:
        if len(part) > MAX_ENCODED_LEN:
            self.oversize += 1
            return None
        raw = cobs_decode(part)
        if raw is None:
            self.cobs_errors += 1
            return None
        if len(raw) < HEADER_LEN + CRC_LEN:
            self.runts += 1
            return None
        body = raw[:-CRC_LEN]
        if crc16(body) != raw[-2] | (raw[-1] << 8):
            self.bad_crc += 1
            return None
        version, msg_type, seq = HEADER.unpack_from(body)
        if version != PROTOCOL_VERSION:
            self.bad_version += 1
            return None
        last = self._last_seq
        if last is not None and seq != (last + 1) & 0xFFFF:
            self.seq_gaps += 1
            missed = (seq - last - 1) & 0xFFFF
            if missed < 0x8000:  # a backward jump is a restarted peer, not lost frames
                self.frames_missed += missed
            else:
                self.seq_backwards += 1
        self._last_seq = seq
        if self._known is not None and msg_type not in self._known:
            self.unknown_type += 1
        self.frames_ok += 1
        return Frame(msg_type, seq, body[HEADER_LEN:])
