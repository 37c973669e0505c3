"""The C board's rules tick by tick: watchdog, e-stop latch, NACKs, clamping, telemetry."""

from __future__ import annotations

import pytest
from c_board_helpers import Bench

from firmware_bridge.fake.firmware import telemetry_due_ms
from firmware_bridge.frame import encode_frame
from firmware_bridge.messages import (
    ERR_ESTOPPED,
    ERR_MALFORMED,
    ERR_OUT_OF_RANGE,
    ERR_UNKNOWN_TYPE,
    FLAG_ESTOPPED,
    FLAG_MOTORS_ON,
    FLAG_OPEN_LOOP,
    FLAG_WATCHDOG_TRIPPED,
    Ack,
    ClearEmergencyStop,
    EmergencyStop,
    GetStatus,
    Hello,
    HelloReply,
    Nack,
    SetCommandTimeout,
    SetDuty,
    SetLegVelocity,
    StartMotors,
    StartTelemetry,
    Status,
    StopMotors,
    TelemetryMsg,
    ZeroEncoders,
)


def status(bench: Bench) -> Status:
    (reply,) = bench.send(GetStatus())
    assert isinstance(reply, Status)
    return reply


def test_hello_names_the_board(board_lib):
    """HELLO is answered by HELLO_REPLY with the protocol version and the port's identity."""
    (reply,) = Bench().send(Hello())
    assert isinstance(reply, HelloReply)
    assert (reply.protocol_version, reply.device_id, reply.name) == (1, 7, b"bench")
    assert reply.request_seq == 1


@pytest.mark.parametrize("timeout_ms", [10, 37, 250])
def test_watchdog_trips_at_exactly_the_timeout_tick(board_lib, timeout_ms):
    """With the motors on and no command, the drive stops at the tick last_command +
    timeout, not one tick earlier; STATUS shows both times timeout apart."""
    b = Bench()
    b.send(SetCommandTimeout(timeout_ms))
    b.tick(5)
    b.send(StartMotors())  # feeds the watchdog at t = 5 ms
    b.tick(3)
    b.send(SetLegVelocity(4000, 4000))  # t = 8 ms
    b.tick(timeout_ms - 1)
    s = status(b)
    assert s.flags & FLAG_MOTORS_ON and not s.flags & FLAG_WATCHDOG_TRIPPED
    assert b.board.duty != (0, 0)
    b.tick(1)
    s = status(b)
    assert s.flags & FLAG_WATCHDOG_TRIPPED and not s.flags & FLAG_MOTORS_ON
    assert b.board.duty == (0, 0)
    assert s.last_command_us == 8000
    assert s.watchdog_trip_us - s.last_command_us == timeout_ms * 1000
    assert s.watchdog_trips == 1


def test_setpoints_while_tripped_are_stored_and_start_motors_clears(board_lib):
    """After a trip, SET_LEG_VELOCITY is ACKed but the drive stays off until START_MOTORS,
    which clears the flag and feeds the watchdog."""
    b = Bench()
    b.send(SetCommandTimeout(10))
    b.send(StartMotors())
    b.tick(10)
    assert status(b).flags & FLAG_WATCHDOG_TRIPPED
    assert isinstance(b.send(SetLegVelocity(5000, 5000))[0], Ack)
    b.tick(2)
    assert b.board.duty == (0, 0)
    b.send(StartMotors())
    s = status(b)
    assert s.flags & FLAG_MOTORS_ON and not s.flags & FLAG_WATCHDOG_TRIPPED
    assert s.last_command_us == 12000
    b.tick(1)
    assert b.board.duty[0] > 0


def test_nacked_command_does_not_feed_the_watchdog(board_lib):
    """An out-of-range setpoint is NACKed and leaves last_command_us where it was."""
    b = Bench()
    b.send(StartMotors())
    b.tick(4)
    (nack,) = b.send(SetLegVelocity(25000, 3000))
    assert isinstance(nack, Nack) and nack.error == ERR_OUT_OF_RANGE
    assert status(b).last_command_us == 0


def test_estop_latches_and_refuses_motion_until_cleared(board_lib):
    """E-stop stops the drive within the tick; motion commands are NACKed `emergency stop
    latched` (before their range check) until CLEAR, after which motors stay off."""
    b = Bench()
    b.send(StartMotors())
    b.tick(2)
    assert b.board.duty != (0, 0)
    b.send(EmergencyStop())
    b.tick(1)
    assert b.board.duty == (0, 0)
    for msg in (StartMotors(), SetLegVelocity(4000, 4000), SetDuty(3000, 0),
                SetDuty(5000, 0), SetLegVelocity(-1, 0)):  # fmt: skip
        (reply,) = b.send(msg)
        assert isinstance(reply, Nack) and reply.error == ERR_ESTOPPED, msg
    assert isinstance(b.send(SetCommandTimeout(5))[0], Nack)  # range, not e-stop
    assert status(b).flags & FLAG_ESTOPPED
    b.send(ClearEmergencyStop())
    s = status(b)
    assert not s.flags & (FLAG_ESTOPPED | FLAG_MOTORS_ON)
    assert isinstance(b.send(StartMotors())[0], Ack)


