"""The fake firmware's state machine on the real simulator, without the pty."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_bridge.fake.firmware import FakeFirmware
from firmware_bridge.frame import FrameDecoder, encode_frame
from firmware_bridge.messages import (
    COMMAND_TYPES,
    FLAG_MOTORS_ON,
    FLAG_WATCHDOG_TRIPPED,
    Ack,
    Nack,
    PoseMsg,
    SetCommandTimeout,
    SetLegVelocity,
    SetPidGains,
    StartMotors,
    StartTelemetry,
    TelemetryMsg,
    decode_message,
    encode_message,
)

SimRobot = pytest.importorskip("firmware_bridge.sim.robot").SimRobot


@pytest.fixture(scope="module")
def sim():
    return SimRobot(seed=0)


def _replies(data: bytes) -> list:
    return [decode_message(f) for f in FrameDecoder().feed(data)]


command = st.tuples(
    st.sampled_from([*sorted(COMMAND_TYPES), 0x03, 0x7F]),
    st.binary(max_size=24),
)


@given(st.lists(command, max_size=12))
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_every_command_gets_exactly_one_answer(sim, commands):
    """Any command sequence, malformed or not, gets one in-order answer per command."""
    sim.reset(seed=0)
    fw = FakeFirmware(sim, lockstep=True)
    wire = b"".join(encode_frame(t, i, p) for i, (t, p) in enumerate(commands))
    replies = [m for m in _replies(fw.receive(wire)) if not isinstance(m, TelemetryMsg | PoseMsg)]
    assert [r.request_seq for r in replies] == list(range(len(commands)))  # type: ignore[attr-defined]


def test_watchdog_trips_at_exactly_the_timeout(sim):
    """Realtime board clock: the drive stops at last command + timeout, to the millisecond."""
    sim.reset(seed=0)
    fw = FakeFirmware(sim, lockstep=False)
    cmds = [SetCommandTimeout(120), StartTelemetry(100), StartMotors()]
    fw.receive(b"".join(encode_message(m, i) for i, m in enumerate(cmds)))
    fw.advance_to(37)
    fw.receive(encode_message(SetLegVelocity.from_rev_s(5, 5), 3))
    out = _replies(fw.advance_to(500))
    assert fw.watchdog_trips == [(0.037, 0.157)]
    flags = [m.flags for m in out if isinstance(m, TelemetryMsg)]
    assert flags[0] & FLAG_MOTORS_ON and flags[-1] & FLAG_WATCHDOG_TRIPPED
    assert not flags[-1] & FLAG_MOTORS_ON


def test_lockstep_step_order_and_timestamps(sim):
    """Lockstep: ACK, then one TELEMETRY and one POSE stamped 0.1 s later, per setpoint."""
    sim.reset(seed=0)
    fw = FakeFirmware(sim, lockstep=True)
    fw.receive(encode_message(StartTelemetry(7), 0) + encode_message(StartMotors(), 1))
    for k in range(3):
        out = _replies(fw.receive(encode_message(SetLegVelocity(5000, 5000), 2 + k)))
        assert [type(m) for m in out] == [Ack, TelemetryMsg, PoseMsg]
        assert out[1].record.timestamp_us == out[2].pose.timestamp_us == 100_000 * (k + 1)
    out = _replies(fw.receive(encode_message(SetLegVelocity(-1, 5000), 9)))
    assert isinstance(out[0], Nack) and out[1].record.timestamp_us == 400_000


def test_pid_gains_apply_per_side(sim):
    """SET_PID_GAINS sets each side's own gains: zero right gains leave the right legs still."""
    sim.reset(seed=0)
    fw = FakeFirmware(sim, lockstep=True)
    gains = SetPidGains(1500, 300, 80, 7, 9, 0, 0, 0, 7, 9)
    cmds = [gains, StartTelemetry(10), StartMotors()]
    out = _replies(fw.receive(b"".join(encode_message(m, i) for i, m in enumerate(cmds))))
    assert [type(m) for m in out] == [Ack, Ack, Ack]
    assert sim.pid_gains == ((1500.0, 300.0, 80.0), (0.0, 0.0, 0.0))
    start = sim.telemetry()
    for k in range(3):
        out = _replies(fw.receive(encode_message(SetLegVelocity(6000, 6000), 3 + k)))
    tel = out[1].record
    assert tel.right_duty == 0 and tel.left_duty != 0
    left_turned = abs(tel.left_pos - start.left_pos)
    assert left_turned > 0.5 * 2**16  # over half a turn in 0.3 s
    # The undriven right legs only get pushed about by the body and the ground.
    assert abs(tel.right_pos - start.right_pos) < 0.2 * left_turned
