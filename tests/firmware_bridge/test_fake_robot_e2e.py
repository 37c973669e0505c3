"""End to end: SerialRobot -> pyserial -> pty -> `roach sim` -> MuJoCo, and back."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from typing import ClassVar

import pytest
from fake_robot_helpers import REPO, start_fake, stop_fake

from firmware_bridge.messages import (
    FLAG_ESTOPPED,
    FLAG_MOTORS_ON,
    FLAG_WATCHDOG_TRIPPED,
    Message,
    SetLegVelocity,
)
from firmware_bridge.records import ENCODER_COUNTS_PER_REV
from firmware_bridge.serial_robot import SerialRobot
from robot_contract.errors import LinkError, ProtocolError

pytestmark = pytest.mark.timeout(60)


def _lockstep_run(steps: int, left: float, right: float, *args: str) -> list:
    """Drives a lockstep fake for `steps` control periods; returns (telemetry, pose) pairs."""
    proc, path = start_fake("--clock", "lockstep", *args)
    pairs = []
    try:
        with SerialRobot(path) as robot:
            info = robot.hello()
            assert info["protocol_version"] == 1 and info["name"] == "sim-lockstep"
            robot.start_telemetry(10)
            robot.start_motors()
            for _ in range(steps):
                t = time.monotonic()
                robot.set_leg_velocity(left, right)
                assert robot.wait_for_sample(t, 5.0)
                tel, pose = robot.latest_telemetry(), robot.latest_pose()
                assert tel is not None and pose is not None
                pairs.append((tel.value, pose.value, tel.status_flags))
    finally:
        stop_fake(proc)
    return pairs


def test_lockstep_robot_moves_as_commanded_and_repeats_exactly():
    """Lockstep: +0.1 s pair per setpoint, legs at setpoint, body moves, seed-repeatable."""
    pairs = _lockstep_run(20, 5.0, 5.0)
    stamps = [tel.timestamp_us for tel, _, _ in pairs]
    assert stamps == [100_000 * (i + 1) for i in range(20)]
    assert all(pose.timestamp_us == tel.timestamp_us for tel, pose, _ in pairs)
    assert all(flags & FLAG_MOTORS_ON for _, _, flags in pairs)
    # Leg rate over the last second, once the PID has settled.
    first, last = pairs[9][0], pairs[19][0]
    for side in ("left_pos", "right_pos"):
        rate = (getattr(last, side) - getattr(first, side)) / ENCODER_COUNTS_PER_REV / 1.0
        assert 4.0 < rate < 6.0, (side, rate)
    assert pairs[-1][1].x - pairs[0][1].x > 0.2
    assert _lockstep_run(20, 5.0, 5.0) == pairs
    assert _lockstep_run(5, 5.0, 5.0, "--seed", "1") != pairs[:5]
    assert _lockstep_run(5, 5.0, 5.0, "--condition", "terrain=turf") != pairs[:5]


def test_setpoints_are_clamped_and_bad_commands_nacked():
    """Setpoints above 9 rev/s run at 9; insane, malformed and unknown commands are NACKed."""
    proc, path = start_fake("--clock", "lockstep")
    try:
        with SerialRobot(path) as robot:
            robot.start_telemetry(10)
            robot.start_motors()
            for bad in ((25.0, 5.0), (-1.0, 5.0)):
                with pytest.raises(ProtocolError, match="out of range"):
                    robot.request(SetLegVelocity.from_rev_s(*bad))
            with pytest.raises(ProtocolError, match="unknown type"):
                robot.request(_UnknownCommand())
            with pytest.raises(ProtocolError, match="malformed"):
                robot.request(_ShortSetLegVelocity(1, 2, 3))
            with pytest.raises(ProtocolError, match="out of range"):
                robot.set_command_timeout(5)
            tels = []
            for _ in range(20):
                t = time.monotonic()
                robot.set_leg_velocity(12.0, 12.0)
                assert robot.wait_for_sample(t, 5.0)
                tels.append(robot.latest_telemetry().value)  # type: ignore[union-attr]
            rate = (tels[19].left_pos - tels[9].left_pos) / ENCODER_COUNTS_PER_REV
            assert 7.5 < rate < 10.0, rate
            assert robot.counters()["nacks"] == 5
    finally:
        stop_fake(proc)


def test_emergency_stop_latches_until_cleared():
    """E-stop stops the motors, refuses motion commands until cleared, and shows in telemetry."""
    proc, path = start_fake("--clock", "lockstep")
    try:
        with SerialRobot(path) as robot:
            robot.start_telemetry(10)
            robot.start_motors()
            robot.emergency_stop()
            with pytest.raises(ProtocolError, match="emergency stop latched"):
                robot.start_motors()
            with pytest.raises(ProtocolError, match="emergency stop latched"):
                robot.request(SetLegVelocity.from_rev_s(5.0, 5.0))
            tel = robot.latest_telemetry()
            assert tel is not None
            assert tel.status_flags & FLAG_ESTOPPED and not tel.status_flags & FLAG_MOTORS_ON
            robot.clear_emergency_stop()
            assert not robot.status().flags & FLAG_MOTORS_ON  # stays off until started
            robot.start_motors()
            assert robot.status().flags & FLAG_MOTORS_ON
    finally:
        stop_fake(proc)


def _assert_watchdog_tripped(robot: SerialRobot, timeout_ms: int) -> None:
    status = robot.status()
    assert status.flags & FLAG_WATCHDOG_TRIPPED and not status.flags & FLAG_MOTORS_ON
    assert status.watchdog_trips == 1
    waited_ms = (status.watchdog_trip_us - status.last_command_us) / 1000
    assert timeout_ms <= waited_ms <= timeout_ms + 5, waited_ms
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:  # the newest telemetry says so too
        tel = robot.latest_telemetry()
        if tel is not None and tel.value.timestamp_us > status.watchdog_trip_us:
            break
        time.sleep(0.01)
    assert tel is not None and tel.status_flags & FLAG_WATCHDOG_TRIPPED
    assert tel.value.left_duty == 0 and tel.value.right_duty == 0


def test_watchdog_stops_motors_when_commands_stop():
    """Realtime: silence stops the motors within timeout + 5 ms sim time; telemetry says so."""
    proc, path = start_fake("--clock", "realtime")
    try:
        with SerialRobot(path) as robot:
            robot.set_command_timeout(250)
            robot.start_telemetry(100)
            robot.start_motors()
            for _ in range(10):
                robot.set_leg_velocity(6.0, 6.0)
                time.sleep(0.05)
            assert robot.status().flags & FLAG_MOTORS_ON
            time.sleep(0.6)
            _assert_watchdog_tripped(robot, 250)
        stats = stop_fake(proc)
        ((last_cmd_s, trip_s),) = stats["firmware"]["watchdog_trips"]
        assert 250 <= round((trip_s - last_cmd_s) * 1000) <= 255
    finally:
        if proc.poll() is None:
            proc.kill()


_CLIENT = textwrap.dedent(
    """
    import sys, time
    from firmware_bridge.serial_robot import SerialRobot
    robot = SerialRobot(sys.argv[1])
    robot.set_command_timeout(200)
    robot.start_telemetry(50)
    robot.start_motors()
    print("ready", flush=True)
    while True:
        robot.set_leg_velocity(6.0, 6.0)
        time.sleep(0.05)
    """
)


def test_watchdog_trips_when_sending_process_is_paused():
    """Pausing the commanding process with SIGSTOP trips the watchdog within timeout + 5 ms."""
    proc, path = start_fake("--clock", "realtime")
    client = subprocess.Popen(
        [sys.executable, "-c", _CLIENT, path], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert client.stdout is not None and client.stdout.readline().strip() == "ready"
        time.sleep(0.4)
        client.send_signal(signal.SIGSTOP)
        time.sleep(0.6)
        # The paused client still holds the port; a second opener reads what it cannot.
        with SerialRobot(path) as robot:
            _assert_watchdog_tripped(robot, 200)
    finally:
        client.kill()
        client.wait(timeout=10)
        stop_fake(proc)


FAULTS = "corrupt=0.01,drop=0.05,delay_ms=30,jitter_ms=20"


def _fault_run(tmp_path, seconds: float, cuts: list[tuple[float, float]], rate_hz: int) -> None:
    link = str(tmp_path / "robot")
    spec = ",".join([FAULTS, *(f"disconnect_at={at}:{dur}" for at, dur in cuts)])
    proc, _ = start_fake("--link", link, "--faults", spec, "--seed", "3")
    robot = SerialRobot(link)
    try:
        robot.hello(timeout_s=2.0)
        robot.set_command_timeout(10_000)  # the cuts are not what this test is about
        robot.start_telemetry(rate_hz)
        robot.start_motors()
        t0 = time.monotonic()
        was_down = False
        while time.monotonic() - t0 < seconds:
            robot.set_leg_velocity(5.0, 5.0)
            was_down |= not robot.connected
            time.sleep(0.05)
        tel = robot.latest_telemetry()
        assert was_down == bool(cuts) and robot.connected
        assert tel is not None and time.monotonic() - tel.received_monotonic_s < 0.5
        assert robot.status().flags & FLAG_MOTORS_ON  # a round trip on the new line
    finally:
        stats = stop_fake(proc)
        time.sleep(0.2)  # let the last bytes in flight arrive
        c = robot.counters()
        robot.close()
    assert c["reconnects"] == len(cuts) and stats["disconnects"] == len(cuts)
    tx, rx = stats["faults_robot_to_host"], stats["faults_host_to_robot"]
    n = tx["frames"]
    assert n > 0.6 * 2 * rate_hz * (seconds - sum(d for _, d in cuts))
    assert c["telemetry"] > 0.8 * n / 2
    # Injected rates near the configured ones (binomial, 5 sigma).
    for key, p in (("dropped", 0.05), ("corrupted", 0.01)):
        assert abs(tx[key] - p * n) < 5 * (n * p * (1 - p)) ** 0.5 + 1, (key, tx[key], n)
    # Every corrupted frame is caught by exactly one check; frames in flight at a cut or
    # at the end are lost unseen, hence the small slack.
    slack = 3 * (len(cuts) + 1)
    observed_bad = c["bad_crc"] + c["cobs_errors"] + c["runts"]
    assert tx["corrupted"] - slack <= observed_bad <= tx["corrupted"]
    lost = tx["dropped"] + tx["corrupted"]
    assert lost - 5 * slack <= c["frames_missed"] <= lost
    fw_rx = stats["firmware"]["rx"]
    fw_bad = fw_rx["bad_crc"] + fw_rx["cobs_errors"] + fw_rx["runts"]
    assert rx["corrupted"] - len(cuts) - 1 <= fw_bad <= rx["corrupted"]


def test_faults_counted_and_link_reconnects_after_disconnect(tmp_path):
    """Under the README's fault example telemetry flows, counters match, the port reconnects."""
    _fault_run(tmp_path, 6.0, [(2.5, 1.0)], 250)


