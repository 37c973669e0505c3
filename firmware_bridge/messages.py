"""Message types and their payload codecs (docs/protocol.md, section "Messages").

Each message is a frozen dataclass holding the payload fields in wire units, with a
``TYPE`` byte and a little-endian ``struct`` layout. ``encode_message`` makes the wire
bytes of a frame; ``decode_message`` turns a CRC-checked ``Frame`` back into a message
and raises ``ProtocolError`` when the payload length or a field does not fit the type.
Range checks of command values (setpoints, rates) are the firmware's job: it answers
them with a NACK, so the codec passes any value the wire format can hold.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, fields
from typing import ClassVar

from firmware_bridge.frame import Frame, encode_frame
from firmware_bridge.records import TELEMETRY_STRUCT, Pose, Telemetry
from robot_contract.errors import ProtocolError

# --- status flags (TELEMETRY and STATUS) ------------------------------------------
FLAG_MOTORS_ON = 0x01  # PID or open-loop drive is enabled
FLAG_WATCHDOG_TRIPPED = 0x02  # the command timeout stopped the motors
FLAG_ESTOPPED = 0x04  # emergency stop latched, until CLEAR_EMERGENCY_STOP
FLAG_OPEN_LOOP = 0x08  # driving with SET_DUTY rather than the leg-velocity PID
FLAG_TELEMETRY_ON = 0x10

# --- NACK error codes ------------------------------------------------------------
ERR_MALFORMED = 1  # payload length does not match the type
ERR_UNKNOWN_TYPE = 2
ERR_OUT_OF_RANGE = 3  # a field outside its documented sanity range
ERR_ESTOPPED = 4  # motion command while the emergency stop is latched
ERROR_NAMES = {
    ERR_MALFORMED: "malformed",
    ERR_UNKNOWN_TYPE: "unknown type",
    ERR_OUT_OF_RANGE: "out of range",
    ERR_ESTOPPED: "emergency stop latched",
}

LEG_VELOCITY_SCALE = 1000
"""SET_LEG_VELOCITY carries milli-revolutions per second: i16 value = rev/s * 1000."""


@dataclass(frozen=True, slots=True)
class Message:
    """Base of all messages: payload fields in declaration order, packed by STRUCT."""

    TYPE: ClassVar[int]
    STRUCT: ClassVar[struct.Struct]

    def pack(self) -> bytes:
        try:
            return self.STRUCT.pack(*(getattr(self, f.name) for f in fields(self)))
        except struct.error as exc:
            raise ProtocolError(f"{type(self).__name__}: cannot encode {self}: {exc}") from None

    @classmethod
    def unpack(cls, payload: bytes) -> Message:
        return cls(*cls.STRUCT.unpack(payload))


_EMPTY = struct.Struct("<")


# --- host -> robot ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Hello(Message):
    """Who-am-I; answered by HELLO_REPLY. Empty payload."""

    TYPE: ClassVar[int] = 0x01
    STRUCT: ClassVar[struct.Struct] = _EMPTY


@dataclass(frozen=True, slots=True)
class GetStatus(Message):
    """Answered by STATUS. Empty payload."""

    TYPE: ClassVar[int] = 0x02
    STRUCT: ClassVar[struct.Struct] = _EMPTY


@dataclass(frozen=True, slots=True)
class StartMotors(Message):
    """Enable the leg-velocity PID; clears the watchdog flag. Empty payload."""

    TYPE: ClassVar[int] = 0x12
    STRUCT: ClassVar[struct.Struct] = _EMPTY


@dataclass(frozen=True, slots=True)
class StopMotors(Message):
    """Disable the drive (duty 0). Empty payload."""

    TYPE: ClassVar[int] = 0x13
    STRUCT: ClassVar[struct.Struct] = _EMPTY


@dataclass(frozen=True, slots=True)
class ZeroEncoders(Message):
    """Set both encoder positions to 0. Empty payload."""

    TYPE: ClassVar[int] = 0x15
    STRUCT: ClassVar[struct.Struct] = _EMPTY


@dataclass(frozen=True, slots=True)
class StopTelemetry(Message):
    """Stop the TELEMETRY and POSE stream. Empty payload."""

    TYPE: ClassVar[int] = 0x18
    STRUCT: ClassVar[struct.Struct] = _EMPTY


@dataclass(frozen=True, slots=True)
class EmergencyStop(Message):
    """Stop and latch: motion commands are refused until cleared. Empty payload."""

    TYPE: ClassVar[int] = 0x19
    STRUCT: ClassVar[struct.Struct] = _EMPTY


@dataclass(frozen=True, slots=True)
class ClearEmergencyStop(Message):
    """Release the latch; motors stay off until START_MOTORS. Empty payload."""

    TYPE: ClassVar[int] = 0x1A
    STRUCT: ClassVar[struct.Struct] = _EMPTY


@dataclass(frozen=True, slots=True)
class SetLegVelocity(Message):
    """Leg-velocity setpoints, milli-rev/s (i16). Feeds the watchdog."""

    TYPE: ClassVar[int] = 0x10
    STRUCT: ClassVar[struct.Struct] = struct.Struct("<hh")
    left_mrev_s: int
    right_mrev_s: int

    @classmethod
    def from_rev_s(cls, left_rev_s: float, right_rev_s: float) -> SetLegVelocity:
        """Rounds rev/s to the wire's milli-rev/s; ProtocolError if not finite or > i16."""
        vals = []
        for name, v in (("left", left_rev_s), ("right", right_rev_s)):
            if not math.isfinite(v) or abs(v) * LEG_VELOCITY_SCALE > 32767:
                raise ProtocolError(
                    f"SetLegVelocity: {name} setpoint {v!r} rev/s is not encodable "
                    f"(finite, |v| <= {32767 / LEG_VELOCITY_SCALE})"
                )
            vals.append(round(v * LEG_VELOCITY_SCALE))
        return cls(vals[0], vals[1])

    @property
    def left_rev_s(self) -> float:
        return self.left_mrev_s / LEG_VELOCITY_SCALE

    @property
    def right_rev_s(self) -> float:
        return self.right_mrev_s / LEG_VELOCITY_SCALE


