"""Hardware-in-the-loop checks of a robot on a serial port (``roach hil``).

The checks a technician wants before a robot is trusted with the controller, each a
set of measured figures with their bounds (robot on a stand, legs free):

| check | figures and bounds |
|---|---|
| handshake | protocol version = this host's; frames failing the CRC = 0 |
| telemetry | rate within 10% of the asked rate; sample-number gaps = 0 |
| pose | newest pose younger than 0.25 s |
| setpoint | each leg's reference (board's commanded position) runs at the setpoint +-2% |
| encoder | each leg turns forward; encoder counts per reference revolution 65536 +-25% |
| command_timeout | without commands the motors stop within the timeout + 15 ms (board time) |
| estop | START and setpoints refused while latched, also after a STOP; CLEAR clears it |
| range | setpoints of 30 and -1 rev/s refused |

They work the same against the fake (``roach sim --clock realtime``), whose
``--faults`` can break the board as real boards break (firmware_bridge/fake/board_faults.py);
each fault fails the check of the property it breaks. ``run_checks`` runs them in order
and stops the motors after each; a failed handshake ends the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from firmware_bridge.frame import PROTOCOL_VERSION
from firmware_bridge.messages import FLAG_ESTOPPED, FLAG_MOTORS_ON, SetLegVelocity, StopMotors
from firmware_bridge.records import ENCODER_COUNTS_PER_REV, Telemetry
from firmware_bridge.robot import Stamped
from firmware_bridge.serial_robot import SerialRobot
from robot_contract.errors import ProtocolError, RoachError


@dataclass(frozen=True)
class HilSettings:
    """What the checks ask of the robot."""

    rate_hz: float = 100.0
    """Telemetry rate to ask for; the telemetry check wants it within 10%."""
    leg_rev_s: float = 4.0
    """Setpoint of the drive checks (rev/s)."""
    timeout_ms: int = 250
    """Command timeout to arm for the drive and timeout checks."""


RATE_TOLERANCE = 0.10
REFERENCE_TOLERANCE = 0.02
COUNTS_TOLERANCE = 0.25
TIMEOUT_MARGIN_MS = 15.0
BOARD_TRIP_TICK_MS = 1.0
"""The board's own record of a watchdog trip may be one board tick late."""
POSE_MAX_AGE_S = 0.25


@dataclass(frozen=True)
class Figure:
    """One measured figure and its bound."""

    name: str
    value: Any
    bound: str
    ok: bool
    unit: str = ""

    def text(self) -> str:
        v = f"{self.value:.4g}" if isinstance(self.value, float) else str(self.value)
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.name} {v}{unit} ({'bound' if self.ok else 'BROKEN, bound'} {self.bound})"


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    """One line: the figures, the broken ones first."""
    figures: list[Figure] = field(default_factory=list)

    @classmethod
    def of(cls, name: str, figures: list[Figure], error: str | None = None) -> CheckResult:
        broken = [f for f in figures if not f.ok]
        parts = ([error] if error else []) + [f.text() for f in broken]
        parts += [f.text() for f in figures if f.ok]
        return cls(name, error is None and not broken, "; ".join(parts), figures)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "detail": self.detail,
            "figures": [f.__dict__ for f in self.figures],
        }


Check = Callable[[], CheckResult]


@dataclass
class _Drive:
    """Telemetry at the start and end of a second of driving at the setpoint."""

    t0: Stamped[Telemetry]
    t1: Stamped[Telemetry]

    @property
    def dt_s(self) -> float:
        return ((self.t1.value.timestamp_us - self.t0.value.timestamp_us) % (1 << 32)) * 1e-6


