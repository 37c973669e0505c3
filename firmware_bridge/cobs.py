"""Consistent Overhead Byte Stuffing (COBS), the framing of docs/protocol.md.

COBS rewrites a byte string so that it contains no 0x00, at a cost of one byte per
254 bytes (plus one), which frees 0x00 to mark the end of every frame on the wire.
Both directions work block by block with bytes slicing, not byte by byte, because the
frame decoder must keep up with many times the link's byte rate in pure Python.
"""

from __future__ import annotations


def cobs_encode(data: bytes) -> bytes:
    """Encodes ``data`` (any bytes) into a string with no 0x00 (delimiter not included)."""
    out = bytearray()
    for block in data.split(b"\x00"):
        # A zero-free run longer than 254 bytes is cut into 0xFF blocks, which mean
        # "254 data bytes, no zero follows".
        while len(block) >= 0xFE:
            out.append(0xFF)
            out += block[:0xFE]
            block = block[0xFE:]
        out.append(len(block) + 1)
        out += block
    return bytes(out)


def cobs_decode(encoded: bytes) -> bytes | None:
    """Decodes one COBS block sequence (no delimiter inside); None if it is malformed.

    Malformed means a code byte of 0x00 or a code that points past the end. The caller
    has already split the stream on 0x00, so a 0x00 never appears here.
    """
    n = len(encoded)
    if n == 0:
        return None
    out = bytearray()
    i = 0
    while i < n:
        code = encoded[i]
        j = i + code
        if code == 0 or j > n:
            return None
        out += encoded[i + 1 : j]
        i = j
        # A block shorter than 0xFF stands for its bytes followed by a zero, except the
        # last block, whose zero is the implicit one COBS adds at the end.
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)
