"""The one robot interface the controller sees.

Two implementations speak it at the byte level through the same codec and port code:
the serial link to the real motor board, and the same link pointed at the software
fake robot's pseudo-terminal (``roach sim``). Nothing skips the codec.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass
from typing import Generic, TypeVar

from firmware_bridge.records import Pose, Telemetry

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Stamped(Generic[T]):
    """A received record and when it arrived (``time.monotonic()`` of this computer)."""

    value: T
    received_monotonic_s: float
    status_flags: int = 0  # the telemetry message's status byte (see docs/protocol.md)
    latency_s: float | None = None
    """A pose's capture-to-arrival time where its source can tell (firmware_bridge/pose)."""


class Robot(abc.ABC):
    """What the control loop needs from a robot. Methods never block for long.

    Commands are sent without waiting for an ack unless the method says otherwise;
    ``latest_*`` return the newest record received so far (or None) and its arrival
    time, so the caller judges staleness against its own monotonic clock.
    """

    @abc.abstractmethod
    def hello(self, timeout_s: float = 1.0) -> dict[str, object]:
        """Who-am-I round trip: firmware and protocol version. Raises LinkError on timeout."""

    @abc.abstractmethod
    def set_command_timeout(self, timeout_ms: int) -> None:
        """Arm the board's watchdog: motors stop if no command arrives within timeout_ms."""

    @abc.abstractmethod
    def start_telemetry(self, rate_hz: float) -> None: ...

    @abc.abstractmethod
    def stop_telemetry(self) -> None: ...

    @abc.abstractmethod
    def start_motors(self) -> None: ...

    @abc.abstractmethod
    def set_leg_velocity(self, left_rev_s: float, right_rev_s: float) -> None:
        """Send the leg-velocity setpoints (leg revolutions per second). Also feeds the
        watchdog. In lockstep simulation this is what advances the simulated clock."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop the motors now (best effort, never raises on a dead link)."""

    @abc.abstractmethod
    def emergency_stop(self) -> None: ...

    @abc.abstractmethod
    def latest_telemetry(self) -> Stamped[Telemetry] | None: ...

    @abc.abstractmethod
    def latest_pose(self) -> Stamped[Pose] | None: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def pose_status(self) -> str:
        """What the pose source has received, one line for a "no pose" error ("": the
        link's own POSE frames)."""
        return ""

    def start_motors_nowait(self) -> None:
        """START_MOTORS without waiting for the answer (for the control tick; the
        telemetry's status flags say whether it took). Default: ``start_motors``."""
        self.start_motors()

    def stop_telemetry_nowait(self) -> None:
        """STOP_TELEMETRY without waiting for the answer (for shutdown on a link that may be
        dead). Default: ``stop_telemetry``."""
        self.stop_telemetry()

    def wait_for_sample(self, after_monotonic_s: float, timeout_s: float) -> bool:
        """Blocks until a pose arrives later than ``after_monotonic_s`` (True) or timeout_s
        passes (False). The pose closes each telemetry + pose pair (docs/protocol.md), so
        in lockstep simulation: note ``t = time.monotonic()``, send set_leg_velocity, then
        ``wait_for_sample(t, ...)`` returns once the end-of-period pair is in.
        Implementations may override this polling version with a notifying one."""
        deadline = time.monotonic() + timeout_s
        while True:
            pose = self.latest_pose()
            if pose is not None and pose.received_monotonic_s > after_monotonic_s:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.001)

    def __enter__(self) -> Robot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.close()