class Checks:
    """The checks, in the order they run; each returns a CheckResult."""

    def __init__(self, robot: SerialRobot, settings: HilSettings) -> None:
        self.robot, self.settings = robot, settings
        self.hello: dict[str, object] = {}
        self._drive: _Drive | None = None

    def handshake(self) -> CheckResult:
        bad0 = self.robot.counters()["bad_crc"]
        try:
            self.hello = self.robot.hello(timeout_s=2.0)
            error = None
        except RoachError as exc:
            error = f"no valid HELLO reply: {exc}"
        bad = self.robot.counters()["bad_crc"] - bad0
        figures = [Figure("frames failing the CRC", bad, "= 0", bad == 0)]
        if self.hello:
            v = self.hello["protocol_version"]
            figures.insert(0, Figure("protocol", v, f"= {PROTOCOL_VERSION}", v == PROTOCOL_VERSION))
            figures.append(Figure("firmware", self.hello["firmware"], "reported", True))
            figures.append(Figure("name", repr(self.hello["name"]), "reported", True))
        return CheckResult.of("handshake", figures, error)

    def telemetry(self) -> CheckResult:
        asked = self.settings.rate_hz
        self.robot.start_telemetry(asked)
        time.sleep(0.3)
        n0, first = self._count_and_latest()
        t0 = time.monotonic()
        time.sleep(1.0)
        n1, last = self._count_and_latest()
        elapsed = time.monotonic() - t0
        if first is None or last is None:
            return CheckResult.of("telemetry", [], "no telemetry received")
        rate = (n1 - n0) / elapsed
        gaps = (last.value.sample_index - first.value.sample_index) - (n1 - n0)
        lo, hi = (1 - RATE_TOLERANCE) * asked, (1 + RATE_TOLERANCE) * asked
        return CheckResult.of(
            "telemetry",
            [
                Figure("telemetry rate", rate, f"{lo:.4g}..{hi:.4g} Hz", lo <= rate <= hi, "Hz"),
                Figure("sample-number gaps", gaps, "= 0", gaps == 0),
            ],
        )

    def pose(self) -> CheckResult:
        pose = self.robot.latest_pose()
        if pose is None:
            return CheckResult.of("pose", [], "no pose received")
        age = time.monotonic() - pose.received_monotonic_s
        ok = age < POSE_MAX_AGE_S
        return CheckResult.of(
            "pose", [Figure("pose age", age * 1e3, f"< {POSE_MAX_AGE_S * 1e3:g} ms", ok, "ms")]
        )

    def setpoint(self) -> CheckResult:
        d, target = self._measure_drive(), self.settings.leg_rev_s
        if isinstance(d, str):
            return CheckResult.of("setpoint", [], d)
        figures = []
        for side in ("left", "right"):
            a, b = (getattr(t.value, f"{side}_cmd") for t in (d.t0, d.t1))
            rate = (b - a) / ENCODER_COUNTS_PER_REV / d.dt_s
            ok = abs(rate - target) <= REFERENCE_TOLERANCE * target
            bound = f"{target:g} rev/s +-{REFERENCE_TOLERANCE:.0%}"
            figures.append(Figure(f"{side} reference rate", rate, bound, ok, "rev/s"))
        return CheckResult.of("setpoint", figures)

    def encoder(self) -> CheckResult:
        d = self._measure_drive()
        if isinstance(d, str):
            return CheckResult.of("encoder", [], d)
        figures = []
        for side in ("left", "right"):
            p0, p1 = (getattr(t.value, f"{side}_pos") for t in (d.t0, d.t1))
            c0, c1 = (getattr(t.value, f"{side}_cmd") for t in (d.t0, d.t1))
            moved, ref = p1 - p0, c1 - c0
            direction = "forward" if moved > 0 else "backward" if moved < 0 else "none"
            figures.append(Figure(f"{side} leg direction", direction, "forward", moved > 0))
            per_rev = moved / ref * ENCODER_COUNTS_PER_REV if ref else 0.0
            ok = abs(per_rev - ENCODER_COUNTS_PER_REV) <= COUNTS_TOLERANCE * ENCODER_COUNTS_PER_REV
            bound = f"{ENCODER_COUNTS_PER_REV} +-{COUNTS_TOLERANCE:.0%}"
            figures.append(Figure(f"{side} encoder counts/rev", per_rev, bound, ok))
        return CheckResult.of("encoder", figures)

    def command_timeout(self) -> CheckResult:
        timeout = self.settings.timeout_ms
        self.robot.set_command_timeout(timeout)
        self.robot.start_motors()
        self._drive_for(0.3, self.settings.leg_rev_s)
        last_sent = time.monotonic()
        bound_ms = timeout + TIMEOUT_MARGIN_MS
        stopped: Stamped[Telemetry] | None = None
        while time.monotonic() - last_sent < 3 * bound_ms / 1000.0:  # no commands now
            tel = self.robot.latest_telemetry()
            fresh = tel is not None and tel.received_monotonic_s > last_sent
            if fresh and tel is not None and not tel.status_flags & FLAG_MOTORS_ON:
                stopped = tel
                break
            time.sleep(0.002)
        status = self.robot.status()
        if stopped is None:
            waited = (time.monotonic() - last_sent) * 1e3
            bound = f"stop within {bound_ms:g} ms"
            fig = Figure("motors still on after", waited, bound, False, "ms")
            return CheckResult.of("command_timeout", [fig])
        # The board's own record of the trip; the telemetry only shows it a period later.
        trip_us = status.watchdog_trip_us or stopped.value.timestamp_us
        after_ms = ((trip_us - status.last_command_us) % (1 << 32)) * 1e-3
        seen_ms = ((stopped.value.timestamp_us - status.last_command_us) % (1 << 32)) * 1e-3
        # docs/protocol.md ("Board behaviour"): the trip is timeout_ms after the last
        # command, at most one 1 ms board tick later.
        ok = timeout <= after_ms <= timeout + BOARD_TRIP_TICK_MS
        bound = f"{timeout}..{timeout + BOARD_TRIP_TICK_MS:g} ms after the last command"
        return CheckResult.of(
            "command_timeout",
            [
                Figure("motors stopped after", after_ms, bound, ok, "ms"),
                Figure("stop seen in telemetry after", seen_ms, "reported", True, "ms"),
            ],
        )

    def estop(self) -> CheckResult:
        r = self.robot
        r.emergency_stop()
        start_refused = _refused(r.start_motors)
        setpoint_refused = _refused(lambda: r.request(SetLegVelocity.from_rev_s(4.0, 4.0)))
        r.request(StopMotors())
        time.sleep(0.3)
        still_refused = _refused(r.start_motors)
        latched = _flag(r, FLAG_ESTOPPED)
        r.clear_emergency_stop()
        time.sleep(0.1)
        cleared = not _flag(r, FLAG_ESTOPPED)
        start_ok = cleared and not _refused(r.start_motors)
        r.stop()
        return CheckResult.of(
            "estop",
            [
                Figure("START while latched", _word(start_refused), "refused", start_refused),
                Figure(
                    "setpoint while latched", _word(setpoint_refused), "refused", setpoint_refused
                ),
                Figure(
                    "START after a STOP, 0.3 s on", _word(still_refused), "refused", still_refused
                ),
                Figure("latched flag after 0.3 s", "set" if latched else "clear", "set", latched),
                Figure(
                    "after CLEAR_EMERGENCY_STOP",
                    "cleared" if start_ok else "not cleared",
                    "cleared, START accepted",
                    start_ok,
                ),
            ],
        )

    def range_check(self) -> CheckResult:
        figures = []
        for rev_s in (30.0, -1.0):
            msg = SetLegVelocity.from_rev_s(rev_s, rev_s)
            refused = _refused(partial(self.robot.request, msg))
            figures.append(Figure(f"setpoint {rev_s:g} rev/s", _word(refused), "refused", refused))
        self.robot.stop()
        return CheckResult.of("range", figures)

    # -- helpers -------------------------------------------------------------------------

    def _count_and_latest(self) -> tuple[int, Stamped[Telemetry] | None]:
        """The telemetry count and the newest sample, read consistently (the reader
        thread updates both at once)."""
        while True:
            n = self.robot.telemetry_count
            tel = self.robot.latest_telemetry()
            if self.robot.telemetry_count == n:
                return n, tel

    def _measure_drive(self) -> _Drive | str:
        """Drives at the setpoint once (for the setpoint and encoder checks): 0.5 s spin-up,
        then the telemetry a second apart; a string says why there is no measurement."""
        if self._drive is None:
            target = self.settings.leg_rev_s
            self.robot.set_command_timeout(self.settings.timeout_ms)
            self.robot.start_motors()
            self._drive_for(0.5, target)
            t0 = self.robot.latest_telemetry()
            self._drive_for(1.0, target)
            t1 = self.robot.latest_telemetry()
            self.robot.stop()
            if t0 is None or t1 is None:
                return "no telemetry while driving"
            if t1.value.timestamp_us == t0.value.timestamp_us:
                return "the telemetry clock did not advance while driving"
            self._drive = _Drive(t0, t1)
        return self._drive

    def _drive_for(self, seconds: float, rev_s: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.robot.set_leg_velocity(rev_s, rev_s)
            time.sleep(0.05)

    def all(self) -> list[tuple[str, Check]]:
        return [
            ("handshake", self.handshake),
            ("telemetry", self.telemetry),
            ("pose", self.pose),
            ("setpoint", self.setpoint),
            ("encoder", self.encoder),
            ("command_timeout", self.command_timeout),
            ("estop", self.estop),
            ("range", self.range_check),
        ]


def _refused(fn: Callable[[], object]) -> bool:
    try:
        fn()
    except ProtocolError:
        return True
    return False


def _word(refused: bool) -> str:
    return "refused" if refused else "accepted"


def _flag(robot: SerialRobot, flag: int) -> bool:
    tel = robot.latest_telemetry()
    return tel is not None and bool(tel.status_flags & flag)


def run_checks(
    robot: SerialRobot, settings: HilSettings, extra: list[tuple[str, Check]] | None = None
) -> Iterator[CheckResult]:
    """Each check in the order of ``Checks.all`` (then ``extra``), the motors stopped
    after each; a RoachError fails its check, and a failed handshake ends the run."""
    checks = Checks(robot, settings)
    for name, fn in [*checks.all(), *(extra or [])]:
        try:
            result = fn()
        except RoachError as exc:
            result = CheckResult.of(name, [], str(exc))
        finally:
            robot.stop()
        yield result
        if name == "handshake" and not result.ok:
            return
