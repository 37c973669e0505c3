"""End to end with the C firmware in the loop: `roach sim --board c` on a real pty."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from firmware_bridge.fake.process import running_fake, stop_fake
from firmware_bridge.fake.process import start_fake as start
from firmware_bridge.messages import FLAG_MOTORS_ON, FLAG_WATCHDOG_TRIPPED
from firmware_bridge.records import ENCODER_COUNTS_PER_REV
from firmware_bridge.serial_robot import SerialRobot

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.timeout(120)


def test_hil_passes_against_the_c_board(board_lib, tmp_path):
    """`roach hil --port` passes every check against the realtime fake running the C
    board, and its command-timeout check finds the board's trip at the timeout, within
    one 1 ms tick (docs/protocol.md)."""
    link, out = tmp_path / "robot", tmp_path / "hil.json"
    with running_fake("--board", "c", "--clock", "realtime", "--link", str(link), cwd=str(REPO)):
        proc = subprocess.run(
            [sys.executable, "-m", "tools.cli", "hil", "--port", str(link), "--json", str(out)],
            cwd=REPO, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    assert report["passed"] and all(c["ok"] for c in report["checks"]), proc.stdout
    assert "'sim-c-realtime'" in proc.stdout
    timeout = next(c for c in report["checks"] if c["name"] == "command_timeout")
    stopped = next(f for f in timeout["figures"] if f["name"] == "motors stopped after")
    assert 250.0 <= stopped["value"] <= 251.0, stopped


def test_lockstep_c_board_moves_as_commanded_and_repeats_exactly(board_lib):
    """Lockstep with the C board: one pair per setpoint 0.1 s apart, legs at the setpoint,
    the robot moves, and the same commands give the same bytes."""

    def run() -> list:
        proc, path = start("--board", "c", "--clock", "lockstep", cwd=str(REPO))
        pairs = []
        try:
            with SerialRobot(path) as robot:
                assert robot.hello()["name"] == "sim-c-lockstep"
                robot.start_telemetry(10)
                robot.start_motors()
                for _ in range(15):
                    t = time.monotonic()
                    robot.set_leg_velocity(5.0, 5.0)
                    assert robot.wait_for_sample(t, 5.0)
                    tel, pose = robot.latest_telemetry(), robot.latest_pose()
                    assert tel is not None and pose is not None
                    pairs.append((tel.value, pose.value, tel.status_flags))
        finally:
            stop_fake(proc)
        return pairs

    pairs = run()
    assert [tel.timestamp_us for tel, _, _ in pairs] == [100_000 * (i + 1) for i in range(15)]
    assert all(flags & FLAG_MOTORS_ON for _, _, flags in pairs)
    first, last = pairs[4][0], pairs[14][0]
    rate = (last.left_pos - first.left_pos) / ENCODER_COUNTS_PER_REV / 1.0
    assert 4.8 < rate < 5.2
    assert pairs[-1][1].x - pairs[0][1].x > 0.15
    assert run() == pairs


def test_roach_run_takes_the_lockstep_clock_from_the_c_board(board_lib, tmp_path):
    """`roach run` with no clock flag against `roach sim --board c --clock lockstep`: the
    hello names the C board's lockstep clock, so the run ticks on its simulated samples
    0.1 s apart (as `roach demo --board c` and `roach eval --board c` need)."""
    from onboard.logging_mcap import read_log

    log = tmp_path / "run.mcap"
    model = REPO / "models" / "grbal.onnx"
    with running_fake("--board", "c", "--clock", "lockstep", cwd=str(REPO)) as (_sim, port):
        proc = subprocess.run(
            [sys.executable, "-m", "tools.cli", "run", "--port", port, "--model", str(model),
             "--steps", "8", "--log", str(log), "--quiet"],
            cwd=REPO, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ticks = read_log(log).ticks
    stamps = [t["telemetry"]["timestamp_us"] for t in ticks]
    assert len(ticks) == 8 and all(b - a == 100_000 for a, b in itertools.pairwise(stamps))


def test_watchdog_stops_the_c_board_when_commands_stop(board_lib):
    """Realtime: commands stop, and STATUS shows the trip exactly timeout after the last."""
    fake = running_fake("--board", "c", "--clock", "realtime", cwd=str(REPO))
    with fake as (_p, path), SerialRobot(path) as robot:
        robot.set_command_timeout(60)
        robot.start_telemetry(100)
        robot.start_motors()
        for _ in range(5):
            robot.set_leg_velocity(4.0, 4.0)
            time.sleep(0.02)
        time.sleep(0.3)
        st = robot.status()
    assert st.flags & FLAG_WATCHDOG_TRIPPED and not st.flags & FLAG_MOTORS_ON
    assert st.watchdog_trip_us - st.last_command_us == 60_000
    assert st.watchdog_trips == 1
