"""Broken boards: the fake motor board with one of the faults real boards have.

``roach sim --faults`` takes these keys beside the link faults of faults.py; each breaks
the board the way a real one breaks, so ``roach hil`` can be shown to catch it:

| key | what is broken |
|---|---|
| ``watchdog=off`` | the command timeout is ACKed but never trips: motors run on |
| ``stuck_encoder=left`` (or ``right``) | that leg's encoder count never changes |
| ``reversed_motor=left`` (or ``right``) | that motor is wired backwards: the leg runs back |
| ``telemetry_rate=half`` | telemetry streams at half the rate asked for (the ACK says nothing) |
| ``crc=wrong`` | the board's frames carry a CRC of polynomial 0x8005, not 0x1021 |
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from firmware_bridge.cobs import cobs_encode
from firmware_bridge.fake.faults import FAULT_KEYS
from firmware_bridge.fake.firmware import FakeFirmware, Simulation, SimulationWrapper
from firmware_bridge.frame import CRC, HEADER, PROTOCOL_VERSION
from firmware_bridge.messages import Message, SetCommandTimeout, StartTelemetry
from firmware_bridge.records import Pose, Telemetry
from robot_contract.errors import ConfigError

SIDES = ("left", "right")
BOARD_FAULTS: dict[str, tuple[str, ...]] = {
    "watchdog": ("off",),
    "stuck_encoder": SIDES,
    "reversed_motor": SIDES,
    "telemetry_rate": ("half",),
    "crc": ("wrong",),
}
WRONG_CRC_POLY = 0x8005
NO_TIMEOUT_MS = 0xFFFF
"""What a board whose watchdog is off effectively runs with (the longest the status
message can carry: 65 s)."""


@dataclass(frozen=True)
class BoardFaults:
    watchdog_off: bool = False
    stuck_encoder: str | None = None
    reversed_motor: str | None = None
    half_rate: bool = False
    wrong_crc: bool = False

    @property
    def any(self) -> bool:
        return self != BoardFaults()


def split_faults(text: str) -> tuple[BoardFaults, str]:
    """The board faults in a ``--faults`` string, and the rest (the link faults) for
    ``parse_faults``. ConfigError naming the bad item and every valid key."""
    found: dict[str, str] = {}
    rest: list[str] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, _, value = (s.strip() for s in item.partition("="))
        if key in BOARD_FAULTS:
            if value not in BOARD_FAULTS[key]:
                raise ConfigError(
                    f"--faults: {item!r}: valid values of {key}: {', '.join(BOARD_FAULTS[key])}"
                )
            found[key] = value
        elif key in FAULT_KEYS:
            rest.append(item)
        else:
            keys = [f"{k}=" for k in (*FAULT_KEYS, *BOARD_FAULTS)]
            raise ConfigError(f"--faults: unknown item {item!r}; valid keys: {', '.join(keys)}")
    faults = BoardFaults(
        watchdog_off="watchdog" in found,
        stuck_encoder=found.get("stuck_encoder"),
        reversed_motor=found.get("reversed_motor"),
        half_rate="telemetry_rate" in found,
        wrong_crc="crc" in found,
    )
    return faults, ",".join(rest)


def crc16_poly(data: bytes, poly: int, init: int = 0xFFFF) -> int:
    """MSB-first CRC-16 with any polynomial (the board's bug: the wrong one)."""
    crc = init
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ poly) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


class BrokenSimulation(SimulationWrapper):
    """The simulated robot behind a broken encoder or a motor wired backwards."""

    def __init__(self, sim: Simulation, faults: BoardFaults) -> None:
        super().__init__(sim)
        self.faults = faults
        self._stuck: tuple[int, int] | None = None

    def set_leg_velocity(self, left_rev_s: float, right_rev_s: float) -> None:
        if self.faults.reversed_motor == "left":
            left_rev_s = -left_rev_s
        elif self.faults.reversed_motor == "right":
            right_rev_s = -right_rev_s
        self.sim.set_leg_velocity(left_rev_s, right_rev_s)

    def set_duty(self, left: int, right: int) -> None:
        if self.faults.reversed_motor == "left":
            left = -left
        elif self.faults.reversed_motor == "right":
            right = -right
        self.sim.set_duty(left, right)

    def telemetry(self) -> Telemetry:
        tel = self.sim.telemetry()
        side = self.faults.reversed_motor
        if side is not None:  # the board's own reference still runs forward
            cmd = f"{side}_cmd"
            tel = dataclasses.replace(tel, **{cmd: -getattr(tel, cmd)})
        side = self.faults.stuck_encoder
        if side is not None:
            if self._stuck is None:
                self._stuck = (tel.left_pos, tel.right_pos)
            pos = self._stuck[SIDES.index(side)]
            tel = dataclasses.replace(tel, **{f"{side}_pos": pos})
        return tel


class BrokenFirmware(FakeFirmware):
    """The fake firmware with a broken watchdog, telemetry rate or CRC."""

    def __init__(
        self,
        sim: Simulation,
        faults: BoardFaults,
        *,
        lockstep: bool,
        pose_out: Callable[[Pose, int], None] | None = None,
    ) -> None:
        super().__init__(BrokenSimulation(sim, faults), lockstep=lockstep, pose_out=pose_out)
        self.faults = faults

    def _apply(self, msg: Message) -> int:
        if self.faults.watchdog_off and isinstance(msg, SetCommandTimeout):
            error = super()._apply(msg)
            if not error:
                self.timeout_ms = NO_TIMEOUT_MS
            return error
        if self.faults.half_rate and isinstance(msg, StartTelemetry) and msg.rate_hz > 1:
            return super()._apply(dataclasses.replace(msg, rate_hz=msg.rate_hz // 2))
        return super()._apply(msg)

    def _send(self, msg: Message, out: list[bytes]) -> None:
        if not self.faults.wrong_crc:
            super()._send(msg, out)
            return
        raw = HEADER.pack(PROTOCOL_VERSION, msg.TYPE, self.tx_seq) + msg.pack()
        raw += CRC.pack(crc16_poly(raw, WRONG_CRC_POLY))
        out.append(cobs_encode(raw) + b"\x00")
        self.tx_seq = (self.tx_seq + 1) & 0xFFFF
        self.tx_frames += 1


def make_firmware(
    sim: Simulation,
    faults: BoardFaults,
    *,
    lockstep: bool,
    pose_out: Callable[[Pose, int], None] | None = None,
) -> FakeFirmware:
    """The fake firmware, broken as ``faults`` say (a sound board when they say nothing);
    ``pose_out``: poses go there instead of POSE frames (``roach sim --pose-out``)."""
    if faults.any:
        return BrokenFirmware(sim, faults, lockstep=lockstep, pose_out=pose_out)
    return FakeFirmware(sim, lockstep=lockstep, pose_out=pose_out)