@dataclass(frozen=True, slots=True)
class SetDuty(Message):
    """Open-loop PWM duty per side, -4000..4000 (i16). Feeds the watchdog."""

    TYPE: ClassVar[int] = 0x11
    STRUCT: ClassVar[struct.Struct] = struct.Struct("<hh")
    left: int
    right: int


@dataclass(frozen=True, slots=True)
class SetPidGains(Message):
    """PID gains per side in the firmware's fixed-point units (i16 each)."""

    TYPE: ClassVar[int] = 0x14
    STRUCT: ClassVar[struct.Struct] = struct.Struct("<10h")
    left_kp: int
    left_ki: int
    left_kd: int
    left_kaw: int
    left_kff: int
    right_kp: int
    right_ki: int
    right_kd: int
    right_kaw: int
    right_kff: int


@dataclass(frozen=True, slots=True)
class SetCommandTimeout(Message):
    """Watchdog timeout in ms (u16), valid 10..10000."""

    TYPE: ClassVar[int] = 0x16
    STRUCT: ClassVar[struct.Struct] = struct.Struct("<H")
    timeout_ms: int


@dataclass(frozen=True, slots=True)
class StartTelemetry(Message):
    """Stream TELEMETRY and POSE at rate_hz (u16), valid 1..1000."""

    TYPE: ClassVar[int] = 0x17
    STRUCT: ClassVar[struct.Struct] = struct.Struct("<H")
    rate_hz: int


# --- robot -> host ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Ack(Message):
    TYPE: ClassVar[int] = 0x80
    STRUCT: ClassVar[struct.Struct] = struct.Struct("<HB")
    request_seq: int
    request_type: int


@dataclass(frozen=True, slots=True)
class Nack(Message):
    TYPE: ClassVar[int] = 0x81
    STRUCT: ClassVar[struct.Struct] = struct.Struct("<HBB")
    request_seq: int
    request_type: int
    error: int

    def describe(self) -> str:
        what = ERROR_NAMES.get(self.error, f"error {self.error}")
        return f"command 0x{self.request_type:02x} (seq {self.request_seq}) refused: {what}"


@dataclass(frozen=True, slots=True)
class HelloReply(Message):
    TYPE: ClassVar[int] = 0x82
    STRUCT: ClassVar[struct.Struct] = struct.Struct("<HBBBBL16s")
    request_seq: int
    protocol_version: int
    fw_major: int
    fw_minor: int
    fw_patch: int
    device_id: int
    name: bytes  # ASCII, NUL-padded to 16 bytes

    @classmethod
    def unpack(cls, payload: bytes) -> Message:
        vals = list(cls.STRUCT.unpack(payload))
        vals[-1] = vals[-1].rstrip(b"\x00")
        return cls(*vals)