@pytest.mark.slow
@pytest.mark.timeout(200)
def test_faults_soak(tmp_path):
    """The same as the fault test over 60 s at 500 Hz with three cuts."""
    _fault_run(tmp_path, 60.0, [(10.0, 1.0), (25.0, 2.0), (40.0, 0.5)], 500)


def test_missing_port_is_one_line_link_error():
    """Opening a port that does not exist raises LinkError naming the port."""
    with pytest.raises(LinkError, match="/dev/does-not-exist") as info:
        SerialRobot("/dev/does-not-exist")
    assert "\n" not in str(info.value)


def test_sigint_exits_cleanly_with_stats(tmp_path):
    """SIGINT ends `roach sim` with status 0 and its stats line, and removes the link."""
    link = tmp_path / "robot"
    proc, path = start_fake("--clock", "lockstep", "--link", str(link))
    assert os.path.realpath(link) == path
    stats = stop_fake(proc, signal.SIGINT)
    assert stats["firmware"]["sim_time_s"] == 0.0
    assert not os.path.lexists(link)


@dataclass(frozen=True, slots=True)
class _UnknownCommand(Message):
    TYPE: ClassVar[int] = 0x7E
    STRUCT: ClassVar[struct.Struct] = struct.Struct("<")


@dataclass(frozen=True, slots=True)
class _ShortSetLegVelocity(Message):
    TYPE: ClassVar[int] = SetLegVelocity.TYPE
    STRUCT: ClassVar[struct.Struct] = struct.Struct("<3B")
    a: int
    b: int
    c: int
