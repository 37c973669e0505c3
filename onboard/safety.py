"""The tick's go/no-go decisions, as pure functions of what the tick read.

A tick drives the robot only when its inputs are fresh and finite; otherwise it commands
a stop and counts an event of one of the kinds below. Nothing here does I/O, so the
decisions are unit-tested without a robot.
"""

from __future__ import annotations

import math

import numpy as np

from firmware_bridge.messages import FLAG_ESTOPPED, FLAG_MOTORS_ON
from firmware_bridge.records import Pose, Telemetry
from firmware_bridge.robot import Stamped

# Event kinds (docs/log-format.md lists them with their meaning).
NO_TELEMETRY = "no_telemetry"
STALE_TELEMETRY = "stale_telemetry"
NO_POSE = "no_pose"
STALE_POSE = "stale_pose"
NAN_POSE = "nan_pose"
NAN_STATE = "nan_state"
NAN_ACTION = "nan_action"
CONTROLLER_ERROR = "controller_error"
OVERRUN = "overrun"
ADAPT_FALLBACK = "adapt_fallback"
ADAPT_CHANGE = "adapt_change"
"""The adaptation's change rule tripped: the window restarts at the change (plans on)."""
WATCHDOG_STOP = "robot_stopped"
"""The board's motors are off while the loop drives (its watchdog tripped, or a
START_MOTORS did not take): stop, then the next good tick starts them again."""
ESTOPPED = "robot_estopped"
"""The board's emergency stop is latched: the episode ends (never restarted by the loop)."""

STOP_EVENTS = (
    NO_TELEMETRY,
    STALE_TELEMETRY,
    NO_POSE,
    STALE_POSE,
    NAN_POSE,
    NAN_STATE,
    NAN_ACTION,
    CONTROLLER_ERROR,
    WATCHDOG_STOP,
    ESTOPPED,
)
"""Events after which the tick commands a stop."""


def input_fault(
    now_s: float,
    telemetry: Stamped[Telemetry] | None,
    pose: Stamped[Pose] | None,
    telemetry_stale_s: float,
    pose_stale_s: float,
    prev_telemetry_us: int | None = None,
    prev_pose_us: int | None = None,
    received_after_s: float | None = None,
) -> str | None:
    """Why this tick's inputs cannot be used, or None if they can.

    Args:
        now_s: the tick's ``time.monotonic()``.
        telemetry, pose: the newest records and their arrival times.
        telemetry_stale_s, pose_stale_s: maximum age, seconds, by this computer's clock.
        prev_telemetry_us, prev_pose_us: the previous tick's record timestamps; a record
            with the same timestamp is stale whatever its age (lockstep mode).
        received_after_s: a record that arrived before this monotonic time is stale
            (lockstep mode: the sample must answer the last command sent, not an older one).
    """
    if telemetry is None:
        return NO_TELEMETRY
    if (
        now_s - telemetry.received_monotonic_s > telemetry_stale_s
        or telemetry.value.timestamp_us == prev_telemetry_us
        or (received_after_s is not None and telemetry.received_monotonic_s < received_after_s)
    ):
        return STALE_TELEMETRY
    if pose is None:
        return NO_POSE
    p = pose.value
    if not all(math.isfinite(v) for v in (p.x, p.y, p.z, p.roll, p.pitch, p.yaw)):
        return NAN_POSE
    if (
        now_s - pose.received_monotonic_s > pose_stale_s
        or p.timestamp_us == prev_pose_us
        or (received_after_s is not None and pose.received_monotonic_s < received_after_s)
    ):
        return STALE_POSE
    return None


def state_fault(state: np.ndarray) -> str | None:
    """NAN_STATE if any of the 24 numbers is not finite."""
    return None if bool(np.isfinite(state).all()) else NAN_STATE


def action_fault(action: np.ndarray, best_cost: float = 0.0) -> str | None:
    """NAN_ACTION if the planned action (2,) or the plan's best cost is not finite (no
    candidate had a finite cost: there is no plan). Bounds are enforced by clipping."""
    ok = bool(np.isfinite(action).all()) and math.isfinite(best_cost)
    return None if ok else NAN_ACTION


def board_fault(
    flags: int,
    motors_expected_on: bool,
    start_confirmed: bool,
    since_start_s: float,
    confirm_s: float,
) -> str | None:
    """What the board's telemetry status flags say against what the loop commanded.

    Args:
        flags: the telemetry's status byte (firmware_bridge.messages FLAG_*).
        motors_expected_on: the loop sent START_MOTORS (and no stop since) before this
            sample arrived.
        start_confirmed: a sample since that START_MOTORS showed the motors on.
        since_start_s: how long after START_MOTORS was sent this sample arrived, s.
        confirm_s: samples in flight when START_MOTORS was sent still show the motors
            off; until one shows them on, motors off counts only after this long.

    ESTOPPED if the emergency stop is latched; WATCHDOG_STOP if the motors should be on
    and are off (watchdog trip, board reset, a lost START_MOTORS); else None.
    """
    if flags & FLAG_ESTOPPED:
        return ESTOPPED
    if (
        motors_expected_on
        and not flags & FLAG_MOTORS_ON
        and (start_confirmed or since_start_s > confirm_s)
    ):
        return WATCHDOG_STOP
    return None


def next_deadline(deadline_s: float, period_s: float, now_s: float) -> tuple[float, int]:
    """The next tick's deadline on the fixed grid, and how many grid slots were missed.

    A tick that ends after its successor's deadline starts the successor at once; a tick
    that ran over several periods skips the missed slots instead of bursting through them.
    """
    nxt = deadline_s + period_s
    if now_s <= nxt:
        return nxt, 0
    missed = int((now_s - nxt) // period_s)
    return nxt + missed * period_s, missed
