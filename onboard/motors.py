"""What the loop believes of the robot's motors, held against what the board reports.

States: stopped -> started (START_MOTORS sent) -> confirmed (a sample since then showed
them on). The telemetry's status flags (docs/protocol.md) then decide:
- the emergency stop latched: stop, and the episode ends (only a person clears it);
- motors off while the loop drives (the board's watchdog tripped, the board reset, or a
  START_MOTORS did not take): stop; the next good tick starts them again.
Samples already in flight when START_MOTORS went out still show the motors off, so an
unconfirmed start counts as failed only once ``confirm_s`` has passed (the clock sets
it: a command timeout in realtime, 0 in lockstep, where each sample answers the
commands before it in order).
"""

from __future__ import annotations

import contextlib
import math
import time

from firmware_bridge.messages import FLAG_MOTORS_ON
from firmware_bridge.records import Telemetry
from firmware_bridge.robot import Robot, Stamped
from onboard import safety


class MotorSupervisor:
    """Starts and stops the robot's motors and checks the board's flags against them."""

    def __init__(self, robot: Robot, confirm_s: float) -> None:
        self.robot = robot
        self.confirm_s = confirm_s
        self.on = False
        """START_MOTORS was sent and no stop since (what the loop believes)."""
        self._confirmed = False
        self._start_sent_s = -math.inf

    def start(self) -> None:
        """START_MOTORS, waited for: a refusal (e.g. a latched e-stop) raises ProtocolError."""
        self.robot.start_motors()
        self._started()

    def ensure_on(self) -> None:
        """Before a command: START_MOTORS if they are off, not waited for (an ack round
        trip inside the tick would delay the command, and a refusal must not end the
        run; the telemetry flags say whether it took)."""
        if not self.on:
            self.robot.start_motors_nowait()
            self._started()

    def stop(self) -> None:
        """STOP_MOTORS now."""
        self.robot.stop()
        self.on = False

    def shutdown(self) -> None:
        """STOP_MOTORS without raising (the link may be dead)."""
        self.on = False
        with contextlib.suppress(Exception):
            self.robot.stop()

    def check(self, tel: Stamped[Telemetry]) -> str | None:
        """The board's flags against the motors the loop started: ESTOPPED,
        WATCHDOG_STOP or None (onboard.safety.board_fault)."""
        flags = tel.status_flags
        after_start = tel.received_monotonic_s >= self._start_sent_s
        if self.on and after_start and flags & FLAG_MOTORS_ON:
            self._confirmed = True
        return safety.board_fault(
            flags,
            self.on and after_start,
            self._confirmed,
            tel.received_monotonic_s - self._start_sent_s,
            self.confirm_s,
        )

    @staticmethod
    def ends_episode(fault: str) -> bool:
        """A latched emergency stop ends the episode; the loop never restarts after it."""
        return fault == safety.ESTOPPED

    def _started(self) -> None:
        self.on = True
        self._confirmed = False
        self._start_sent_s = time.monotonic()