@dataclass(frozen=True, slots=True)
class Status(Message):
    """Board state and watchdog bookkeeping, board-clock microseconds (u32, wraps)."""

    TYPE: ClassVar[int] = 0x83
    STRUCT: ClassVar[struct.Struct] = struct.Struct("<HBLLLHHLLLLH")
    request_seq: int
    flags: int
    time_us: int  # board clock now
    last_command_us: int  # when the last watchdog-feeding command was executed
    watchdog_trip_us: int  # when the watchdog last tripped (0 if never)
    timeout_ms: int
    telemetry_rate_hz: int  # 0 when off
    rx_frames_ok: int
    rx_errors: int  # bad CRC + COBS errors + runts + oversize + bad version
    rx_frames_missed: int  # from sequence gaps
    tx_frames: int
    watchdog_trips: int


@dataclass(frozen=True, slots=True)
class TelemetryMsg(Message):
    """Status flags (u8) then the 46-byte record of records.py."""

    TYPE: ClassVar[int] = 0x84
    STRUCT: ClassVar[struct.Struct] = struct.Struct("<B" + TELEMETRY_STRUCT.format[1:])
    flags: int
    record: Telemetry

    def pack(self) -> bytes:
        return bytes((self.flags & 0xFF,)) + self.record.pack()

    @classmethod
    def unpack(cls, payload: bytes) -> Message:
        return cls(payload[0], Telemetry(*TELEMETRY_STRUCT.unpack_from(payload, 1)))


@dataclass(frozen=True, slots=True)
class PoseMsg(Message):
    """x, y, z (m), roll, pitch, yaw (rad) as f32, tracker timestamp u32 microseconds."""

    TYPE: ClassVar[int] = 0x85
    STRUCT: ClassVar[struct.Struct] = struct.Struct("<6fL")
    pose: Pose

    def pack(self) -> bytes:
        p = self.pose
        return self.STRUCT.pack(p.x, p.y, p.z, p.roll, p.pitch, p.yaw, p.timestamp_us & 0xFFFFFFFF)

    @classmethod
    def unpack(cls, payload: bytes) -> Message:
        return cls(Pose(*cls.STRUCT.unpack(payload)))


MESSAGE_TYPES: dict[int, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        Hello,
        GetStatus,
        SetLegVelocity,
        SetDuty,
        StartMotors,
        StopMotors,
        SetPidGains,
        ZeroEncoders,
        SetCommandTimeout,
        StartTelemetry,
        StopTelemetry,
        EmergencyStop,
        ClearEmergencyStop,
        Ack,
        Nack,
        HelloReply,
        Status,
        TelemetryMsg,
        PoseMsg,
    )
}
COMMAND_TYPES = frozenset(t for t in MESSAGE_TYPES if t < 0x80)
REPLY_TYPES = frozenset(t for t in MESSAGE_TYPES if t >= 0x80)
WATCHDOG_FEEDING_TYPES = frozenset((SetLegVelocity.TYPE, SetDuty.TYPE))


def encode_message(msg: Message, seq: int) -> bytes:
    """Wire bytes (COBS frame with its 0x00 delimiter) of ``msg`` with sequence ``seq``."""
    return encode_frame(msg.TYPE, seq, msg.pack())


def decode_message(frame: Frame) -> Message:
    """The message a CRC-checked frame carries. ProtocolError for unknown type or length."""
    cls = MESSAGE_TYPES.get(frame.type)
    if cls is None:
        raise ProtocolError(f"frame seq {frame.seq}: unknown message type 0x{frame.type:02x}")
    if len(frame.payload) != cls.STRUCT.size:
        raise ProtocolError(
            f"frame seq {frame.seq}: {cls.__name__} payload is {len(frame.payload)} bytes, "
            f"expected {cls.STRUCT.size}"
        )
    try:
        return cls.unpack(frame.payload)
    except (struct.error, ValueError) as exc:
        raise ProtocolError(f"frame seq {frame.seq}: bad {cls.__name__} payload: {exc}") from None
