"""The tick's go/no-go decisions and the deadline grid, as pure functions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from firmware_bridge.records import Pose, Telemetry
from firmware_bridge.robot import Stamped
from onboard import safety

NOW = 100.0


def _tel(age_s: float = 0.01, ts: int = 1000) -> Stamped[Telemetry]:
    t = Telemetry(1, ts, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3900)
    return Stamped(t, NOW - age_s)


def _pose(age_s: float = 0.01, ts: int = 1000, x: float = 0.0) -> Stamped[Pose]:
    return Stamped(Pose(x, 0.0, 0.02, 0.0, 0.0, 0.0, ts), NOW - age_s)


def _fault(tel, pose, prev_tel=None, prev_pose=None):  # type: ignore[no-untyped-def]
    return safety.input_fault(NOW, tel, pose, 0.25, 0.25, prev_tel, prev_pose)


def test_fresh_finite_inputs_pass() -> None:
    """Fresh telemetry and pose give no fault."""
    assert _fault(_tel(), _pose()) is None


@pytest.mark.parametrize(
    ("tel", "pose", "expected"),
    [
        (None, _pose(), safety.NO_TELEMETRY),
        (_tel(age_s=0.3), _pose(), safety.STALE_TELEMETRY),
        (_tel(), None, safety.NO_POSE),
        (_tel(), _pose(age_s=0.3), safety.STALE_POSE),
        (_tel(), _pose(x=math.nan), safety.NAN_POSE),
        (_tel(), _pose(x=math.inf), safety.NAN_POSE),
    ],
)
def test_missing_stale_or_nan_inputs_are_faults(tel, pose, expected) -> None:  # type: ignore[no-untyped-def]
    """Missing, stale (older than the limit) or non-finite inputs each name their fault."""
    assert _fault(tel, pose) == expected
    assert expected in safety.STOP_EVENTS


def test_lockstep_staleness_is_by_sample_not_by_age() -> None:
    """With the previous tick's timestamps given, a repeated sample is stale however young."""
    assert _fault(_tel(ts=5), _pose(ts=5), prev_tel=5, prev_pose=4) == safety.STALE_TELEMETRY
    assert _fault(_tel(ts=6), _pose(ts=5), prev_tel=5, prev_pose=5) == safety.STALE_POSE
    assert _fault(_tel(ts=6), _pose(ts=6), prev_tel=5, prev_pose=5) is None


def test_lockstep_sample_must_arrive_after_the_last_command() -> None:
    """A new sample that arrived before the last command was sent answers an older
    command: stale."""
    sent = NOW - 0.02
    early = safety.input_fault(NOW, _tel(age_s=0.03), _pose(), 1.0, 1.0, None, None, sent)
    assert early == safety.STALE_TELEMETRY
    late_pose = safety.input_fault(NOW, _tel(), _pose(age_s=0.03), 1.0, 1.0, None, None, sent)
    assert late_pose == safety.STALE_POSE
    assert safety.input_fault(NOW, _tel(), _pose(), 1.0, 1.0, None, None, sent) is None


def test_nan_state_and_action_are_faults() -> None:
    """A state or planned action with any non-finite number is a fault; finite ones are not."""
    s = np.zeros(24)
    assert safety.state_fault(s) is None
    s[17] = np.nan
    assert safety.state_fault(s) == safety.NAN_STATE
    assert safety.action_fault(np.array([3.0, 4.0])) is None
    assert safety.action_fault(np.array([3.0, np.inf])) == safety.NAN_ACTION


def test_deadline_grid_and_missed_slots() -> None:
    """On time: next grid point. Late past the next deadline: start now, skip whole missed
    slots, stay on the grid."""
    assert safety.next_deadline(1.0, 0.1, 1.05) == (pytest.approx(1.1), 0)
    d, missed = safety.next_deadline(1.0, 0.1, 1.13)
    assert missed == 0 and d == pytest.approx(1.1)
    d, missed = safety.next_deadline(1.0, 0.1, 1.35)
    assert missed == 2 and d == pytest.approx(1.3)


def test_plan_without_finite_cost_is_a_fault() -> None:
    """A finite command from a plan whose best cost is inf or NaN is still a fault."""
    a = np.array([3.0, 4.0])
    assert safety.action_fault(a, 12.5) is None
    assert safety.action_fault(a, math.inf) == safety.NAN_ACTION
    assert safety.action_fault(a, math.nan) == safety.NAN_ACTION


ON, TRIPPED, ESTOP = 0x01 | 0x10, 0x02 | 0x10, 0x04 | 0x10


@pytest.mark.parametrize(
    ("flags", "expect_on", "confirmed", "since_s", "expected"),
    [
        (ON, True, True, 5.0, None),  # driving, board agrees
        (TRIPPED, True, True, 0.01, safety.WATCHDOG_STOP),  # ran, then the watchdog tripped
        (0x10, True, False, 0.05, None),  # a sample from before START_MOTORS took effect
        (0x10, True, False, 0.5, safety.WATCHDOG_STOP),  # START_MOTORS never took
        (TRIPPED, False, False, 9.0, None),  # the loop stopped the motors itself
        (ESTOP, False, False, 0.0, safety.ESTOPPED),  # a latched e-stop, whatever else
        (ESTOP | 0x01, True, True, 1.0, safety.ESTOPPED),
    ],
)
def test_board_flags_against_the_commanded_motors(
    flags: int, expect_on: bool, confirmed: bool, since_s: float, expected: str | None
) -> None:
    """Motors off while the loop drives is robot_stopped once the start was confirmed or
    the confirmation window passed; a latched e-stop is always robot_estopped."""
    fault = safety.board_fault(flags, expect_on, confirmed, since_s, confirm_s=0.3)
    assert fault == expected
    assert expected is None or expected in safety.STOP_EVENTS