def test_nack_precedence_unknown_then_malformed(board_lib):
    """An unknown type is NACKed `unknown type`, a wrong length `malformed` even when the
    values would be out of range and the e-stop is latched."""
    b = Bench()
    b.send(EmergencyStop())
    b.board.receive(encode_frame(0x55, 100, b""))
    b.board.receive(encode_frame(0x10, 101, b"\xff\xff\xff"))
    unknown, malformed = b.output()
    assert isinstance(unknown, Nack) and unknown.error == ERR_UNKNOWN_TYPE
    assert isinstance(malformed, Nack) and malformed.error == ERR_MALFORMED
    assert (malformed.request_seq, malformed.request_type) == (101, 0x10)


def test_setpoints_are_clamped_to_the_operating_range(board_lib):
    """0 and 20 rev/s are accepted and drive the reference at 2 and 9 rev/s."""
    b = Bench()
    b.send(SetCommandTimeout(10_000))
    b.send(SetLegVelocity(0, 20000))
    b.send(StartMotors())
    b.tick(1000)
    msgs = b.send(StartTelemetry(1000))
    tel = next(m for m in msgs if isinstance(m, TelemetryMsg)).record
    # The encoders did not move: the reference ran ahead at the clamped rates for 1 s.
    assert tel.left_cmd == pytest.approx(2 * 65536, abs=70)
    assert tel.right_cmd == pytest.approx(9 * 65536, abs=600)
    assert tel.left_duty == 4000 and tel.right_duty == 4000


def test_open_loop_duty_is_stored_while_off_and_applied_by_start(board_lib):
    """SET_DUTY with the drive off is ACKed and stored; START_MOTORS drives it."""
    b = Bench()
    b.send(SetDuty(1500, -1200))
    b.tick(2)
    assert b.board.duty == (0, 0)
    b.send(StartMotors())
    b.tick(1)
    assert b.board.duty == (1500, -1200)
    assert status(b).flags & FLAG_OPEN_LOOP
    b.send(StopMotors())
    b.tick(1)
    assert b.board.duty == (0, 0)


def test_zero_encoders_moves_the_reference_too(board_lib):
    """After ZERO_ENCODERS positions read 0 and the commanded position keeps its error."""
    b = Bench(encoders=(50_000, -20_000))
    b.send(StartMotors())
    b.tick(100)
    before = next(m for m in b.send(StartTelemetry(1000)) if isinstance(m, TelemetryMsg)).record
    b.send(ZeroEncoders())
    after = next(m for m in b.tick(1) if isinstance(m, TelemetryMsg)).record
    assert (after.left_pos, after.right_pos) == (0, 0)
    assert after.left_cmd == pytest.approx(before.left_cmd - before.left_pos, abs=140)
    assert after.left_duty == pytest.approx(before.left_duty, abs=60)


@pytest.mark.parametrize("rate_hz", [1000, 400, 150, 333, 7])
def test_telemetry_follows_start_plus_rounded_n_periods(board_lib, rate_hz):
    """Sample n leaves at start + round(n x 1000 / rate) ms (the Python fake's schedule),
    so the mean rate over whole seconds is exactly the asked one."""
    b = Bench()
    b.tick(3)
    msgs = b.send(StartTelemetry(rate_hz))
    times = [m.record.timestamp_us // 1000 for m in msgs if isinstance(m, TelemetryMsg)]
    for _ in range(2000):
        times += [m.record.timestamp_us // 1000 for m in b.tick() if isinstance(m, TelemetryMsg)]
    expected = [telemetry_due_ms(3, n, rate_hz) for n in range(len(times))]
    assert times == expected
    assert sum(1 for t in times if 3 <= t < 1003) == rate_hz
    assert status(b).telemetry_rate_hz == rate_hz


@pytest.mark.parametrize("rate_hz", [400, 150])
def test_python_fake_keeps_the_same_schedule(rate_hz):
    """The Python fake sends sample n at start + round(n x 1000 / rate) ms too: 400 Hz is
    400 samples a second (not 500), 150 Hz is 150 (not 142.9)."""
    from firmware_bridge.fake.firmware import FakeFirmware
    from firmware_bridge.frame import FrameDecoder
    from firmware_bridge.messages import REPLY_TYPES, decode_message, encode_message
    from firmware_bridge.sim.robot import SimRobot

    fw = FakeFirmware(SimRobot("", seed=0), lockstep=False)
    dec = FrameDecoder(REPLY_TYPES)
    fw.advance_to(3)
    out = fw.receive(encode_message(StartTelemetry(rate_hz), 1)) + fw.advance_to(1003)
    msgs = [decode_message(f) for f in dec.feed(out)]
    times = [m.record.timestamp_us // 1000 for m in msgs if isinstance(m, TelemetryMsg)]
    assert times == [telemetry_due_ms(3, n, rate_hz) for n in range(len(times))]
    assert sum(1 for t in times if t < 1003) == rate_hz
