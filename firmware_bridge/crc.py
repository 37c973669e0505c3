"""CRC-16/CCITT-FALSE, the frame check of docs/protocol.md.

Polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR; check value
0x29B1 for the ASCII string ``123456789``. ``binascii.crc_hqx`` computes exactly this
CRC (it is the XMODEM routine with a caller-given initial value) in C, table driven, so
the decoder does not spend Python time per byte. On the microcontroller the same CRC is
the usual 256-entry table (``crc16_table`` below documents and tests it).
"""

from __future__ import annotations

import binascii

CRC_INIT = 0xFFFF
CRC_POLY = 0x1021


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE of ``data``, an int in 0..65535."""
    return binascii.crc_hqx(data, CRC_INIT)


def crc16_table() -> list[int]:
    """The 256-entry MSB-first table a firmware implementation uses."""
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ CRC_POLY) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


def crc16_reference(data: bytes) -> int:
    """Table-driven CRC as the firmware computes it (slow; for tests)."""
    table = crc16_table()
    crc = CRC_INIT
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ b) & 0xFF]
    return crc
